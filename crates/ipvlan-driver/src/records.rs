//! Durable records of networks and endpoints.

use crate::options::NetworkOptions;
use ipnet::IpNet;
use protocol::network::IpamData;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr};

pub(crate) const NETWORKS: &str = "networks";
pub(crate) const ENDPOINTS: &str = "endpoints";
/// This state's own facts (its link group); added in 0.1 without a schema
/// bump: opening an older file creates the table.
pub(crate) const INSTANCE: &str = "instance";
/// DHCP leases of endpoints, by endpoint ID, and of host links, by
/// [`host_link_lease_key`](crate::host_link_lease_key); added without a
/// schema bump like `instance`.
pub(crate) const LEASES: &str = "leases";
pub(crate) const TABLES: &[&str] = &[NETWORKS, ENDPOINTS, INSTANCE, LEASES];

/// One subnet of a network and its gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    /// The subnet.
    pub pool: IpNet,
    /// Its gateway, when the engine reserved one.
    pub gateway: Option<IpAddr>,
}

impl Subnet {
    pub(crate) fn from_ipam(d: &IpamData) -> Subnet {
        Subnet {
            pool: d.pool.trunc(),
            gateway: d.gateway.map(|g| g.addr()),
        }
    }
}

/// A parent link this driver created (and deletes with its last network).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum CreatedParent {
    /// An 802.1Q link on `base`.
    Vlan {
        /// The base interface.
        base: String,
        /// The VLAN ID.
        vid: u16,
    },
    /// A dummy link (networks without a parent).
    Dummy,
}

/// A network as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    /// The engine's network ID.
    pub id: String,
    /// The parsed options.
    pub options: NetworkOptions,
    /// The resolved parent interface name.
    pub parent: String,
    /// Set when this driver created the parent.
    pub created_parent: Option<CreatedParent>,
    /// No external connectivity (`--internal`, or no parent).
    pub internal: bool,
    /// IPv4 subnets.
    pub ipv4: Vec<Subnet>,
    /// IPv6 subnets.
    pub ipv6: Vec<Subnet>,
    /// The host link, when `-o host_link` asked for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_link: Option<HostLink>,
    /// The parent's interface index as the driver last saw it (at
    /// CreateNetwork, at start, or at a Join that found the parent
    /// re-created): the one new endpoints' links are expected on. `None`
    /// in records of older releases until the next start fills it in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_index: Option<u32>,
}

/// A network's host link (`ivh` + the network ID's prefix): a link of the
/// host's own on the parent, through which the host routes to the
/// network's containers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostLink {
    /// The link's name.
    pub name: String,
    /// Its address (a /32 on the link: the host's own route to the subnet
    /// through the parent stays as it is).
    pub address: Ipv4Addr,
    /// Where routes go through the link: the sub-pool (`--ip-range`) when
    /// the pool has one, one route to it; `None`, a route per container
    /// address as its container joins.
    pub range: Option<IpNet>,
    /// The IPAM pool the address is reserved in, when this plugin's IPAM
    /// reserved it for the link (released with the network); `None` when
    /// the engine reserved it (`--aux-address`) or another IPAM serves the
    /// network.
    pub lease: Option<String>,
    /// The MAC the link has: in a `dhcp=on` macvlan network, the `chaddr`
    /// its lease was asked with (the lease itself is in `leases`, under
    /// [`host_link_lease_key`](crate::host_link_lease_key)); `None`: the
    /// kernel's choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<[u8; 6]>,
}

/// An endpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRecord {
    /// The engine's endpoint ID.
    pub id: String,
    /// Its network.
    pub network_id: String,
    /// Name of its link in the host namespace (before the engine moves it).
    pub link: String,
    /// IPv4 address.
    pub address: Option<IpNet>,
    /// IPv6 address.
    pub address_ipv6: Option<IpNet>,
    /// The MAC the link gets (a macvlan endpoint of a DHCP network: the
    /// one its lease was asked with).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<[u8; 6]>,
    /// The default route's gateway, when the endpoint's own (a DHCP
    /// lease's router) rather than its subnet's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// The interface index of the parent its link is made on: the
    /// network's at CreateEndpoint, corrected by a Join that found the
    /// parent re-created. The kernel deletes a parent's ipvlan and macvlan
    /// links with it, in whatever namespace they are, so a parent of that
    /// name with another index (or none) means the link is gone, even from
    /// a container (see `status`). `None` in records of older releases:
    /// the network's is taken instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_index: Option<u32>,
}

/// A DHCP lease of an endpoint or of a host link, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// The endpoint it addresses, or the host link's
    /// [`host_link_lease_key`](crate::host_link_lease_key).
    pub endpoint: String,
    /// The endpoint's network.
    pub network: String,
    /// Option 61 as sent.
    pub client_id: Vec<u8>,
    /// `chaddr` as sent.
    pub hardware: [u8; 6],
    /// Option 12 as sent.
    pub hostname: Option<String>,
    /// What the server granted.
    pub lease: dhcp::Lease,
    /// Set once the server refused the lease or it ran out: renewals stop.
    #[serde(default)]
    pub lost: bool,
}
