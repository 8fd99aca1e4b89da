//! Join and Leave: the container's link (new, or a released one reused)
//! and the answer that tells the engine how to set it up.

use crate::link::{Link, LinkError, LinkShape};
use crate::names::random_mac;
use crate::options::LinkKind;
use crate::records::{ENDPOINTS, EndpointRecord, NETWORKS, NetworkRecord, Subnet};
use crate::state::put;
use crate::status::Phase;
use crate::{Driver, DriverError, spare};
use ipnet::IpNet;
use protocol::network::{
    InterfaceName, JoinRequest, JoinResponse, LeaveRequest, RouteType, StaticRoute,
};
use std::net::IpAddr;
use std::time::Instant;

/// The gateway of the subnet that holds `address`, if the subnet has one.
fn gateway_for(subnets: &[Subnet], address: Option<&IpNet>) -> Option<IpAddr> {
    let address = address?.addr();
    subnets
        .iter()
        .find(|s| s.pool.contains(&address))
        .and_then(|s| s.gateway)
}

/// The Join answer for an endpoint: L2 kinds use the subnet's gateway, L3
/// kinds a connected default route; internal networks get no default route.
/// The gateway service (`docker_gwbridge`) is always off.
pub fn join_response(network: &NetworkRecord, endpoint: &EndpointRecord) -> JoinResponse {
    let mut resp = JoinResponse {
        interface_name: Some(InterfaceName {
            src_name: endpoint.link.clone(),
            dst_prefix: "eth".into(),
        }),
        disable_gateway_service: true,
        ..JoinResponse::default()
    };
    if network.internal {
        return resp;
    }
    if network.options.kind.is_l3() {
        let defaults = [
            (endpoint.address.is_some(), "0.0.0.0/0"),
            (endpoint.address_ipv6.is_some(), "::/0"),
        ];
        for (has, dst) in defaults {
            if has && let Ok(destination) = dst.parse() {
                resp.static_routes.push(StaticRoute {
                    destination,
                    route_type: RouteType::Connected,
                    next_hop: None,
                });
            }
        }
    } else {
        resp.gateway = endpoint
            .gateway
            .or_else(|| gateway_for(&network.ipv4, endpoint.address.as_ref()));
        resp.gateway_ipv6 = gateway_for(&network.ipv6, endpoint.address_ipv6.as_ref());
    }
    resp
}

impl Driver {
    /// `Join`: create the container's link on the parent; the engine moves
    /// it into the container.
    ///
    /// The state lock is held only to read the records and to record the
    /// template, not across the netlink round trips (up to five): calls on
    /// other endpoints go on meanwhile. Calls on this endpoint wait for its
    /// turn (`EndpointTurns` in state.rs), so the records read
    /// stay true until the link is made: DeleteEndpoint waits, DeleteNetwork
    /// waits, and CreateNetwork and CreateEndpoint change no record of a
    /// network with endpoints or of a known endpoint.
    pub async fn join(&self, req: &JoinRequest) -> Result<JoinResponse, DriverError> {
        self.link_group_durable().await?;
        let (nid, eid) = (req.network_id.as_str(), req.endpoint_id.as_str());
        let _turn = self.endpoint_turns.one(eid).await;
        let (network, endpoint, claimed, template_wanted) = {
            let mut state = self.state.lock().await;
            let claimed = state.claimed.remove(eid);
            let network = state
                .networks
                .get(nid)
                .ok_or_else(|| DriverError::NoNetwork(nid.to_string()))?
                .clone();
            let endpoint = state.endpoint(nid, eid)?.clone();
            let template_wanted =
                !self.config.link_reuse_window.is_zero() && state.spares.template(nid).is_none();
            (network, endpoint, claimed, template_wanted)
        };
        let (network, endpoint) = (&network, &endpoint);
        // the host's route to the container, before its link: it leads
        // only to the container's address
        self.route_to_endpoint(network, endpoint).await?;
        let parent = self.parent_up(network).await?;
        // a parent renamed since the network was made (found by the
        // alternative name typed): the record follows it before the answer
        self.follow_parent(network, &parent).await?;
        self.note_parent_index(network, endpoint, parent.index)
            .await?;
        if let Some(spare) = claimed
            && endpoint.link == spare.name
            && self.reuse(&spare, network, &parent).await?
        {
            tracing::debug!(network = nid, endpoint = eid, link = %endpoint.link, "joined with a reused link");
            self.counters.link_reused();
            self.set_phase(eid, Phase::Joined).await;
            return Ok(join_response(network, endpoint));
        }
        let create = || {
            self.netlink.create_slave(
                &endpoint.link,
                parent.index,
                &network.options.kind,
                network.options.mtu,
                self.link_group,
            )
        };
        let mut created = create().await;
        if created.as_ref().is_err_and(LinkError::is_exists) {
            // a link left by an earlier attempt (the engine retries) is replaced
            tracing::debug!(endpoint = eid, link = %endpoint.link, "replacing existing link");
            if self.netlink.delete_by_name(&endpoint.link).await? {
                self.counters.links_deleted(1);
            }
            created = create().await;
        }
        if let Err(e) = created {
            let hint = if e.errno() == Some(16) {
                " (EBUSY: the parent carries links of another kind, e.g. macvlan beside ipvlan)"
            } else if e.is_unsupported() {
                match network.options.kind {
                    LinkKind::IpVlan { .. } => {
                        " (EOPNOTSUPP: the kernel lacks ipvlan links; try modprobe ipvlan or -o kind=macvlan)"
                    }
                    _ => " (EOPNOTSUPP: the kernel lacks macvlan links; try modprobe macvlan)",
                }
            } else {
                ""
            };
            return Err(DriverError::JoinFailed {
                parent: parent.name.clone(),
                source: e,
                hint,
            });
        }
        if let Some(mac) = endpoint.mac {
            // the MAC its DHCP lease was asked with: the server's binding
            // names it (the engine sets it too, from CreateEndpoint's answer)
            if let Some(link) = self.netlink.get(&endpoint.link).await? {
                self.netlink.set_address(link.index, mac).await?;
            }
        }
        tracing::info!(network = nid, endpoint = eid, link = %endpoint.link, parent = %parent.name, "joined");
        self.counters.link_created();
        let response = join_response(network, endpoint);
        if template_wanted {
            // what a fresh link of this network looks like, to judge released ones by
            if let Some((_, shape)) = self.netlink.get_with_shape(&endpoint.link).await? {
                let mut state = self.state.lock().await;
                // a Join of another endpoint may have set it meanwhile
                if state.spares.template(nid).is_none() && state.networks.contains_key(nid) {
                    state.spares.set_template(nid, shape);
                }
            }
        }
        self.set_phase(eid, Phase::Joined).await;
        Ok(response)
    }

    /// The network's parent ([`Driver::parent_device`]: renamed or not),
    /// brought up if it is down: the links on it carry nothing while it is.
    pub(crate) async fn parent_up(&self, network: &NetworkRecord) -> Result<Link, DriverError> {
        let parent = self
            .parent_device(network)
            .await?
            .ok_or_else(|| DriverError::NoParent(network.parent.clone()))?;
        if !parent.up {
            self.netlink.set_up(parent.index).await?;
        }
        Ok(parent)
    }

    /// Records that `endpoint`'s link is made on the parent with `index`
    /// and that its network's parent has that index, where the records say
    /// otherwise: the parent was re-created since they were written (a
    /// commit only then). The operator's view tells the links that died
    /// with an earlier parent by it.
    async fn note_parent_index(
        &self,
        network: &NetworkRecord,
        endpoint: &EndpointRecord,
        index: u32,
    ) -> Result<(), DriverError> {
        if network.parent_index == Some(index) && endpoint.parent_index == Some(index) {
            return Ok(());
        }
        let mut state = self.state.lock().await;
        let stale = |i: Option<u32>| i != Some(index);
        let network_now = state
            .networks
            .get(&network.id)
            .filter(|n| stale(n.parent_index))
            .map(|n| NetworkRecord {
                parent_index: Some(index),
                ..n.clone()
            });
        let endpoint_now = state
            .endpoints
            .get(&endpoint.id)
            .filter(|e| stale(e.parent_index))
            .map(|e| EndpointRecord {
                parent_index: Some(index),
                ..e.clone()
            });
        let mut ops = Vec::new();
        if let Some(n) = &network_now {
            ops.push(put(NETWORKS, &n.id, n)?);
        }
        if let Some(e) = &endpoint_now {
            ops.push(put(ENDPOINTS, &e.id, e)?);
        }
        if ops.is_empty() {
            return Ok(());
        }
        // as in create_endpoint: applied under the lock, awaited without
        let commit = self.store.submit(ops);
        if let Some(n) = network_now {
            tracing::info!(network = %n.id, parent = %n.parent, was = ?network.parent_index, index, "the parent has a new interface index (re-created): recorded");
            state.networks.insert(n.id.clone(), n);
        }
        if let Some(e) = endpoint_now {
            // its link name stays: the index of names needs no change
            state.endpoints.insert(e.id.clone(), e);
        }
        drop(state);
        Ok(commit.durable().await?)
    }

    /// Notes where endpoint `eid` is in its life, if it still exists (for
    /// the operator's view only: nothing acts on it).
    async fn set_phase(&self, eid: &str, phase: Phase) {
        let mut state = self.state.lock().await;
        if state.endpoints.contains_key(eid) {
            state.phases.insert(eid.to_string(), phase);
        }
    }

    /// Readies a claimed spare for the endpoint joining with it: a macvlan
    /// link gets a new random MAC, as a new link would. `Ok(false)` if the
    /// spare no longer fits (its parent or MTU changed) or is gone: the
    /// caller creates a new link, replacing it.
    async fn reuse(
        &self,
        spare: &spare::Spare,
        network: &NetworkRecord,
        parent: &Link,
    ) -> Result<bool, DriverError> {
        let mtu = network.options.mtu.or(parent.mtu);
        if spare.parent != Some(parent.index) || spare.mtu != mtu {
            tracing::debug!(link = %spare.name, "spare no longer fits its parent; replacing it");
            return Ok(false);
        }
        match network.options.kind {
            // a NIC that refuses a MAC change makes the spare unfit, not
            // the Join: the caller replaces it with a new link
            LinkKind::MacVlan { .. } => {
                match self.netlink.set_address(spare.index, random_mac()).await {
                    Ok(there) => Ok(there),
                    Err(e) => {
                        tracing::debug!(link = %spare.name, error = %e, "spare refused a new MAC; replacing it");
                        Ok(false)
                    }
                }
            }
            // an ipvlan link has its parent's MAC
            LinkKind::IpVlan { .. } => Ok(self
                .netlink
                .get_by_index(spare.index)
                .await?
                .is_some_and(|l| l.name == spare.name)),
        }
    }

    /// `Leave`: nothing to do; the engine moves the link back to the host
    /// and DeleteEndpoint removes it.
    pub async fn leave(&self, req: &LeaveRequest) -> Result<(), DriverError> {
        tracing::debug!(network = %req.network_id, endpoint = %req.endpoint_id, "left");
        // the engine moves the link back to the host before DeleteEndpoint
        self.set_phase(req.endpoint_id.as_str(), Phase::Left).await;
        Ok(())
    }

    /// Keeps a released link of network `nid` as a spare if [`spare`]'s
    /// rules allow, and arms its expiry; `false` if it must be deleted.
    pub(crate) async fn keep_spare(&self, nid: &str, link: &Link, shape: &LinkShape) -> bool {
        let window = self.config.link_reuse_window;
        if window.is_zero() || link.group != Some(self.link_group) {
            return false;
        }
        let mut state = self.state.lock().await;
        // the name may have been given to a new endpoint meanwhile
        let Some(network) = state.networks.get(nid) else {
            return false;
        };
        // a passthru link's MAC is the NIC's own: the new MAC a reused
        // link gets would change the parent's
        if network.options.kind.is_passthru() {
            tracing::debug!(link = %link.name, reason = "macvlan passthru", "released link not kept for reuse");
            return false;
        }
        if state.links.contains(&link.name) {
            return false;
        }
        if let Some(why) = state.spares.refusal(nid, shape, Instant::now(), window) {
            tracing::debug!(link = %link.name, reason = %why, "released link not kept for reuse");
            return false;
        }
        let id = state.spares.park(
            nid,
            spare::Spare {
                id: 0,
                name: link.name.clone(),
                index: link.index,
                parent: link.parent,
                mtu: link.mtu,
            },
        );
        state.links.insert(link.name.clone());
        let (shared, reaper, nid) = (self.state.clone(), self.reaper.clone(), nid.to_string());
        tokio::spawn(async move {
            tokio::time::sleep(window).await;
            let mut state = shared.lock().await;
            if let Some(spare) = state.spares.expire(&nid, id) {
                tracing::debug!(link = %spare.name, "spare not reused in time; queued for deletion");
                state.discard_spares(&reaper, [spare]);
            }
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::{self, NetworkOptions, ParentSpec};

    fn network(kind: LinkKind, internal: bool) -> NetworkRecord {
        NetworkRecord {
            id: "n".into(),
            options: NetworkOptions {
                parent: ParentSpec::Named {
                    name: "eth0".into(),
                },
                kind,
                mtu: None,
                host_link: None,
                dhcp: false,
            },
            parent: "eth0".into(),
            created_parent: None,
            internal,
            ipv4: vec![
                Subnet {
                    pool: "10.1.0.0/24".parse().unwrap(),
                    gateway: Some("10.1.0.1".parse().unwrap()),
                },
                Subnet {
                    pool: "10.2.0.0/24".parse().unwrap(),
                    gateway: None,
                },
            ],
            ipv6: vec![Subnet {
                pool: "fd00::/64".parse().unwrap(),
                gateway: Some("fd00::1".parse().unwrap()),
            }],
            host_link: None,
            parent_index: None,
        }
    }

    fn endpoint(v4: &str, v6: Option<&str>) -> EndpointRecord {
        EndpointRecord {
            id: "e".into(),
            network_id: "n".into(),
            link: "ivre".into(),
            address: Some(v4.parse().unwrap()),
            address_ipv6: v6.map(|a| a.parse().unwrap()),
            mac: None,
            gateway: None,
            parent_index: None,
        }
    }

    const L2: LinkKind = LinkKind::IpVlan {
        mode: options::IpvlanMode::L2,
        flag: options::IpvlanFlag::Bridge,
    };
    const L3: LinkKind = LinkKind::IpVlan {
        mode: options::IpvlanMode::L3,
        flag: options::IpvlanFlag::Bridge,
    };

    #[test]
    fn l2_join_returns_the_subnet_gateway() {
        let r = join_response(
            &network(L2, false),
            &endpoint("10.1.0.5/24", Some("fd00::5/64")),
        );
        assert_eq!(r.gateway, Some("10.1.0.1".parse().unwrap()));
        assert_eq!(r.gateway_ipv6, Some("fd00::1".parse().unwrap()));
        assert!(r.static_routes.is_empty() && r.disable_gateway_service);
        assert_eq!(r.interface_name.unwrap().dst_prefix, "eth");
        // a subnet without gateway: no default route
        let r = join_response(&network(L2, false), &endpoint("10.2.0.5/24", None));
        assert_eq!(r.gateway, None);
    }

    #[test]
    fn l3_join_returns_connected_default_routes() {
        let r = join_response(
            &network(L3, false),
            &endpoint("10.1.0.5/24", Some("fd00::5/64")),
        );
        assert_eq!(r.gateway, None);
        let routes: Vec<String> = r
            .static_routes
            .iter()
            .map(|s| s.destination.to_string())
            .collect();
        assert_eq!(routes, ["0.0.0.0/0", "::/0"]);
        assert!(
            r.static_routes
                .iter()
                .all(|s| s.route_type == RouteType::Connected && s.next_hop.is_none())
        );
        assert!(r.disable_gateway_service);
    }

    #[test]
    fn internal_join_has_no_default_route() {
        for kind in [L2, L3] {
            let r = join_response(&network(kind, true), &endpoint("10.1.0.5/24", None));
            assert!(r.gateway.is_none() && r.static_routes.is_empty() && r.disable_gateway_service);
        }
    }
}
