//! The driver's error: one variant per way a call can fail, each message
//! naming the bad value.

use crate::link::LinkError;
use crate::options::OptionError;
use store::StoreError;

/// A driver call that could not be served. Messages name the bad value.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// A bad `-o` option.
    #[error(transparent)]
    Option(#[from] OptionError),
    /// The parent does not exist and cannot be created.
    #[error("parent interface {0} does not exist")]
    NoParent(String),
    /// The base of a `name.vid` parent does not exist.
    #[error("parent interface {base} of 802.1Q link {name} does not exist")]
    NoVlanBase {
        /// The base name.
        base: String,
        /// The `name.vid` parent.
        name: String,
    },
    /// The kernel cannot make the network's kind of container link.
    #[error(
        "this kernel cannot make {kind} links (its {kind} module is missing: try modprobe {kind}), so no container could join network {network}; load the module, or use -o kind={other}"
    )]
    KindUnsupported {
        /// `ipvlan` or `macvlan`.
        kind: &'static str,
        /// The other kind.
        other: &'static str,
        /// The network.
        network: String,
    },
    /// The kernel cannot make the parent link the network needs.
    #[error(
        "cannot create {kind} link {name}: this kernel cannot make {kind} links ({source}); load the {module} module (modprobe {module}){instead}"
    )]
    ParentKindUnsupported {
        /// `dummy` or `802.1Q`.
        kind: &'static str,
        /// The link that was to be created.
        name: String,
        /// The kernel module that provides the kind.
        module: &'static str,
        /// What avoids the need.
        instead: &'static str,
        /// The kernel's answer.
        #[source]
        source: Box<LinkError>,
    },
    /// An 802.1Q link for the VLAN exists on the base under another name.
    #[error("cannot create 802.1Q link {name}: VLAN {vid} on {base} already exists {holder}")]
    VlanExists {
        /// The link that was to be created.
        name: String,
        /// Its base device.
        base: String,
        /// The VLAN ID.
        vid: u16,
        /// Which link has the VLAN, and what to give instead.
        holder: String,
    },
    /// `-o mtu=` above what the parent carries.
    #[error(
        "mtu {mtu} exceeds parent {parent}'s {limit}; give -o com.docker.network.driver.mtu={limit} or less, or raise the parent's MTU first"
    )]
    MtuAboveParent {
        /// The MTU asked for.
        mtu: u32,
        /// The parent (and the device beneath it, for an 802.1Q link).
        parent: String,
        /// The parent's MTU.
        limit: u32,
    },
    /// `parent=auto` on a host without a default route.
    #[error("parent=auto: the host has no default route to take the interface from")]
    NoDefaultRoute,
    /// The parent is the loopback interface.
    #[error("loopback interface {0} is not a valid parent link")]
    Loopback(String),
    /// Another network on the same parent wants another kind or mode.
    #[error(
        "parent interface {parent} is already used by network {other} as {other_kind}; network {network} asks for {kind}, and a parent carries one ipvlan mode (and no macvlan beside ipvlan)"
    )]
    ParentConflict {
        /// The parent.
        parent: String,
        /// The conflicting network.
        other: String,
        /// What it uses.
        other_kind: String,
        /// The network asking.
        network: String,
        /// What it asks for.
        kind: String,
    },
    /// macvlan passthru needs the parent alone.
    #[error(
        "parent interface {parent} is already used by network {other}; macvlan passthru needs the parent to itself"
    )]
    Passthru {
        /// The parent.
        parent: String,
        /// The other network.
        other: String,
    },
    /// The network ID exists with different options.
    #[error("network {0} already exists with a different configuration")]
    Exists(String),
    /// No such network.
    #[error("network {0} not found")]
    NoNetwork(String),
    /// No such endpoint.
    #[error("endpoint {endpoint} not found on network {network}")]
    NoEndpoint {
        /// The endpoint.
        endpoint: String,
        /// The network.
        network: String,
    },
    /// CreateEndpoint of a known endpoint with other addresses.
    #[error(
        "endpoint {endpoint} already exists on network {network} with addresses {existing}; refusing {requested}"
    )]
    EndpointExists {
        /// The endpoint.
        endpoint: String,
        /// Its network.
        network: String,
        /// Its recorded addresses.
        existing: String,
        /// The addresses asked for now.
        requested: String,
    },
    /// An endpoint option of the wrong type (e.g. a MAC that is not one).
    #[error(transparent)]
    EndpointOption(#[from] protocol::options::OptionTypeError),
    /// A Swarm network reached this node while the plugin runs with
    /// `SCOPE=local`: the manager passed on none of its options, so it
    /// would be made here as some other network than the one asked for.
    #[error(
        "network {network} is a Swarm network, but this plugin runs with SCOPE=local, so the Swarm manager passed on none of its options (-o parent, -o kind, --subnet, --ipam-driver) to this node; remove the network and either run `docker plugin disable org/ipvlan-rs:latest && docker plugin set org/ipvlan-rs:latest SCOPE=global && docker plugin enable org/ipvlan-rs:latest` on every node (use your plugin's name) before creating it again, or create it with --config-from a --config-only network made on every node with -o parent=... or --ipam-driver set to this plugin (docs/swarm.md)"
    )]
    SwarmNetworkWithoutOptions {
        /// The network.
        network: String,
    },
    /// IPv4 is enabled but no IPv4 pool was given.
    #[error("ipv4 pool is empty")]
    NoIpv4Pool,
    /// An endpoint address no subnet of its network holds.
    #[error(
        "address {address} is outside the subnets of network {network} ({subnets}); give an address inside them"
    )]
    AddressOutsideSubnets {
        /// The address asked for.
        address: ipnet::IpNet,
        /// The network.
        network: String,
        /// Its subnets of that family (empty: none).
        subnets: String,
    },
    /// A user MAC on an ipvlan network.
    #[error(
        "ipvlan interfaces do not support custom mac address assignment (got {0}); use -o kind=macvlan"
    )]
    MacOnIpvlan(String),
    /// `host_link=ADDR` outside every IPv4 subnet of the network.
    #[error(
        "option host_link: address {address} is outside the IPv4 subnets of network {network} ({subnets}); give an address inside them"
    )]
    HostLinkOutside {
        /// The address given.
        address: std::net::Ipv4Addr,
        /// The network.
        network: String,
        /// Its IPv4 subnets.
        subnets: String,
    },
    /// `host_link=ADDR` of an address that is not free.
    #[error(
        "option host_link: address {address} is {holder}; give a free address of the subnet, or host_link=on"
    )]
    HostLinkTaken {
        /// The address given.
        address: std::net::Ipv4Addr,
        /// What holds it (the gateway, a container, another network's host link...).
        holder: String,
    },
    /// `host_link=on` where this plugin's IPAM does not serve the network.
    #[error(
        "option host_link=on takes the link's address from ipvlan-rs's IPAM, but network {network}'s pool {pool} is another IPAM's (address space {space:?}); use --ipam-driver with this plugin, or give host_link=ADDR with --aux-address host_link=ADDR so the engine's IPAM reserves it"
    )]
    HostLinkNeedsAddress {
        /// The network.
        network: String,
        /// Its pool.
        pool: ipnet::IpNet,
        /// The pool's address space.
        space: String,
    },
    /// `host_link` on a network without IPv4.
    #[error("option host_link: network {0} has no IPv4 subnet; the host link carries IPv4 only")]
    HostLinkNoIpv4(String),
    /// The IPAM would not reserve the host link's address.
    #[error("option host_link: could not reserve an address for the host link: {0}")]
    HostLinkReserve(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The host link or a route through it could not be made.
    #[error("option host_link: could not set up host link {name} on parent {parent}: {source}")]
    HostLinkFailed {
        /// The host link.
        name: String,
        /// The parent.
        parent: String,
        /// The kernel's answer.
        #[source]
        source: LinkError,
    },
    /// A netlink call failed.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// The container link could not be created on the parent.
    #[error("failed to create the container link on parent {parent}: {source}{hint}")]
    JoinFailed {
        /// The parent.
        parent: String,
        /// The kernel's answer.
        #[source]
        source: LinkError,
        /// What usually causes it.
        hint: &'static str,
    },
    /// The state could not be made durable.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A record could not be encoded for the state file; nothing was stored.
    #[error("could not encode {table} record {key} for the state file: {source}")]
    Encode {
        /// The table it was meant for.
        table: &'static str,
        /// Its key.
        key: String,
        /// The encoder's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// The state file holds something this build cannot read.
    #[error("corrupt driver state: {0}")]
    Corrupt(String),
    /// A `dhcp=on` network whose addresses the engine's IPAM would assign.
    #[error(
        "network {network}: dhcp=on takes addresses from the LAN's DHCP server; create the network with --ipam-driver null and without --subnet, --gateway or --ip-range, since the server gives the subnet and router (got IPv4 pools {pools})"
    )]
    DhcpNeedsNullIpam {
        /// The network.
        network: String,
        /// The pools the engine sent.
        pools: String,
    },
    /// No lease for a new endpoint of a `dhcp=on` network.
    #[error("network {network}: {source}")]
    Dhcp {
        /// The network.
        network: String,
        /// What the exchange met.
        #[source]
        source: dhcp::DhcpError,
    },
    /// The server leased an address another lease of this plugin holds: it
    /// tells clients apart by MAC alone. Nothing is released (a release
    /// would end the holder's lease at such a server).
    #[error(
        "network {network}: the DHCP server {server} on {parent} leased {address}, which {holder} already holds: the server tells clients apart by MAC address alone and ignores their client identifiers (option 61), so links that share the parent's MAC (ipvlan endpoints, an ipvlan host link) would share one address; use -o kind=macvlan (each container gets its own MAC) or a DHCP server that honours client identifiers (dnsmasq, ISC dhcpd and Kea do; busybox udhcpd does not)"
    )]
    DhcpAddressShared {
        /// The network.
        network: String,
        /// The server's identifier.
        server: std::net::Ipv4Addr,
        /// The parent the exchange ran on.
        parent: String,
        /// The address it leased twice.
        address: std::net::Ipv4Addr,
        /// Which lease holds it ("endpoint ID" or "the host link of network ID").
        holder: String,
    },
    /// An endpoint without a DHCP lease.
    #[error("endpoint {0} has no DHCP lease")]
    NoLease(String),
    /// A parent without an Ethernet address cannot carry DHCP for its containers.
    #[error("parent interface {0} has no Ethernet (MAC) address, so dhcp=on cannot run on it")]
    ParentWithoutMac(String),
}
