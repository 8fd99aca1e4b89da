//! Host links (`-o host_link`): a link of the host's own on a network's
//! parent, of the network's kind, mode and flag, so that the host reaches
//! its containers (the kernel never passes traffic between a parent and its
//! slaves, but does between slaves).
//!
//! The link (`ivh` + 12 characters of the network ID) carries its address
//! as a /32, so it adds no route to the subnet: the host's own route to the
//! subnet through the parent stays as it was. It keeps to that address: it
//! answers ARP only for it and asks only from it (else the LAN could learn
//! the host's own address at the link's MAC and lose the host when the
//! link goes), and takes no IPv6 link-local address (the link is for
//! IPv4). Routes through the link go to the network's `--ip-range` (one
//! route, when the plugin's IPAM knows the range) or to each container's
//! address as its container joins.
//! Containers reach the host at the link's address.
//!
//! Where the address comes from: `host_link=ADDR` is the user's, checked
//! against the subnet, the gateway, containers and other host links, and
//! reserved in the plugin's IPAM when that serves the network (an
//! `--aux-address` of it is already the engine's reservation);
//! `host_link=on` takes a free address of the network's pool from the
//! plugin's IPAM, reached through [`HostLinkAddresses`] (the driver knows
//! nothing of the IPAM crate). In a `dhcp=on` network the address is a
//! lease of the link's own from the LAN's server (client identifier from
//! [`host_link_lease_key`], distinct from every endpoint's; `chaddr` the
//! link's own MAC on macvlan, the parent's on ipvlan, as for endpoints),
//! kept in the leases table and renewed like an endpoint's.
//!
//! Invariants: the network record names the link and its address before
//! CreateNetwork answers; reconcile and Join put back the link, its address
//! and the routes the records call for, and reconcile removes routes
//! through it they do not call for; a host link is deleted with its network.

use crate::lease::own_mac;
use crate::link::{self, HostRoute};
use crate::names::host_link_name;
use crate::names::random_mac;
use crate::records::{EndpointRecord, HostLink, LeaseRecord, NetworkRecord};
use crate::state::State;
use crate::{Driver, DriverError};
use futures::future::BoxFuture;
use ipnet::{IpNet, Ipv4Net};
use protocol::network::{CreateNetworkRequest, IpamData};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

/// The error of an IPAM behind [`HostLinkAddresses`].
pub type AddressError = Box<dyn std::error::Error + Send + Sync>;

/// An address reserved for a host link in an IPAM pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressLease {
    /// The pool it is reserved in (passed back to release it).
    pub pool: String,
    /// The address.
    pub address: Ipv4Addr,
}

/// The IPAM that serves the networks it knows, as the driver asks it for
/// host link addresses (the plugin implements it with its own IPAM).
pub trait HostLinkAddresses: Send + Sync {
    /// Reserves `wanted`, or a free address of the pool's range, in the
    /// pool the engine leased as `data`. `Ok(None)`: the pool is not this
    /// IPAM's.
    fn reserve<'a>(
        &'a self,
        data: &'a IpamData,
        wanted: Option<Ipv4Addr>,
    ) -> BoxFuture<'a, Result<Option<AddressLease>, AddressError>>;

    /// Releases a reservation made by [`HostLinkAddresses::reserve`].
    fn release<'a>(&'a self, lease: &'a str, address: Ipv4Addr) -> BoxFuture<'a, ()>;

    /// The sub-pool (`--ip-range`) of the pool leased as `data`, if it is
    /// this IPAM's and has one.
    fn range(&self, data: &IpamData) -> Option<IpNet>;
}

/// The key of network `id`'s host link lease in the leases table, and the
/// name its client identifier is made of (endpoint IDs are hex, so no
/// endpoint's key is ever this).
pub fn host_link_lease_key(id: &str) -> String {
    format!("host-link:{id}")
}

/// The routes through `link` that the records call for: the range, and
/// the address of each container outside it (all of them without a range).
fn wanted_routes<'a>(
    link: &HostLink,
    network: &str,
    endpoints: impl Iterator<Item = &'a EndpointRecord>,
) -> BTreeSet<HostRoute> {
    let range = match link.range {
        Some(IpNet::V4(range)) => Some(HostRoute {
            destination: range,
            source: link.address,
        }),
        _ => None,
    };
    endpoints
        .filter(|e| e.network_id == network)
        .filter_map(|e| endpoint_route(link, e))
        .chain(range)
        .collect()
}

/// The route to one container's address, unless the range route covers it
/// (`--ip` may pin an address outside the range).
fn endpoint_route(link: &HostLink, endpoint: &EndpointRecord) -> Option<HostRoute> {
    let IpAddr::V4(address) = endpoint.address?.addr() else {
        return None;
    };
    if link.range.is_some_and(|r| r.contains(&IpAddr::V4(address))) {
        return None;
    }
    Some(HostRoute {
        destination: Ipv4Net::from(address),
        source: link.address,
    })
}

/// What holds `address` in a subnet `data` of network `id`, if anything
/// does besides an `--aux-address` (the engine's reservation, which the
/// user makes for this link).
fn holder_of(state: &State, id: &str, data: &IpamData, address: Ipv4Addr) -> Option<String> {
    let pool = data.pool.trunc();
    if let IpNet::V4(v4) = pool
        && v4.prefix_len() < 31
    {
        if address == v4.network() {
            return Some(format!("the network address of subnet {pool}"));
        }
        if address == v4.broadcast() {
            return Some(format!("the broadcast address of subnet {pool}"));
        }
    }
    if data.gateway.map(|g| g.addr()) == Some(IpAddr::V4(address)) {
        return Some(format!("the gateway of subnet {pool}"));
    }
    if let Some(e) = state
        .endpoints
        .values()
        .find(|e| e.address.map(|a| a.addr()) == Some(IpAddr::V4(address)))
    {
        return Some(format!(
            "held by endpoint {} of network {}",
            e.id, e.network_id
        ));
    }
    state
        .networks
        .values()
        .find(|n| n.id != id && n.host_link.as_ref().is_some_and(|h| h.address == address))
        .map(|n| format!("the host link address of network {}", n.id))
}

impl Driver {
    /// Chooses network `id`'s host link and reserves its address, checking
    /// what `host_link=` gave: the returned link is not made yet.
    pub(crate) async fn plan_host_link(
        &self,
        state: &State,
        req: &CreateNetworkRequest,
        option: crate::options::HostLinkOption,
    ) -> Result<HostLink, DriverError> {
        use crate::options::HostLinkOption;
        let id = req.network_id.as_str();
        let v4: Vec<&IpamData> = req
            .ipv4_data
            .iter()
            .filter(|d| matches!(d.pool, IpNet::V4(_)) && d.pool.prefix_len() > 0)
            .collect();
        let first = *v4
            .first()
            .ok_or_else(|| DriverError::HostLinkNoIpv4(id.to_string()))?;
        let (data, address, lease) = match option {
            HostLinkOption::Address { address } => {
                let data = *v4
                    .iter()
                    .find(|d| d.pool.contains(&IpAddr::V4(address)))
                    .ok_or_else(|| DriverError::HostLinkOutside {
                        address,
                        network: id.to_string(),
                        subnets: v4
                            .iter()
                            .map(|d| d.pool.trunc().to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                    })?;
                if let Some(holder) = holder_of(state, id, data, address) {
                    return Err(DriverError::HostLinkTaken { address, holder });
                }
                let aux = data
                    .aux_addresses
                    .values()
                    .any(|a| a.addr() == IpAddr::V4(address));
                let lease = match (&self.config.host_link_addresses, aux) {
                    (Some(ipam), false) => ipam
                        .0
                        .reserve(data, Some(address))
                        .await
                        .map_err(DriverError::HostLinkReserve)?,
                    _ => None,
                };
                if lease.is_none() && !aux {
                    tracing::warn!(network = id, %address, "host link address reserved by no IPAM (another IPAM serves the network); --aux-address host_link=ADDR keeps containers off it");
                }
                (data, address, lease.map(|l| l.pool))
            }
            HostLinkOption::On => {
                let lease = match &self.config.host_link_addresses {
                    Some(ipam) => ipam
                        .0
                        .reserve(first, None)
                        .await
                        .map_err(DriverError::HostLinkReserve)?,
                    None => None,
                };
                let lease = lease.ok_or_else(|| DriverError::HostLinkNeedsAddress {
                    network: id.to_string(),
                    pool: first.pool.trunc(),
                    space: first.address_space.clone(),
                })?;
                (first, lease.address, Some(lease.pool))
            }
        };
        let range = self
            .config
            .host_link_addresses
            .as_ref()
            .and_then(|ipam| ipam.0.range(data))
            // a route to the whole subnet would compete with the host's
            // own through the parent
            .filter(|r| r.prefix_len() > data.pool.prefix_len() && data.pool.contains(r));
        Ok(HostLink {
            name: host_link_name(id),
            address,
            range,
            lease,
            mac: None,
        })
    }

    /// Leases network `network`'s host link address from the LAN's DHCP
    /// server (`dhcp=on`); the returned link is not made yet. Routes go
    /// per container: the server, not an `--ip-range`, owns the addresses.
    pub(crate) async fn lease_host_link(
        &self,
        network: &NetworkRecord,
    ) -> Result<(HostLink, LeaseRecord), DriverError> {
        let key = host_link_lease_key(&network.id);
        let mac = own_mac(&network.options.kind).then(random_mac);
        let lease = self.acquire_lease(network, &key, mac, None).await?;
        let link = HostLink {
            name: host_link_name(&network.id),
            address: lease.lease.address,
            range: None,
            lease: None,
            mac,
        };
        Ok((link, lease))
    }

    /// Gives back the address a planned or deleted host link reserved.
    pub(crate) async fn release_host_address(&self, link: &HostLink) {
        if let (Some(ipam), Some(lease)) = (&self.config.host_link_addresses, &link.lease) {
            ipam.0.release(lease, link.address).await;
        }
    }

    /// Makes `network`'s host link as its record says (created, keeping to
    /// its own addresses, up, with its address) and returns its index. A
    /// link of that name that is not ours, or not on the parent, is
    /// replaced; one of ours made before host links kept to their own
    /// addresses is set so.
    pub(crate) async fn ensure_host_link(
        &self,
        network: &NetworkRecord,
        link: &HostLink,
    ) -> Result<u32, DriverError> {
        let failed = |source| DriverError::HostLinkFailed {
            name: link.name.clone(),
            parent: network.parent.clone(),
            source,
        };
        let parent = self.parent_up(network).await?;
        let existing = self.netlink.get(&link.name).await?;
        let index = match existing {
            Some(l)
                if l.parent == Some(parent.index)
                    && link::is_slave_kind(l.kind.as_deref())
                    && self.owns(&l) =>
            {
                l
            }
            other => {
                if let Some(l) = other {
                    tracing::warn!(link = %l.name, "replacing a link in the host link's place");
                    self.netlink.delete(l.index, &l.name).await?;
                }
                self.netlink
                    .create_slave(
                        &link.name,
                        parent.index,
                        &network.options.kind,
                        network.options.mtu,
                        self.link_group,
                    )
                    .await
                    .map_err(failed)?;
                tracing::info!(network = %network.id, link = %link.name, address = %link.address, "created host link");
                self.netlink
                    .get(&link.name)
                    .await?
                    .ok_or_else(|| DriverError::NoParent(link.name.clone()))?
            }
        };
        if !index.own_addresses_only {
            // before it is up: no link-local address, and no ARP answer
            // for the host's other addresses, ever
            self.netlink
                .set_own_addresses_only(index.index)
                .await
                .map_err(failed)?;
        }
        if let Some(mac) = link.mac.filter(|m| index.mac != Some(*m)) {
            // the MAC its DHCP lease was asked with
            self.netlink
                .set_address(index.index, mac)
                .await
                .map_err(failed)?;
        }
        if !index.up {
            self.netlink.set_up(index.index).await.map_err(failed)?;
        }
        self.netlink
            .add_host_address(index.index, link.address)
            .await
            .map_err(failed)?;
        Ok(index.index)
    }

    /// Makes `network`'s host link and exactly the routes through it that
    /// `endpoints` call for (start-up, and CreateNetwork).
    pub(crate) async fn restore_host_link<'a>(
        &self,
        network: &NetworkRecord,
        endpoints: impl Iterator<Item = &'a EndpointRecord>,
    ) -> Result<(), DriverError> {
        let Some(link) = &network.host_link else {
            return Ok(());
        };
        let index = self.ensure_host_link(network, link).await?;
        let wanted = wanted_routes(link, &network.id, endpoints);
        let present: BTreeSet<HostRoute> =
            self.netlink.host_routes(index).await?.into_iter().collect();
        for stale in present.difference(&wanted) {
            tracing::info!(network = %network.id, link = %link.name, route = %stale.destination, "removing route the records do not call for");
            self.netlink.delete_host_route(index, stale).await?;
        }
        for missing in wanted.difference(&present) {
            self.add_host_route(network, link, index, missing).await?;
        }
        Ok(())
    }

    async fn add_host_route(
        &self,
        network: &NetworkRecord,
        link: &HostLink,
        index: u32,
        route: &HostRoute,
    ) -> Result<(), DriverError> {
        self.netlink
            .add_host_route(index, route)
            .await
            .map_err(|source| DriverError::HostLinkFailed {
                name: link.name.clone(),
                parent: network.parent.clone(),
                source,
            })?;
        tracing::debug!(network = %network.id, link = %link.name, route = %route.destination, "host route added");
        Ok(())
    }

    /// At Join: the route to the joining container's address (and the
    /// host link itself, should it have gone).
    pub(crate) async fn route_to_endpoint(
        &self,
        network: &NetworkRecord,
        endpoint: &EndpointRecord,
    ) -> Result<(), DriverError> {
        let Some(link) = &network.host_link else {
            return Ok(());
        };
        let index = self.ensure_host_link(network, link).await?;
        for route in wanted_routes(link, &network.id, std::iter::once(endpoint)) {
            self.add_host_route(network, link, index, &route).await?;
        }
        Ok(())
    }

    /// At DeleteEndpoint: the route to the container's address goes with
    /// it (a range route stays for the others).
    pub(crate) async fn unroute_endpoint(&self, link: &HostLink, endpoint: &EndpointRecord) {
        let Some(route) = endpoint_route(link, endpoint) else {
            return;
        };
        let deleted = match self.netlink.get(&link.name).await {
            Ok(Some(l)) => self.netlink.delete_host_route(l.index, &route).await,
            Ok(None) => Ok(false),
            Err(e) => Err(e),
        };
        if let Err(e) = deleted {
            // reconcile removes it at the next start
            tracing::warn!(link = %link.name, route = %route.destination, error = %e, "could not delete host route");
        }
    }

    /// Deletes a host link (its routes go with it).
    pub(crate) async fn delete_host_link(&self, link: &HostLink) -> Result<(), DriverError> {
        if let Some(l) = self.netlink.get(&link.name).await?
            && self.owns(&l)
        {
            self.netlink.delete(l.index, &l.name).await?;
            tracing::info!(link = %link.name, "deleted host link");
        }
        Ok(())
    }
}
