//! Endpoints: CreateEndpoint, EndpointOperInfo and DeleteEndpoint.

use crate::link;
use crate::names::{slave_name, unique_slave_name};
use crate::options::LinkKind;
use crate::records::{ENDPOINTS, EndpointRecord};
use crate::state::{delete, put};
use crate::{Driver, DriverError};
use protocol::network::{CreateEndpointRequest, DeleteEndpointRequest, EndpointInfoRequest};
use std::collections::BTreeMap;
use std::time::Instant;

impl Driver {
    /// `CreateEndpoint`: record the endpoint's addresses.
    pub async fn create_endpoint(&self, req: &CreateEndpointRequest) -> Result<(), DriverError> {
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
        let spare = match state.endpoints.get(eid) {
            Some(_) => None,
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
            address: req.interface.address,
            address_ipv6: req.interface.address_ipv6,
        };
        match state.endpoints.get(eid) {
            // a repeated create: answered once the first copy is durable
            Some(existing) if existing == &record => {
                let pending = self.store.submit(Vec::new());
                drop(state);
                return Ok(pending.durable().await?);
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
        let op = match put(ENDPOINTS, eid, &record) {
            Ok(op) => op,
            Err(e) => {
                // nothing is stored: the spare claimed above goes as if it expired
                state.discard_spares(&self.reaper, spare);
                return Err(e);
            }
        };
        let commit = self.store.submit(vec![op]);
        let (address, address_ipv6) = (record.address, record.address_ipv6);
        state.insert_endpoint(record);
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
        Ok(())
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
            // as in create_endpoint: applied under the lock, awaited without
            let commit = self.store.submit(vec![delete(ENDPOINTS, eid)]);
            drop(state);
            commit.durable().await?;
            tracing::info!(network = nid, endpoint = eid, "endpoint deleted");
            if let (Some(link), Some(removed)) = (host_link, removed) {
                self.unroute_endpoint(&link, &removed).await;
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
