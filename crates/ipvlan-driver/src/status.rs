//! The operator's view of the driver (`GET /status`): its networks and
//! endpoints as recorded, set beside the kernel's links, and the *drift*
//! between the two.
//!
//! Cost: one netlink dump of the host namespace's links, taken while
//! holding the state lock (so no network is half created in it), plus
//! work linear in networks, endpoints and links. Nothing is changed.
//!
//! What the plugin cannot see: a joined endpoint's link lives in its
//! container's namespace, where the plugin does not look; and whether an
//! endpoint is joined is kept in memory only (a durable record would add a
//! commit to every `docker run`), so for endpoints loaded at start it is
//! known only when their link is in the host namespace (then they are not
//! in a container). What it can see of a container's link: each endpoint
//! records the interface index of the parent its link is made on, and the
//! kernel deletes a parent's ipvlan and macvlan links with it, in every
//! namespace; a parent gone or re-created (another index) means the link
//! is gone ([`Drift::endpoints_on_a_lost_parent`]).

use crate::records::{CreatedParent, LeaseRecord, Subnet};
use crate::{Driver, DriverError, Link};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::Ipv4Addr;

/// Where an endpoint touched since start is in its life (memory only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// CreateEndpoint recorded it; no Join yet, so no link unless a spare
    /// was claimed for it.
    Created,
    /// Join made or reused its link; the engine moves it into the container.
    Joined,
    /// Leave: the engine moved the link back to the host; DeleteEndpoint
    /// follows.
    Left,
}

/// The driver's side of `GET /status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverStatus {
    /// The link group this instance creates its links in.
    pub link_group: u32,
    /// Networks, by ID.
    pub networks: Vec<NetworkStatus>,
    /// Endpoints, by network and ID.
    pub endpoints: Vec<EndpointStatus>,
    /// Where the kernel and the records disagree.
    pub drift: Drift,
}

/// One network. (The engine never tells a driver a network's name:
/// `docker network ls --no-trunc` maps the IDs.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkStatus {
    /// The engine's network ID.
    pub id: String,
    /// `ipvlan` or `macvlan`.
    pub kind: String,
    /// The mode (and for ipvlan the flag), e.g. `l2 bridge`, `bridge`.
    pub mode: String,
    /// The parent interface's name.
    pub parent: String,
    /// Whether the parent is administratively up; `None` when it is not
    /// in the host namespace (see [`Drift::missing_parents`]).
    pub parent_up: Option<bool>,
    /// Whether the parent has a carrier (`IFF_LOWER_UP`): an up parent
    /// without one (cable out, switch port down) carries nothing.
    #[serde(default)]
    pub parent_carrier: Option<bool>,
    /// The parent's operational state (RFC 2863, as `ip link` shows it,
    /// in lower case): `up`, `down`, `lowerlayerdown`, `dormant`,
    /// `unknown` (a dummy's, always)...
    #[serde(default)]
    pub parent_oper_state: Option<String>,
    /// Set when this driver created the parent (802.1Q or dummy).
    pub created_parent: Option<CreatedParent>,
    /// No external connectivity.
    pub internal: bool,
    /// The containers' MTU, if the network sets one.
    pub mtu: Option<u32>,
    /// IPv4 subnets and gateways.
    pub ipv4: Vec<Subnet>,
    /// IPv6 subnets and gateways.
    pub ipv6: Vec<Subnet>,
    /// Endpoints recorded on it.
    pub endpoints: usize,
    /// Released links kept for reuse (memory only, for a short window).
    pub spares: Vec<String>,
    /// Addresses come from the LAN's DHCP server (`-o dhcp=on`).
    #[serde(default)]
    pub dhcp: bool,
    /// The network's host link (`-o host_link`), if it has one.
    #[serde(default)]
    pub host_link: Option<HostLinkStatus>,
}

/// A network's host link as recorded, and whether the kernel has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostLinkStatus {
    /// The link's name (`ivh` + the network ID's prefix).
    pub name: String,
    /// The host's address on it.
    pub address: std::net::Ipv4Addr,
    /// The one route through it (`--ip-range`); `None`: a route per
    /// container address.
    pub range: Option<IpNet>,
    /// Whether the link is in the host namespace (see
    /// [`Drift::missing_host_links`]).
    pub present: bool,
    /// Its address's DHCP lease, in a `dhcp=on` network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseStatus>,
}

/// One endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointStatus {
    /// The engine's endpoint ID.
    pub id: String,
    /// Its network.
    pub network: String,
    /// Its link's name in the host namespace.
    pub link: String,
    /// IPv4 address.
    pub ipv4: Option<IpNet>,
    /// IPv6 address.
    pub ipv6: Option<IpNet>,
    /// The link's MAC where the plugin can see it: the link's own while
    /// it is in the host namespace, the parent's for ipvlan (its links
    /// share it); `None` for a macvlan link inside a container.
    pub mac: Option<String>,
    /// Whether it is joined: known for endpoints created or joined since
    /// start, and for others whose link is in the host namespace (not
    /// joined); `None` otherwise.
    pub joined: Option<bool>,
    /// Whether its link is in the host namespace now (not in a container).
    pub link_in_host: bool,
    /// Its DHCP lease, on a `dhcp=on` network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseStatus>,
}

/// An endpoint's DHCP lease as the driver holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseStatus {
    /// The leased address.
    pub address: Ipv4Addr,
    /// Option 61 as sent, as text where it is printable (after its type
    /// byte), else as hex.
    pub client_id: String,
    /// Option 61 as sent, in colon-separated hex (type byte included), as
    /// dnsmasq's lease file shows it.
    pub client_id_hex: String,
    /// The server that granted it.
    pub server: Ipv4Addr,
    /// When it ends, in seconds since the Unix epoch; `None`: never.
    pub expires_at: Option<u64>,
    /// The server refused to extend it or it ran out: the driver no
    /// longer renews it.
    pub lost: bool,
}

impl LeaseStatus {
    fn of(record: &LeaseRecord) -> LeaseStatus {
        let id = &record.client_id;
        let text = id
            .split_first()
            .filter(|(_, rest)| !rest.is_empty())
            .and_then(|(_, rest)| std::str::from_utf8(rest).ok())
            .filter(|t| t.chars().all(|c| c.is_ascii_graphic()));
        let hex = id
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":");
        LeaseStatus {
            address: record.lease.address,
            client_id: text.map_or_else(|| hex.clone(), str::to_string),
            client_id_hex: hex,
            server: record.lease.server,
            expires_at: record.lease.expires_at(),
            lost: record.lost,
        }
    }
}

/// Where the kernel and the records disagree. After a restart, reconcile
/// deletes `orphan_links` and re-creates the created parents among
/// `missing_parents` (their endpoints' links are not re-created: they
/// stay in `endpoints_on_a_lost_parent`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    /// Links of this instance's group that belong to no endpoint, spare or
    /// network (links queued for deletion are not listed).
    pub orphan_links: Vec<OrphanLink>,
    /// Endpoints whose link should be in the host namespace and is not: a
    /// left endpoint (the engine moved its link back), or one holding a
    /// spare for its Join.
    pub missing_links: Vec<MissingLink>,
    /// Networks whose parent is not in the host namespace.
    pub missing_parents: Vec<MissingParent>,
    /// Endpoints whose link was made on a parent that is gone, or that was
    /// re-created since (another interface index): the kernel deleted the
    /// link with it, even from a container. Listed are endpoints joined,
    /// left, or loaded at start, whose link is not in the host namespace;
    /// a restart does not clear them, the engine deleting the endpoint
    /// (the container stopped, restarted or disconnected) does.
    #[serde(default)]
    pub endpoints_on_a_lost_parent: Vec<EndpointOnLostParent>,
    /// Networks whose host link is not in the host namespace (the next
    /// start re-creates it).
    #[serde(default)]
    pub missing_host_links: Vec<MissingHostLink>,
}

/// A network whose recorded host link the kernel does not have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingHostLink {
    /// The network.
    pub network: String,
    /// The host link's name.
    pub link: String,
}

impl Drift {
    /// Whether the kernel matches the records.
    pub fn is_empty(&self) -> bool {
        self.orphan_links.is_empty()
            && self.missing_links.is_empty()
            && self.missing_parents.is_empty()
            && self.endpoints_on_a_lost_parent.is_empty()
            && self.missing_host_links.is_empty()
    }
}

/// A link that belongs to nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrphanLink {
    /// Its name.
    pub name: String,
    /// Its interface index.
    pub index: u32,
    /// `container link`, `dummy parent` or `802.1Q parent`.
    pub what: String,
}

/// An endpoint whose link is missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingLink {
    /// The endpoint.
    pub endpoint: String,
    /// Its network.
    pub network: String,
    /// The link's name.
    pub link: String,
}

/// An endpoint whose link went with its parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointOnLostParent {
    /// The endpoint.
    pub endpoint: String,
    /// Its network.
    pub network: String,
    /// The parent's name.
    pub parent: String,
    /// The parent's interface index when the link was made on it.
    pub index_then: u32,
    /// The index of the interface of that name now; `None`: there is none.
    pub index_now: Option<u32>,
}

/// A network whose parent is missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingParent {
    /// The network.
    pub network: String,
    /// The parent's name.
    pub parent: String,
    /// Whether this driver created it (then a restart re-creates it; a
    /// user's interface must come back by itself).
    pub created: bool,
}

fn mac_text(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl Driver {
    /// Networks, endpoints and drift as they stand (see the module doc
    /// for what it costs and what it cannot see).
    pub async fn status(&self) -> Result<DriverStatus, DriverError> {
        let state = self.state.lock().await;
        let links = self.netlink.list().await?;
        let by_name: HashMap<&str, &Link> = links.iter().map(|l| (l.name.as_str(), l)).collect();

        let mut networks: Vec<NetworkStatus> = state
            .networks
            .values()
            .map(|n| {
                let parent = by_name.get(n.parent.as_str()).copied();
                let kind = n.options.kind.name();
                let full = n.options.kind.to_string();
                NetworkStatus {
                    id: n.id.clone(),
                    kind: kind.to_string(),
                    mode: full.strip_prefix(kind).unwrap_or(&full).trim().to_string(),
                    parent: n.parent.clone(),
                    parent_up: parent.map(|l| l.up),
                    parent_carrier: parent.map(|l| l.carrier),
                    parent_oper_state: parent.and_then(|l| l.oper_state.clone()),
                    created_parent: n.created_parent.clone(),
                    internal: n.internal,
                    mtu: n.options.mtu,
                    ipv4: n.ipv4.clone(),
                    ipv6: n.ipv6.clone(),
                    endpoints: state
                        .endpoints
                        .values()
                        .filter(|e| e.network_id == n.id)
                        .count(),
                    spares: state.spares.names(&n.id),
                    dhcp: n.options.dhcp,
                    host_link: n.host_link.as_ref().map(|h| HostLinkStatus {
                        name: h.name.clone(),
                        address: h.address,
                        range: h.range,
                        present: by_name.contains_key(h.name.as_str()),
                        lease: state
                            .leases
                            .get(&crate::host_link_lease_key(&n.id))
                            .map(LeaseStatus::of),
                    }),
                }
            })
            .collect();
        networks.sort_by(|a, b| a.id.cmp(&b.id));

        let mut drift = Drift::default();
        let mut endpoints: Vec<EndpointStatus> = Vec::with_capacity(state.endpoints.len());
        for e in state.endpoints.values() {
            let in_host = by_name.get(e.link.as_str()).copied();
            let phase = state.phases.get(&e.id).copied();
            let network = state.networks.get(&e.network_id);
            let ipvlan_parent_mac = network
                .filter(|n| n.options.kind.name() == "ipvlan")
                .and_then(|n| by_name.get(n.parent.as_str()))
                .and_then(|p| p.mac);
            let mac = in_host.and_then(|l| l.mac).or(ipvlan_parent_mac);
            let joined = match phase {
                Some(Phase::Joined) => Some(true),
                Some(Phase::Created | Phase::Left) => Some(false),
                None => in_host.map(|_| false),
            };
            let link_expected = phase == Some(Phase::Left) || state.claimed.contains_key(&e.id);
            if link_expected && in_host.is_none() {
                drift.missing_links.push(MissingLink {
                    endpoint: e.id.clone(),
                    network: e.network_id.clone(),
                    link: e.link.clone(),
                });
            }
            // a link was made (joined or left), or may have been (loaded at
            // start), and is not in the host: it is wherever the engine put
            // it unless its parent went
            let link_made = phase != Some(Phase::Created);
            if let Some(n) = network.filter(|_| link_made && in_host.is_none())
                && let Some(then) = e.parent_index.or(n.parent_index)
            {
                let now = by_name.get(n.parent.as_str()).map(|p| p.index);
                if now != Some(then) {
                    drift.endpoints_on_a_lost_parent.push(EndpointOnLostParent {
                        endpoint: e.id.clone(),
                        network: e.network_id.clone(),
                        parent: n.parent.clone(),
                        index_then: then,
                        index_now: now,
                    });
                }
            }
            endpoints.push(EndpointStatus {
                id: e.id.clone(),
                network: e.network_id.clone(),
                link: e.link.clone(),
                ipv4: e.address,
                ipv6: e.address_ipv6,
                mac: mac.as_ref().map(mac_text),
                joined,
                link_in_host: in_host.is_some(),
                lease: state.leases.get(&e.id).map(LeaseStatus::of),
            });
        }
        endpoints.sort_by(|a, b| (&a.network, &a.id).cmp(&(&b.network, &b.id)));
        drift
            .missing_links
            .sort_by(|a, b| (&a.network, &a.endpoint).cmp(&(&b.network, &b.endpoint)));
        drift
            .endpoints_on_a_lost_parent
            .sort_by(|a, b| (&a.network, &a.endpoint).cmp(&(&b.network, &b.endpoint)));

        for n in &networks {
            if let Some(h) = n.host_link.as_ref().filter(|h| !h.present) {
                drift.missing_host_links.push(MissingHostLink {
                    network: n.id.clone(),
                    link: h.name.clone(),
                });
            }
            if n.parent_up.is_none() {
                drift.missing_parents.push(MissingParent {
                    network: n.id.clone(),
                    parent: n.parent.clone(),
                    created: n.created_parent.is_some(),
                });
            }
        }
        for l in &links {
            if self.reaper.is_queued(l.index) {
                continue;
            }
            if let Some(orphan) = self.orphan(&state, l) {
                drift.orphan_links.push(OrphanLink {
                    name: l.name.clone(),
                    index: l.index,
                    what: orphan.what().to_string(),
                });
            }
        }
        drift.orphan_links.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(DriverStatus {
            link_group: self.link_group,
            networks,
            endpoints,
            drift,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(client_id: Vec<u8>, lease_secs: u32) -> LeaseRecord {
        LeaseRecord {
            endpoint: "e1".into(),
            network: "n1".into(),
            client_id,
            hardware: [2, 0, 0, 0, 0, 1],
            hostname: None,
            lease: dhcp::Lease {
                address: Ipv4Addr::new(10, 77, 0, 100),
                prefix_len: 24,
                router: None,
                server: Ipv4Addr::new(10, 77, 0, 1),
                server_mac: [2, 0, 0, 0, 0, 2],
                lease_secs,
                renew_secs: lease_secs / 2,
                rebind_secs: lease_secs / 8 * 7,
                granted_at: 1_000,
            },
            lost: false,
        }
    }

    #[test]
    fn a_lease_shows_its_client_id_as_text_where_printable_and_always_as_hex() {
        let shown = LeaseStatus::of(&record(crate::lease::client_id("e1"), 120));
        assert_eq!(shown.client_id, "ipvlan-rs:e1");
        assert_eq!(
            shown.client_id_hex,
            "00:69:70:76:6c:61:6e:2d:72:73:3a:65:31"
        );
        assert_eq!(shown.expires_at, Some(1_120));
        assert_eq!(shown.server, Ipv4Addr::new(10, 77, 0, 1));

        let shown = LeaseStatus::of(&record(vec![1, 2, 0, 0, 0, 0, 0xff], u32::MAX));
        assert_eq!(shown.client_id, "01:02:00:00:00:00:ff");
        assert_eq!(shown.expires_at, None);
    }
}
