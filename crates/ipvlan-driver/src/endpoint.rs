//! Endpoints: CreateEndpoint, EndpointOperInfo and DeleteEndpoint.

use crate::lease::{lease_address, lease_gateway, own_mac};
use crate::link;
use crate::names::{slave_name, unique_slave_name};
use crate::options::LinkKind;
use crate::records::{ENDPOINTS, EndpointRecord, LEASES, LeaseRecord};
use crate::state::{delete, put};
use crate::{Driver, DriverError};
use protocol::MacAddress;
use protocol::network::{
    CreateEndpointRequest, DeleteEndpointRequest, EndpointInfoRequest, EndpointInterface,
};
use std::collections::BTreeMap;
use std::time::Instant;

/// What CreateEndpoint tells the engine of an endpoint it leased: the
/// address, and for a macvlan endpoint the MAC the server saw.
fn leased_interface(record: &EndpointRecord) -> EndpointInterface {
    EndpointInterface {
        address: record.address,
        address_ipv6: None,
        mac_address: record.mac.map(MacAddress),
    }
}

impl Driver {
    /// `CreateEndpoint`: record the endpoint's addresses. On a `dhcp=on`
    /// network an endpoint the engine gave no IPv4 address gets a lease
    /// first; the answer then carries its address (and MAC).
    pub async fn create_endpoint(
        &self,
        req: &CreateEndpointRequest,
    ) -> Result<Option<EndpointInterface>, DriverError> {
        let (nid, eid) = (req.network_id.as_str(), req.endpoint_id.as_str());
        let network = {
            let state = self.state.lock().await;
            state
                .networks
                .get(nid)
                .ok_or_else(|| DriverError::NoNetwork(nid.to_string()))?
                .clone()
        };
        if !network.options.dhcp || req.interface.address.is_some() {
            return self.create_endpoint_record(req, None).await.map(|_| None);
        }
        // one lease per endpoint: a repeated create waits for the first
        let _turn = self.endpoint_turns.one(eid).await;
        {
            let state = self.state.lock().await;
            if let Some(existing) = state.endpoints.get(eid)
                && existing.network_id == nid
                && state.leases.contains_key(eid)
            {
                let interface = leased_interface(existing);
                let pending = self.store.submit(Vec::new());
                drop(state);
                pending.durable().await?;
                return Ok(Some(interface));
            }
        }
        let user_mac = match req.interface.mac_address {
            Some(mac) => Some(mac),
            None => req.options.mac_address()?,
        };
        if let (Some(mac), LinkKind::IpVlan { .. }) = (user_mac, &network.options.kind) {
            return Err(DriverError::MacOnIpvlan(mac.to_string()));
        }
        let hostname = req
            .options
            .0
            .get(protocol::options::ENDPOINT_NAME)
            .and_then(|v| v.as_str())
            .map(str::to_string);
        // a parent renamed since the network was made (found by the
        // alternative name typed): the record follows it, as at Join
        let parent = self.parent_up(&network).await?;
        self.follow_parent(&network, &parent).await?;
        let lease = self
            .acquire_lease(&network, eid, user_mac.map(|m| m.0), hostname)
            .await?;
        match self.create_endpoint_record(req, Some(&lease)).await {
            Ok(record) => Ok(Some(leased_interface(&record))),
            // the lease is another endpoint's too: releasing it would end that one's
            Err(e @ DriverError::DhcpAddressShared { .. }) => Err(e),
            Err(e) => {
                // nothing is stored: the address goes back to the server
                self.release_lease(&network, &lease).await;
                Err(e)
            }
        }
    }

    /// Records the endpoint (with its lease, if it has one) and returns
    /// the record.
    async fn create_endpoint_record(
        &self,
        req: &CreateEndpointRequest,
        lease: Option<&LeaseRecord>,
    ) -> Result<EndpointRecord, DriverError> {
        let (nid, eid) = (req.network_id.as_str(), req.endpoint_id.as_str());
        let mut state = self.state.lock().await;
        let network = state
            .networks
            .get(nid)
            .ok_or_else(|| DriverError::NoNetwork(nid.to_string()))?;
        let user_mac = match req.interface.mac_address {
            Some(mac) => Some(mac),
            None => req.options.mac_address()?,
        };
        if let (Some(mac), LinkKind::IpVlan { .. }) = (user_mac, &network.options.kind) {
            return Err(DriverError::MacOnIpvlan(mac.to_string()));
        }
        // the engine's IPAM never sends one, but another IPAM driver (or
        // none) can: an address no subnet of the network holds would give
        // the container an address its neighbours cannot reach
        for (address, subnets) in [
            (req.interface.address, &network.ipv4),
            (req.interface.address_ipv6, &network.ipv6),
        ] {
            if let Some(address) = address
                && !subnets.iter().any(|s| s.pool.contains(&address.addr()))
            {
                return Err(DriverError::AddressOutsideSubnets {
                    address,
                    network: nid.to_string(),
                    subnets: subnets
                        .iter()
                        .map(|s| s.pool.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        if req.options.has_port_mappings() {
            tracing::warn!(
                endpoint = eid,
                "{} networks do not publish ports; -p is ignored",
                network.options.kind.name()
            );
        }
        if let Some(l) = lease {
            crate::lease::check_address_unshared(&state.leases, eid, l, &network.parent)?;
        }
        let own_mac = own_mac(&network.options.kind);
        let network_parent_index = network.parent_index;
        // a leased macvlan endpoint's link must carry the lease's MAC: a
        // spare would come with another
        let spare = match state.endpoints.get(eid) {
            Some(_) => None,
            None if lease.is_some() => None,
            None => {
                state.spares.created(nid, Instant::now());
                state.spares.claim(nid)
            }
        };
        let link = match (state.endpoints.get(eid), &spare) {
            (Some(existing), _) => existing.link.clone(),
            (None, Some(spare)) => spare.name.clone(),
            (None, None) => unique_slave_name(eid, &state.links),
        };
        let record = EndpointRecord {
            id: eid.to_string(),
            network_id: nid.to_string(),
            link,
            address: match lease {
                Some(l) => lease_address(&l.lease),
                None => req.interface.address,
            },
            address_ipv6: req.interface.address_ipv6,
            mac: lease.filter(|_| own_mac).map(|l| l.hardware),
            gateway: lease.and_then(|l| lease_gateway(&l.lease)),
            // a repeated create keeps what a Join may have corrected
            parent_index: match state.endpoints.get(eid) {
                Some(existing) => existing.parent_index,
                None => network_parent_index,
            },
        };
        match state.endpoints.get(eid) {
            // a repeated create: answered once the first copy is durable
            Some(existing) if existing == &record => {
                let pending = self.store.submit(Vec::new());
                drop(state);
                pending.durable().await?;
                return Ok(record);
            }
            // an ID is the engine's for one endpoint: a second create with
            // other addresses (or on another network) is a mistake, not an update
            Some(existing) => {
                let show = |e: &EndpointRecord| {
                    format!(
                        "{} on {}",
                        [
                            e.address.map(|a| a.to_string()),
                            e.address_ipv6.map(|a| a.to_string())
                        ]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(", "),
                        e.network_id
                    )
                };
                return Err(DriverError::EndpointExists {
                    endpoint: eid.to_string(),
                    network: existing.network_id.clone(),
                    existing: show(existing),
                    requested: show(&record),
                });
            }
            None => {}
        }
        // Submitted and applied under the lock (commit order = apply
        // order), awaited without it, so that concurrent calls share one
        // commit. A failed commit stops the process: memory ahead of the
        // disk is never served for long.
        let ops = match (put(ENDPOINTS, eid, &record), lease) {
            (Ok(op), None) => Ok(vec![op]),
            (Ok(op), Some(l)) => put(LEASES, eid, l).map(|lease_op| vec![op, lease_op]),
            (Err(e), _) => Err(e),
        };
        let ops = match ops {
            Ok(ops) => ops,
            Err(e) => {
                // nothing is stored: the spare claimed above goes as if it expired
                state.discard_spares(&self.reaper, spare);
                return Err(e);
            }
        };
        let commit = self.store.submit(ops);
        let (address, address_ipv6) = (record.address, record.address_ipv6);
        if let Some(l) = lease {
            state.leases.insert(eid.to_string(), l.clone());
            self.counters.dhcp.set_leases_held(state.leases.len());
        }
        state.insert_endpoint(record.clone());
        state
            .phases
            .insert(eid.to_string(), crate::status::Phase::Created);
        if let Some(spare) = spare {
            state.claimed.insert(eid.to_string(), spare);
        }
        drop(state);
        commit.durable().await?;
        tracing::info!(
            network = nid,
            endpoint = eid,
            ?address,
            ?address_ipv6,
            "endpoint created"
        );
        Ok(record)
    }

    /// `EndpointOperInfo`: what `docker inspect` shows of the endpoint.
    pub async fn endpoint_info(
        &self,
        req: &EndpointInfoRequest,
    ) -> Result<BTreeMap<String, serde_json::Value>, DriverError> {
        let (nid, eid) = (req.network_id.as_str(), req.endpoint_id.as_str());
        let state = self.state.lock().await;
        let e = state.endpoint(nid, eid)?;
        let mut info = BTreeMap::new();
        info.insert(
            "link".to_string(),
            serde_json::Value::String(e.link.clone()),
        );
        if let Some(n) = state.networks.get(nid) {
            info.insert("parent".to_string(), n.parent.clone().into());
            info.insert("kind".to_string(), n.options.kind.to_string().into());
        }
        Ok(info)
    }

    /// `DeleteEndpoint`: forget the endpoint and hand its link, if it is
    /// still in the host namespace, to the reaper (see [`crate::reaper`]): the
    /// answer does not wait for the kernel's delete. Unknown endpoints
    /// succeed.
    pub async fn delete_endpoint(&self, req: &DeleteEndpointRequest) -> Result<(), DriverError> {
        let (nid, eid) = (req.network_id.as_str(), req.endpoint_id.as_str());
        // not beside a Join of this endpoint, which may be creating its link
        let _turn = self.endpoint_turns.one(eid).await;
        let mut state = self.state.lock().await;
        let known = state
            .endpoints
            .get(eid)
            .map(|e| (e.network_id == nid, e.link.clone()));
        let name = match &known {
            Some((true, link)) => link.clone(),
            // the engine replays deletes of endpoints we never knew; an ID
            // known on another network is not this one either
            Some((false, _)) | None => {
                let name = slave_name(eid);
                if known.is_some() || state.links.contains(&name) {
                    tracing::debug!(
                        network = nid,
                        endpoint = eid,
                        "delete of unknown endpoint ignored"
                    );
                    // the answer may rest on a delete still being committed
                    let pending = self.store.submit(Vec::new());
                    drop(state);
                    return Ok(pending.durable().await?);
                }
                name
            }
        };
        // looked up now, while the name is still this endpoint's: the
        // reaper deletes by index, so a later link of the same name is safe
        let link = self.netlink.get_with_shape(&name).await?;
        if known.is_some() {
            state.claimed.remove(eid);
            let host_link = state.networks.get(nid).and_then(|n| n.host_link.clone());
            let removed = state.remove_endpoint(eid);
            let lease = state.leases.remove(eid);
            self.counters.dhcp.set_leases_held(state.leases.len());
            let network = state.networks.get(nid).cloned();
            let mut ops = vec![delete(ENDPOINTS, eid)];
            if lease.is_some() {
                ops.push(delete(LEASES, eid));
            }
            // as in create_endpoint: applied under the lock, awaited without
            let commit = self.store.submit(ops);
            drop(state);
            commit.durable().await?;
            tracing::info!(network = nid, endpoint = eid, "endpoint deleted");
            if let (Some(link), Some(removed)) = (host_link, removed) {
                self.unroute_endpoint(&link, &removed).await;
            }
            if let (Some(lease), Some(network)) = (lease, network) {
                self.release_lease(&network, &lease).await;
            }
        } else {
            // a replayed delete: the first copy's commit may be in flight
            let pending = self.store.submit(Vec::new());
            drop(state);
            pending.durable().await?;
        }
        if let Some((link, shape)) =
            link.filter(|(l, _)| link::is_slave_kind(l.kind.as_deref()) && self.owns(l))
        {
            if known.is_some() && self.keep_spare(nid, &link, &shape).await {
                tracing::debug!(endpoint = eid, link = %name, "host-side link kept for reuse");
            } else {
                tracing::debug!(endpoint = eid, link = %name, "host-side link queued for deletion");
                self.reaper.delete(link.index, name);
            }
        }
        Ok(())
    }

    /// Waits until every link handed to the reaper so far is deleted (at
    /// shutdown, and in tests that look at the host's links).
    pub async fn flush_deletions(&self) {
        let mut state = self.state.lock().await;
        let spares = state.spares.drain();
        state.discard_spares(&self.reaper, spares);
        drop(state);
        self.reaper.flush().await;
    }
}
