//! Kernel links over rtnetlink: create, find, list and delete the parents
//! and slaves this driver manages. No shell-outs.

mod shape;

pub use shape::LinkShape;

use crate::options::{IpvlanFlag, IpvlanMode, LinkKind, MacvlanMode};
use futures::TryStreamExt;
use ipnet::Ipv4Net;
use rtnetlink::packet_route::link::{
    AfSpecInet, AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InetDevConf, InfoData, InfoIpVlan,
    InfoVlan, IpVlanFlags, IpVlanMode, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
    MacVlanMode,
};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use rtnetlink::{
    Handle, LinkDummy, LinkIpVlan, LinkMacVlan, LinkMessageBuilder, LinkUnspec, LinkVlan,
    RouteMessageBuilder,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A netlink request the kernel refused, or that could not be made.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{what}: {message}")]
pub struct LinkError {
    what: String,
    message: String,
    errno: Option<i32>,
}

impl LinkError {
    fn new(what: impl Into<String>, err: &rtnetlink::Error) -> LinkError {
        let errno = match err {
            rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
            _ => None,
        };
        let message = match errno {
            Some(e) => std::io::Error::from_raw_os_error(e).to_string(),
            None => err.to_string(),
        };
        LinkError {
            what: what.into(),
            message,
            errno,
        }
    }

    /// A failure outside netlink (e.g. a thread that would not start).
    pub(crate) fn other(what: impl Into<String>, message: impl Into<String>) -> LinkError {
        LinkError {
            what: what.into(),
            message: message.into(),
            errno: None,
        }
    }

    /// The kernel's errno, if the kernel answered with one.
    pub fn errno(&self) -> Option<i32> {
        self.errno
    }

    /// Whether the kernel said the link does not exist.
    pub fn is_not_found(&self) -> bool {
        self.errno == Some(19) // ENODEV
    }

    /// Whether the kernel said it cannot make this kind of link (no module).
    pub fn is_unsupported(&self) -> bool {
        self.errno == Some(95) // EOPNOTSUPP
    }

    /// Whether the kernel said it has no such address family on the link
    /// (no IPv6 on this host, or none on the link).
    pub fn is_no_family(&self) -> bool {
        self.errno == Some(97) // EAFNOSUPPORT
    }

    /// Whether the kernel said the link already exists.
    pub fn is_exists(&self) -> bool {
        self.errno == Some(17) // EEXIST
    }

    /// Whether the kernel said there is no such route or address.
    pub fn is_no_such(&self) -> bool {
        matches!(self.errno, Some(3 | 2 | 99)) // ESRCH, ENOENT, EADDRNOTAVAIL
    }
}

/// A route through a host link, as the driver makes them: main table,
/// scope link, protocol static, from the link's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostRoute {
    /// Where it leads: a container address (/32) or the network's range.
    pub destination: Ipv4Net,
    /// The host link's address, the source of the host's packets.
    pub source: Ipv4Addr,
}

/// What the driver needs to know of a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// `ipvlan`, `macvlan`, `vlan`, `dummy`, `veth`... (`None`: physical).
    pub kind: Option<String>,
    /// ipvlan mode of an ipvlan slave.
    pub ipvlan_mode: Option<IpvlanMode>,
    /// Index of the lower link (the parent of a slave or VLAN).
    pub parent: Option<u32>,
    /// The interface alias (`ip link set ... alias`).
    pub alias: Option<String>,
    /// Whether the link is the loopback interface.
    pub loopback: bool,
    /// Whether the link is administratively up.
    pub up: bool,
    /// Whether it has a carrier (`IFF_LOWER_UP`: a cable, a veth peer that
    /// is up); a link can be up without one.
    pub carrier: bool,
    /// Its operational state (IFLA_OPERSTATE, RFC 2863) in lower case, as
    /// `ip link` shows it: `up`, `down`, `lowerlayerdown`, `dormant`,
    /// `unknown` (a dummy link's, always)...
    pub oper_state: Option<String>,
    /// MTU.
    pub mtu: Option<u32>,
    /// Link group (`ip link set ... group N`; 0 is "default").
    pub group: Option<u32>,
    /// The MAC address, for links that have an Ethernet one.
    pub mac: Option<[u8; 6]>,
    /// The VLAN ID of an 802.1Q link.
    pub vlan_id: Option<u16>,
    /// Whether the link keeps to its own addresses, as a host link must:
    /// it answers ARP only for addresses on itself and sends ARP only from
    /// them (arp_ignore 1, arp_announce 2), and makes no IPv6 address of
    /// its own (addrgenmode none, or no IPv6 on it at all).
    pub own_addresses_only: bool,
}

impl Link {
    fn from_message(msg: &LinkMessage) -> Link {
        let mut link = Link {
            index: msg.header.index,
            name: String::new(),
            kind: None,
            ipvlan_mode: None,
            parent: None,
            alias: None,
            group: None,
            loopback: msg.header.flags.contains(LinkFlags::Loopback),
            up: msg.header.flags.contains(LinkFlags::Up),
            carrier: msg.header.flags.contains(LinkFlags::LowerUp),
            oper_state: None,
            mtu: None,
            mac: None,
            vlan_id: None,
            own_addresses_only: false,
        };
        let (mut arp, mut ipv6_quiet) = (false, true);
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::AfSpecUnspec(families) => {
                    for family in families {
                        match family {
                            AfSpecUnspec::Inet(specs) => {
                                arp = specs.iter().any(|s| {
                                    matches!(s, AfSpecInet::DevConf(c)
                                        if c.arp_ignore == HOST_LINK_ARP_IGNORE
                                            && c.arp_announce == HOST_LINK_ARP_ANNOUNCE)
                                });
                            }
                            AfSpecUnspec::Inet6(specs) => {
                                ipv6_quiet = specs.iter().any(|s| {
                                    matches!(s, AfSpecInet6::AddrGenMode(In6AddrGenMode::None))
                                });
                            }
                            _ => {}
                        }
                    }
                }
                LinkAttribute::Address(a) => link.mac = a.as_slice().try_into().ok(),
                LinkAttribute::IfName(n) => link.name = n.clone(),
                LinkAttribute::Link(p) => link.parent = Some(*p),
                LinkAttribute::IfAlias(a) => link.alias = Some(a.clone()),
                LinkAttribute::Mtu(m) => link.mtu = Some(*m),
                LinkAttribute::Group(g) => link.group = Some(*g),
                LinkAttribute::OperState(state) => {
                    link.oper_state = Some(state.to_string().to_lowercase());
                }
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        match info {
                            LinkInfo::Kind(k) => link.kind = Some(k.to_string()),
                            LinkInfo::Data(InfoData::IpVlan(data)) => {
                                for d in data {
                                    if let InfoIpVlan::Mode(m) = d {
                                        link.ipvlan_mode = match m {
                                            IpVlanMode::L2 => Some(IpvlanMode::L2),
                                            IpVlanMode::L3 => Some(IpvlanMode::L3),
                                            IpVlanMode::L3S => Some(IpvlanMode::L3s),
                                            _ => None,
                                        };
                                    }
                                }
                            }
                            LinkInfo::Data(InfoData::Vlan(data)) => {
                                for d in data {
                                    if let InfoVlan::Id(id) = d {
                                        link.vlan_id = Some(*id);
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        link.own_addresses_only = arp && ipv6_quiet;
        link
    }
}

/// A host link's arp_ignore: answer ARP only for an address on the link
/// itself. With the kernel's default (0) a link answers for every address
/// of the host, so the LAN may learn the host's own address at the host
/// link's MAC (ARP flux), and lose the host when the link goes.
const HOST_LINK_ARP_IGNORE: i32 = 1;

/// A host link's arp_announce: ask ARP from the link's own address, never
/// from another of the host's.
const HOST_LINK_ARP_ANNOUNCE: i32 = 2;

/// IFLA_AF_SPEC's AF_INET part that sets a host link's ARP. The library
/// sends only the non-zero entries of a `DevConfRequest`, one nested
/// attribute each (a test below holds it to that).
fn host_link_arp() -> AfSpecUnspec {
    let mut conf = InetDevConf::default();
    conf.arp_ignore = HOST_LINK_ARP_IGNORE;
    conf.arp_announce = HOST_LINK_ARP_ANNOUNCE;
    AfSpecUnspec::Inet(vec![AfSpecInet::DevConfRequest(conf)])
}

/// `Ok(true)` if a call on a link succeeded, `Ok(false)` if the link was
/// already gone (ENODEV), the error otherwise.
fn found(
    done: Result<(), rtnetlink::Error>,
    what: impl FnOnce() -> String,
) -> Result<bool, LinkError> {
    match done {
        Ok(()) => Ok(true),
        Err(e) => {
            let err = LinkError::new(what(), &e);
            if err.is_not_found() {
                Ok(false)
            } else {
                Err(err)
            }
        }
    }
}

/// A handle on the host's netlink socket.
#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    /// Open a netlink socket in the calling thread's network namespace and
    /// drive it on the current tokio runtime.
    pub fn connect() -> Result<Netlink, LinkError> {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(|e| LinkError {
            what: "opening a netlink socket".into(),
            message: e.to_string(),
            errno: e.raw_os_error(),
        })?;
        tokio::spawn(conn);
        Ok(Netlink { handle })
    }

    /// The link named `name`, if it exists.
    pub async fn get(&self, name: &str) -> Result<Option<Link>, LinkError> {
        let req = self.handle.link().get().match_name(name.to_string());
        first_link(req, format!("looking up link {name}")).await
    }

    /// The link named `name` and its [`LinkShape`], if it exists. The
    /// shape copies every attribute, so only the calls that judge a link
    /// for reuse ask for it.
    pub async fn get_with_shape(&self, name: &str) -> Result<Option<(Link, LinkShape)>, LinkError> {
        let req = self.handle.link().get().match_name(name.to_string());
        let msg = first_message(req, format!("looking up link {name}")).await?;
        Ok(msg.map(|m| (Link::from_message(&m), LinkShape::from_message(&m))))
    }

    /// The link with `index`, if it exists.
    pub async fn get_by_index(&self, index: u32) -> Result<Option<Link>, LinkError> {
        let req = self.handle.link().get().match_index(index);
        first_link(req, format!("looking up link {index}")).await
    }

    /// Every link of the namespace.
    pub async fn list(&self) -> Result<Vec<Link>, LinkError> {
        let stream = self.handle.link().get().execute();
        let msgs: Vec<LinkMessage> = stream
            .try_collect()
            .await
            .map_err(|e| LinkError::new("listing links", &e))?;
        Ok(msgs.iter().map(Link::from_message).collect())
    }

    /// Create a container link of `kind` named `name` on the parent, in
    /// link group `group` (the creating instance's mark).
    pub async fn create_slave(
        &self,
        name: &str,
        parent: u32,
        kind: &LinkKind,
        mtu: Option<u32>,
        group: u32,
    ) -> Result<(), LinkError> {
        let msg = match kind {
            LinkKind::IpVlan { mode, flag } => {
                let mode = match mode {
                    IpvlanMode::L2 => IpVlanMode::L2,
                    IpvlanMode::L3 => IpVlanMode::L3,
                    IpvlanMode::L3s => IpVlanMode::L3S,
                };
                let flag = match flag {
                    IpvlanFlag::Bridge => IpVlanFlags::empty(),
                    IpvlanFlag::Private => IpVlanFlags::Private,
                    IpvlanFlag::Vepa => IpVlanFlags::Vepa,
                };
                let b = LinkIpVlan::new(name, parent, mode)
                    .flag(flag)
                    .link_group(group);
                match mtu {
                    Some(m) => b.mtu(m).build(),
                    None => b.build(),
                }
            }
            LinkKind::MacVlan { mode } => {
                let mode = match mode {
                    MacvlanMode::Bridge => MacVlanMode::Bridge,
                    MacvlanMode::Private => MacVlanMode::Private,
                    MacvlanMode::Vepa => MacVlanMode::Vepa,
                    MacvlanMode::Passthru => MacVlanMode::Passthrough,
                };
                let b = LinkMacVlan::new(name, parent, mode).link_group(group);
                match mtu {
                    Some(m) => b.mtu(m).build(),
                    None => b.build(),
                }
            }
        };
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(|e| LinkError::new(format!("creating {} link {name}", kind.name()), &e))
    }

    /// Whether this kernel can make links of `kind` (built in, loaded, or
    /// loadable on demand). It is asked to create one without a lower
    /// device: the kernel looks the kind up first, answering EOPNOTSUPP if
    /// it has none, and only then refuses the missing lower device, so
    /// nothing is created and no parent is touched (a probe link on the
    /// parent would set an ipvlan port's mode for every link on it).
    pub async fn kind_supported(&self, kind: &LinkKind) -> Result<bool, LinkError> {
        let name = format!("ivp{:08x}", crate::names::random_u32());
        let msg = match kind {
            LinkKind::IpVlan { .. } => LinkMessageBuilder::<LinkIpVlan>::new(&name)
                .mode(IpVlanMode::L2)
                .build(),
            LinkKind::MacVlan { .. } => LinkMessageBuilder::<LinkMacVlan>::new(&name)
                .mode(MacVlanMode::Bridge)
                .build(),
        };
        match self.handle.link().add(msg).execute().await {
            Err(e) => Ok(!LinkError::new("probing", &e).is_unsupported()),
            Ok(()) => {
                // no kernel makes one without a lower device; were one
                // made, it is not left behind
                self.delete_by_name(&name).await?;
                Ok(true)
            }
        }
    }

    /// Create an 802.1Q link `name` with `vid` on `base`, up, tagged with
    /// `alias`, in link group `group`.
    pub async fn create_vlan(
        &self,
        name: &str,
        base: u32,
        vid: u16,
        alias: &str,
        group: u32,
    ) -> Result<(), LinkError> {
        self.add_tagged(
            LinkVlan::new(name, base, vid)
                .up()
                .link_group(group)
                .build(),
            "802.1Q",
            name,
            alias,
        )
        .await
    }

    /// Create a dummy link `name`, up, tagged with `alias`, in link group
    /// `group`, with `mtu` if given.
    pub async fn create_dummy(
        &self,
        name: &str,
        alias: &str,
        group: u32,
        mtu: Option<u32>,
    ) -> Result<(), LinkError> {
        let mut msg = LinkDummy::new(name).up().link_group(group);
        if let Some(mtu) = mtu {
            msg = msg.mtu(mtu);
        }
        let msg = msg.build();
        self.add_tagged(msg, "dummy", name, alias).await
    }

    /// Add a parent link and tag it with an alias, so a later start can tell
    /// it was ours (the kernel ignores IFLA_IFALIAS on creation).
    async fn add_tagged(
        &self,
        msg: LinkMessage,
        what: &str,
        name: &str,
        alias: &str,
    ) -> Result<(), LinkError> {
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(|e| LinkError::new(format!("creating {what} link {name}"), &e))?;
        self.set_alias(name, alias).await
    }

    async fn set_alias(&self, name: &str, alias: &str) -> Result<(), LinkError> {
        let msg = LinkUnspec::new_with_name(name).alias(alias).build();
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(|e| LinkError::new(format!("tagging link {name}"), &e))
    }

    /// Bring a link up.
    pub async fn set_up(&self, index: u32) -> Result<(), LinkError> {
        let msg = LinkUnspec::new_with_index(index).up().build();
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(|e| LinkError::new(format!("bringing up link {index}"), &e))
    }

    /// Give the link with `index` the MAC address `mac`; `Ok(false)` if the
    /// link is gone.
    pub async fn set_address(&self, index: u32, mac: [u8; 6]) -> Result<bool, LinkError> {
        let msg = LinkUnspec::new_with_index(index)
            .address(mac.to_vec())
            .build();
        let done = self.handle.link().set(msg).execute().await;
        found(done, || format!("setting the MAC address of link {index}"))
    }

    /// Make the link with `index` keep to its own addresses (see
    /// [`Link::own_addresses_only`]), over rtnetlink rather than /proc/sys,
    /// which is read-only in a managed plugin. Only these entries are sent
    /// (the kernel takes a partial IFLA_INET_CONF), so the link's other
    /// settings stay as they are. Set before the link is up, addrgenmode
    /// none means it never takes a link-local address.
    pub async fn set_own_addresses_only(&self, index: u32) -> Result<(), LinkError> {
        self.set_af_spec(index, host_link_arp())
            .await
            .map_err(|e| LinkError::new(format!("setting ARP of link {index}"), &e))?;
        let inet6 = AfSpecUnspec::Inet6(vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)]);
        let Err(e) = self.set_af_spec(index, inet6).await else {
            return Ok(());
        };
        let err = LinkError::new(format!("turning off IPv6 addresses of link {index}"), &e);
        if err.is_no_family() {
            // a host without IPv6 (ipv6.disable=1) has none to turn off
            Ok(())
        } else {
            Err(err)
        }
    }

    async fn set_af_spec(&self, index: u32, family: AfSpecUnspec) -> Result<(), rtnetlink::Error> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes
            .push(LinkAttribute::AfSpecUnspec(vec![family]));
        self.handle.link().set(msg).execute().await
    }

    /// Delete the link named `name`; `Ok(false)` if there was none.
    pub async fn delete_by_name(&self, name: &str) -> Result<bool, LinkError> {
        match self.get(name).await? {
            None => Ok(false),
            Some(link) => self.delete(link.index, name).await,
        }
    }

    /// Put the link with `index` in link group `group`; `Ok(false)` if it
    /// was already gone.
    pub async fn set_group(&self, index: u32, group: u32) -> Result<bool, LinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::Group(group));
        let done = self.handle.link().set(msg).execute().await;
        found(done, || format!("moving link {index} to group {group}"))
    }

    /// Delete every link in link group `group` at once: the kernel
    /// unregisters them together and waits for one RCU grace period, not
    /// one per link. Fails (deleting nothing) if the group holds a device
    /// that cannot be deleted, such as a physical NIC.
    pub async fn delete_group(&self, group: u32) -> Result<(), LinkError> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::Group(group));
        rtnetlink::LinkDelRequest::new_with_message(self.handle.clone(), msg)
            .execute()
            .await
            .map_err(|e| LinkError::new(format!("deleting link group {group}"), &e))
    }

    /// Delete the link with `index`; `Ok(false)` if it was already gone.
    pub async fn delete(&self, index: u32, name: &str) -> Result<bool, LinkError> {
        let done = self.handle.link().del(index).execute().await;
        found(done, || format!("deleting link {name}"))
    }

    /// Give the link with `index` the address `address`/32 (no prefix
    /// route); an address it already has is no error.
    pub async fn add_host_address(&self, index: u32, address: Ipv4Addr) -> Result<(), LinkError> {
        let done = self
            .handle
            .address()
            .add(index, IpAddr::V4(address), 32)
            .execute()
            .await
            .map_err(|e| LinkError::new(format!("adding address {address} to link {index}"), &e));
        match done {
            Err(e) if e.is_exists() => Ok(()),
            other => other,
        }
    }

    /// Whether the link with `index` has the IPv4 address `address`.
    pub async fn has_address(&self, index: u32, address: Ipv4Addr) -> Result<bool, LinkError> {
        let found: Vec<_> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .set_address_filter(IpAddr::V4(address))
            .execute()
            .try_collect()
            .await
            .map_err(|e| LinkError::new(format!("listing addresses of link {index}"), &e))?;
        Ok(!found.is_empty())
    }

    fn host_route_message(index: u32, route: &HostRoute) -> RouteMessage {
        RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(route.destination.addr(), route.destination.prefix_len())
            .output_interface(index)
            .pref_source(route.source)
            .scope(RouteScope::Link)
            .protocol(RouteProtocol::Static)
            .build()
    }

    /// Add `route` through the link with `index`; a route already there is
    /// no error. Never replaces a route: the host's own stay as they are.
    pub async fn add_host_route(&self, index: u32, route: &HostRoute) -> Result<(), LinkError> {
        let done = self
            .handle
            .route()
            .add(Self::host_route_message(index, route))
            .execute()
            .await
            .map_err(|e| LinkError::new(format!("adding route to {}", route.destination), &e));
        match done {
            Err(e) if e.is_exists() => Ok(()),
            other => other,
        }
    }

    /// Delete the route to `route`'s destination through the link with
    /// `index`, whatever its protocol, scope or source; `Ok(false)` if there
    /// was none.
    pub async fn delete_host_route(
        &self,
        index: u32,
        route: &HostRoute,
    ) -> Result<bool, LinkError> {
        let done = self
            .handle
            .route()
            .del(
                // any route to the destination through the link: one made
                // by hand (another protocol, scope or source) too
                RouteMessageBuilder::<Ipv4Addr>::new()
                    .destination_prefix(route.destination.addr(), route.destination.prefix_len())
                    .output_interface(index)
                    .scope(RouteScope::NoWhere)
                    .protocol(RouteProtocol::Unspec)
                    .build(),
            )
            .execute()
            .await
            .map_err(|e| LinkError::new(format!("deleting route to {}", route.destination), &e));
        match done {
            Ok(()) => Ok(true),
            Err(e) if e.is_no_such() || e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The IPv4 unicast routes of the main table through the link with
    /// `index` that were not made by the kernel (for addresses).
    pub async fn host_routes(&self, index: u32) -> Result<Vec<HostRoute>, LinkError> {
        let msgs: Vec<RouteMessage> = self
            .handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute()
            .try_collect()
            .await
            .map_err(|e| LinkError::new("listing routes", &e))?;
        let mut routes = Vec::new();
        for m in &msgs {
            let h = &m.header;
            if h.table != RouteHeader::RT_TABLE_MAIN
                || h.kind != RouteType::Unicast
                || h.protocol == RouteProtocol::Kernel
            {
                continue;
            }
            let (mut oif, mut dst, mut src) = (None, None, None);
            for a in &m.attributes {
                match a {
                    RouteAttribute::Oif(i) => oif = Some(*i),
                    RouteAttribute::Destination(RouteAddress::Inet(d)) => dst = Some(*d),
                    RouteAttribute::PrefSource(RouteAddress::Inet(s)) => src = Some(*s),
                    _ => {}
                }
            }
            if oif != Some(index) {
                continue;
            }
            let destination = Ipv4Net::new(
                dst.unwrap_or(Ipv4Addr::UNSPECIFIED),
                h.destination_prefix_length,
            )
            .unwrap_or_default();
            routes.push(HostRoute {
                destination,
                source: src.unwrap_or(Ipv4Addr::UNSPECIFIED),
            });
        }
        Ok(routes)
    }

    /// The interface of the default route (IPv4 first, then IPv6).
    pub async fn default_route_interface(&self) -> Result<Option<String>, LinkError> {
        for route in self.routes().await? {
            if route.header.destination_prefix_length != 0 || route.header.table != 254 {
                continue;
            }
            let oif = route.attributes.iter().find_map(|a| match a {
                RouteAttribute::Oif(i) => Some(*i),
                _ => None,
            });
            if let Some(oif) = oif
                && let Some(l) = self.get_by_index(oif).await?
            {
                return Ok(Some(l.name));
            }
        }
        Ok(None)
    }

    async fn routes(&self) -> Result<Vec<RouteMessage>, LinkError> {
        let mut all = Vec::new();
        for msg in [
            RouteMessageBuilder::<Ipv4Addr>::new().build(),
            RouteMessageBuilder::<Ipv6Addr>::new().build(),
        ] {
            let mut got: Vec<RouteMessage> = self
                .handle
                .route()
                .get(msg)
                .execute()
                .try_collect()
                .await
                .map_err(|e| LinkError::new("listing routes", &e))?;
            all.append(&mut got);
        }
        Ok(all)
    }
}

/// The one link a filtered get returns; "no such device" is `None`.
async fn first_link(
    req: rtnetlink::LinkGetRequest,
    what: String,
) -> Result<Option<Link>, LinkError> {
    Ok(first_message(req, what)
        .await?
        .map(|m| Link::from_message(&m)))
}

/// The kernel's one message for a filtered get; "no such device" is `None`.
async fn first_message(
    req: rtnetlink::LinkGetRequest,
    what: String,
) -> Result<Option<LinkMessage>, LinkError> {
    match req.execute().try_next().await {
        Ok(msg) => Ok(msg),
        Err(e) => {
            let err = LinkError::new(what, &e);
            if err.is_not_found() {
                Ok(None)
            } else {
                Err(err)
            }
        }
    }
}

/// Whether a link's kind is one this driver makes for containers.
pub fn is_slave_kind(kind: Option<&str>) -> bool {
    matches!(kind, Some("ipvlan" | "macvlan"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtnetlink::packet_core::Emitable;

    /// The (type, value) pairs of the netlink attributes in `bytes`.
    fn attributes(bytes: &[u8]) -> Vec<(u16, Vec<u8>)> {
        let mut out = Vec::new();
        let mut rest = bytes;
        while rest.len() >= 4 {
            let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
            let kind = u16::from_ne_bytes([rest[2], rest[3]]) & 0x3fff;
            out.push((kind, rest[4..len].to_vec()));
            rest = &rest[len.next_multiple_of(4).min(rest.len())..];
        }
        out
    }

    #[test]
    fn host_link_arp_sends_arp_ignore_and_arp_announce_only() {
        let spec = host_link_arp();
        let mut buf = vec![0u8; spec.buffer_len()];
        spec.emit(&mut buf);
        // AF_INET { IFLA_INET_CONF { ARP_ANNOUNCE (18) = 2, ARP_IGNORE (19) = 1 } }
        let inet = attributes(&buf);
        assert_eq!(inet.len(), 1);
        assert_eq!(inet[0].0, 2, "AF_INET");
        let conf = attributes(&inet[0].1);
        assert_eq!(conf.len(), 1);
        assert_eq!(conf[0].0, 1, "IFLA_INET_CONF");
        let entries = attributes(&conf[0].1);
        assert_eq!(
            entries,
            [
                (18, 2u32.to_ne_bytes().to_vec()),
                (19, 1u32.to_ne_bytes().to_vec())
            ]
        );
    }
}
