//! Networks: CreateNetwork and DeleteNetwork, and the parent links they
//! resolve, create, share and delete.

use crate::host_link_lease_key;
use crate::link::Link;
use crate::names::{ALIAS_PREFIX, dummy_name};
use crate::options::{self, LinkKind, NetworkOptions, ParentSpec};
use crate::records::{
    CreatedParent, ENDPOINTS, EndpointRecord, LEASES, LeaseRecord, NETWORKS, NetworkRecord, Subnet,
};
use crate::state::{State, delete, put};
use crate::{Driver, DriverError};
use protocol::ipam::{GLOBAL_SPACE, LOCAL_SPACE};
use protocol::network::{CreateNetworkRequest, DeleteNetworkRequest, Scope};
use std::collections::BTreeMap;
use store::Op;

/// The parent link a new network will use.
enum ParentLink {
    /// A link that exists (the user's, or one another network created).
    Existing(Link),
    /// A link to create, and for an 802.1Q link the device beneath it.
    Create {
        name: String,
        created: CreatedParent,
        lower: Option<Link>,
    },
}

/// Whether `req` is a Swarm network that reached a plugin of `SCOPE=local`
/// without `--config-from`. The manager allocates only for global-scope
/// drivers; for a local-scope one it hands each node the network with no
/// driver options and no pool of the plugin's IPAM (the node's default IPAM
/// then picks some subnet of its own, `LocalDefault`). Made as it comes, the
/// network would sit on a dummy parent (or `DEFAULT_PARENT`) in a subnet
/// nobody asked for. With `--config-from` the options of the node's
/// `--config-only` network arrive, so `-o` options or a pool of this
/// plugin's IPAM (`local`/`global`) show the network is the one asked for.
fn lost_swarm_options(req: &CreateNetworkRequest, scope: Scope) -> bool {
    scope == Scope::Local
        && req.network_id.is_swarm()
        && req.options.generic.is_empty()
        && req
            .ipv4_data
            .iter()
            .chain(&req.ipv6_data)
            .all(|d| ![LOCAL_SPACE, GLOBAL_SPACE].contains(&d.address_space.as_str()))
}

/// Refuses a container MTU above what the parent carries: macvlan refuses
/// such a link at every Join (EINVAL), and ipvlan accepts it and sends
/// frames the wire drops. `lower` names the device beneath an 802.1Q
/// parent still to be created, whose MTU is then the limit.
fn check_mtu(
    mtu: Option<u32>,
    parent: &str,
    limit_of: &Link,
    lower: Option<&str>,
) -> Result<(), DriverError> {
    match (mtu, limit_of.mtu) {
        (Some(mtu), Some(limit)) if mtu > limit => Err(DriverError::MtuAboveParent {
            mtu,
            parent: match lower {
                Some(lower) => format!("{parent}'s device {lower}"),
                None => parent.to_string(),
            },
            limit,
        }),
        _ => Ok(()),
    }
}

impl Driver {
    /// Creates the parent `name` of `network`: a dummy (given `mtu`, so that
    /// container links of that MTU fit on it) or an 802.1Q link.
    pub(crate) async fn create_parent(
        &self,
        network: &str,
        name: &str,
        created: &CreatedParent,
        mtu: Option<u32>,
    ) -> Result<(), DriverError> {
        let alias = format!("{ALIAS_PREFIX}{network}");
        match created {
            CreatedParent::Dummy => self
                .netlink
                .create_dummy(name, &alias, self.link_group, mtu)
                .await
                .map_err(|e| match e.is_unsupported() {
                    true => DriverError::ParentKindUnsupported {
                        kind: "dummy",
                        name: name.to_string(),
                        module: "dummy",
                        instead: ", or give -o parent=IFACE to put the network on an existing interface",
                        source: Box::new(e),
                    },
                    false => e.into(),
                })?,
            CreatedParent::Vlan { base, vid } => {
                let base_link = self.vlan_base(base, name).await?;
                let created = self
                    .netlink
                    .create_vlan(name, base_link.index, *vid, &alias, self.link_group)
                    .await;
                if created.as_ref().is_err_and(crate::link::LinkError::is_exists) {
                    return Err(DriverError::VlanExists {
                        name: name.to_string(),
                        base: base.clone(),
                        vid: *vid,
                        holder: self.vlan_holder(base_link.index, *vid).await,
                    });
                }
                created.map_err(|e| {
                        if e.is_unsupported() {
                            DriverError::ParentKindUnsupported {
                                kind: "802.1Q",
                                name: name.to_string(),
                                module: "8021q",
                                instead: "",
                                source: Box::new(e),
                            }
                        } else {
                            e.into()
                        }
                    })?;
            }
        }
        self.counters.parent_created();
        Ok(())
    }

    /// Which link has VLAN `vid` on the device `base`, and that it is the
    /// parent to give, for the error that refuses a second one.
    async fn vlan_holder(&self, base: u32, vid: u16) -> String {
        let links = self.netlink.list().await.unwrap_or_default();
        match links
            .into_iter()
            .find(|l| l.parent == Some(base) && l.vlan_id == Some(vid))
        {
            Some(l) => format!("as {0}; give -o parent={0} instead", l.name),
            None => "under another name; give that link as the parent".to_string(),
        }
    }

    /// Refuses a network whose kind of container link this kernel cannot
    /// make: found here, not at every `docker run`.
    async fn check_kind(&self, record: &NetworkRecord) -> Result<(), DriverError> {
        if self.netlink.kind_supported(&record.options.kind).await? {
            return Ok(());
        }
        let (kind, other) = match record.options.kind {
            LinkKind::IpVlan { .. } => ("ipvlan", "macvlan"),
            LinkKind::MacVlan { .. } => ("macvlan", "ipvlan"),
        };
        Err(DriverError::KindUnsupported {
            kind,
            other,
            network: record.id.clone(),
        })
    }

    /// The device beneath the 802.1Q link `name`.
    async fn vlan_base(&self, base: &str, name: &str) -> Result<Link, DriverError> {
        self.netlink
            .get(base)
            .await?
            .ok_or_else(|| DriverError::NoVlanBase {
                base: base.to_string(),
                name: name.to_string(),
            })
    }

    /// Finds the device a user's `-o parent=` names. The kernel resolves an
    /// alternative name (`ip link property add ... altname`) to its device,
    /// whose own name is what networks are compared and stored by. A
    /// missing `base.vid` becomes an 802.1Q link to create, named with the
    /// VLAN ID in decimal (`eth0.010` and `eth0.+10` are `eth0.10`) on the
    /// base device's name, so one VLAN of one device has one name.
    async fn resolve_named_parent(&self, typed: &str) -> Result<ParentLink, DriverError> {
        if let Some(link) = self.netlink.get(typed).await? {
            return Ok(ParentLink::Existing(link));
        }
        let Some((base, vid)) = options::vlan_parts(typed) else {
            return Err(DriverError::NoParent(typed.to_string()));
        };
        let lower = self.vlan_base(base, typed).await?;
        // the device's name may be longer than the alternative name typed
        let name = [format!("{}.{vid}", lower.name), format!("{base}.{vid}")]
            .into_iter()
            .find(|n| n.len() <= options::IFNAME_MAX)
            .unwrap_or_else(|| typed.to_string());
        if let Some(link) = self.netlink.get(&name).await? {
            return Ok(ParentLink::Existing(link));
        }
        Ok(ParentLink::Create {
            name,
            created: CreatedParent::Vlan {
                base: lower.name.clone(),
                vid,
            },
            lower: Some(lower),
        })
    }

    /// Parse and check network options without touching anything
    /// (GwAllocCheck, AllocateNetwork).
    pub fn check_options(
        &self,
        generic: &BTreeMap<String, String>,
    ) -> Result<NetworkOptions, DriverError> {
        Ok(NetworkOptions::parse(
            generic,
            self.config.default_parent.as_deref(),
        )?)
    }

    /// `CreateNetwork`: resolve the parent (creating an 802.1Q or dummy
    /// parent when needed) and record the network.
    pub async fn create_network(&self, req: &CreateNetworkRequest) -> Result<(), DriverError> {
        self.link_group_durable().await?;
        let id = req.network_id.as_str();
        if lost_swarm_options(req, self.config.scope) {
            return Err(DriverError::SwarmNetworkWithoutOptions {
                network: id.to_string(),
            });
        }
        let options = self.check_options(&req.options.generic)?;
        // the null IPAM's only pool is 0.0.0.0/0: the form a dhcp=on network
        // takes, since its addresses come from the server
        let null_pool = req.ipv4_data.iter().all(|d| d.pool.prefix_len() == 0);
        if options.dhcp && !null_pool {
            return Err(DriverError::DhcpNeedsNullIpam {
                network: id.to_string(),
                pools: req
                    .ipv4_data
                    .iter()
                    .map(|d| d.pool.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        if !options.dhcp && req.options.enable_ipv4.unwrap_or(true) && null_pool {
            return Err(DriverError::NoIpv4Pool);
        }
        let mut state = self.state.lock().await;
        let (parent, created_parent) = match &options.parent {
            ParentSpec::None => (dummy_name(id), Some(CreatedParent::Dummy)),
            ParentSpec::Auto => {
                let name = self
                    .netlink
                    .default_route_interface()
                    .await?
                    .ok_or(DriverError::NoDefaultRoute)?;
                (name, None)
            }
            ParentSpec::Named { name } => (name.clone(), None),
        };
        let record = NetworkRecord {
            id: id.to_string(),
            internal: req.options.internal || options.parent == ParentSpec::None,
            options,
            parent,
            created_parent,
            ipv4: req
                .ipv4_data
                .iter()
                .filter(|d| d.pool.prefix_len() != 0)
                .map(Subnet::from_ipam)
                .collect(),
            ipv6: req.ipv6_data.iter().map(Subnet::from_ipam).collect(),
            host_link: None,
            parent_index: None,
        };
        if let Some(existing) = state.networks.get(id) {
            // the engine re-creates Swarm networks with the same ID
            let same = existing.options == record.options
                && existing.ipv4 == record.ipv4
                && existing.ipv6 == record.ipv6;
            if same {
                tracing::info!(
                    network = id,
                    "network already known with the same configuration"
                );
                // answered once the first copy is durable
                return Ok(self.store.submit(Vec::new()).durable().await?);
            }
            if state.endpoints.values().any(|e| e.network_id == id) {
                return Err(DriverError::Exists(id.to_string()));
            }
        }
        let mut record = record;
        let resolved = match record.created_parent {
            Some(CreatedParent::Dummy) => match self.netlink.get(&record.parent).await? {
                Some(link) => ParentLink::Existing(link),
                None => ParentLink::Create {
                    name: record.parent.clone(),
                    created: CreatedParent::Dummy,
                    lower: None,
                },
            },
            _ => self.resolve_named_parent(&record.parent).await?,
        };
        match resolved {
            ParentLink::Existing(link) => {
                if link.loopback {
                    return Err(DriverError::Loopback(record.parent));
                }
                if link.name != record.parent {
                    tracing::info!(network = id, parent = %record.parent, device = %link.name, "parent named by an alternative name; the network uses the device's name");
                }
                record.parent = link.name.clone();
                record.parent_index = Some(link.index);
                check_mtu(record.options.mtu, &record.parent, &link, None)?;
                self.check_parent_sharing(&state, &record)?;
                self.check_kind(&record).await?;
                // another network of ours may have created it: share its ownership
                if record.created_parent.is_none() {
                    record.created_parent = state
                        .networks
                        .values()
                        .find(|n| n.parent == record.parent)
                        .and_then(|n| n.created_parent.clone());
                }
            }
            ParentLink::Create {
                name,
                created,
                lower,
            } => {
                record.parent = name;
                if let Some(lower) = &lower {
                    check_mtu(record.options.mtu, &record.parent, lower, Some(&lower.name))?;
                }
                self.check_parent_sharing(&state, &record)?;
                // before the parent is made: every Join would fail the same way
                self.check_kind(&record).await?;
                self.create_parent(id, &record.parent, &created, record.options.mtu)
                    .await?;
                tracing::info!(network = id, parent = %record.parent, kind = ?created, "created parent link");
                record.created_parent = Some(created);
                // not worth undoing the network for: the first Join fills it in
                record.parent_index = match self.netlink.get(&record.parent).await {
                    Ok(link) => link.map(|l| l.index),
                    Err(e) => {
                        tracing::warn!(network = id, parent = %record.parent, error = %e, "could not read the created parent's index");
                        None
                    }
                };
            }
        }
        let host_key = host_link_lease_key(id);
        if let Some(previous) = state.networks.get(id).and_then(|n| n.host_link.clone()) {
            // re-created with another configuration: the new one plans afresh
            self.delete_host_link(&previous).await?;
            self.release_host_address(&previous).await;
        }
        // a previous configuration's host link lease (its record is
        // replaced or deleted in the commit below)
        let previous_lease = state.leases.remove(&host_key);
        if let Some(lease) = &previous_lease {
            self.release_lease(&record, lease).await;
        }
        let mut host_lease = None;
        if let Some(option) = record.options.host_link {
            let planned = match record.options.dhcp {
                // an address another lease holds too is refused without a
                // release, which would end that one's (host_lease stays None)
                true => self
                    .lease_host_link(&record)
                    .await
                    .and_then(|(link, lease)| {
                        crate::lease::check_address_unshared(
                            &state.leases,
                            &host_key,
                            &lease,
                            &record.parent,
                        )?;
                        host_lease = Some(lease);
                        Ok(link)
                    }),
                false => self.plan_host_link(&state, req, option).await,
            };
            let made = match planned {
                Ok(link) => {
                    record.host_link = Some(link);
                    self.restore_host_link(&record, std::iter::empty()).await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = made {
                self.undo_create(&state, &record, host_lease.as_ref()).await;
                return Err(e);
            }
        }
        let mut ops = Vec::new();
        let prepared = put(NETWORKS, id, &record).and_then(|op| {
            ops.push(op);
            match &host_lease {
                Some(lease) => ops.push(put(LEASES, &host_key, lease)?),
                None if previous_lease.is_some() => ops.push(delete(LEASES, &host_key)),
                None => {}
            }
            Ok(())
        });
        let stored = match prepared {
            Ok(()) => self.store.submit(ops).durable().await.map_err(Into::into),
            Err(e) => Err(e),
        };
        if let Err(e) = stored {
            self.undo_create(&state, &record, host_lease.as_ref()).await;
            return Err(e);
        }
        if let Some(lease) = host_lease {
            state.leases.insert(host_key, lease);
        }
        self.counters.dhcp.set_leases_held(state.leases.len());
        if let Some(link) = &record.host_link {
            tracing::info!(network = id, link = %link.name, address = %link.address, range = ?link.range, "host link ready: the host reaches the network's containers through it, and they reach the host at its address");
        }
        tracing::info!(network = id, parent = %record.parent, kind = %record.options.kind, internal = record.internal, "network created");
        // spares and template of an earlier configuration under this ID
        // (re-created without a DeleteNetwork) do not fit this one
        let spares = state.spares.remove_network(id);
        state.discard_spares(&self.reaper, spares);
        state.networks.insert(id.to_string(), record);
        Ok(())
    }

    pub(crate) fn check_parent_sharing(
        &self,
        state: &State,
        record: &NetworkRecord,
    ) -> Result<(), DriverError> {
        for other in state
            .networks
            .values()
            .filter(|n| n.parent == record.parent && n.id != record.id)
        {
            let (mine, theirs) = (&record.options.kind, &other.options.kind);
            let agree = match (mine, theirs) {
                (
                    LinkKind::IpVlan { mode: a, flag: fa },
                    LinkKind::IpVlan { mode: b, flag: fb },
                ) => a == b && fa == fb,
                (LinkKind::MacVlan { mode: a }, LinkKind::MacVlan { mode: b }) => {
                    if *a == options::MacvlanMode::Passthru || *b == options::MacvlanMode::Passthru
                    {
                        return Err(DriverError::Passthru {
                            parent: record.parent.clone(),
                            other: other.id.clone(),
                        });
                    }
                    true
                }
                _ => false,
            };
            if !agree {
                return Err(DriverError::ParentConflict {
                    parent: record.parent.clone(),
                    other: other.id.clone(),
                    other_kind: theirs.to_string(),
                    network: record.id.clone(),
                    kind: mine.to_string(),
                });
            }
        }
        Ok(())
    }

    /// Takes back what a CreateNetwork that fails made: its host link and
    /// address (and the address's DHCP lease), and its parent.
    async fn undo_create(
        &self,
        state: &State,
        record: &NetworkRecord,
        host_lease: Option<&LeaseRecord>,
    ) {
        if let Some(link) = &record.host_link {
            if let Err(e) = self.delete_host_link(link).await {
                tracing::warn!(network = %record.id, link = %link.name, error = %e, "could not delete host link");
            }
            self.release_host_address(link).await;
        }
        if let Some(lease) = host_lease {
            self.release_lease(record, lease).await;
        }
        self.remove_parent_if_unused(state, record).await;
    }

    pub(crate) async fn remove_parent_if_unused(&self, state: &State, record: &NetworkRecord) {
        let Some(_) = &record.created_parent else {
            return;
        };
        if state
            .networks
            .values()
            .any(|n| n.parent == record.parent && n.id != record.id)
        {
            return;
        }
        match self.netlink.delete_by_name(&record.parent).await {
            Ok(true) => {
                self.counters.parent_deleted();
                tracing::info!(network = %record.id, parent = %record.parent, "deleted created parent link")
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(network = %record.id, parent = %record.parent, error = %e, "could not delete parent link")
            }
        }
    }

    /// `DeleteNetwork`: delete leftover endpoint links, the parent if this
    /// driver created it and no other network uses it, and the records.
    pub async fn delete_network(&self, req: &DeleteNetworkRequest) -> Result<(), DriverError> {
        let id = req.network_id.as_str();
        // no Join or DeleteEndpoint is between its netlink calls meanwhile
        let _turns = self.endpoint_turns.all().await;
        let mut state = self.state.lock().await;
        let Some(record) = state.networks.get(id).cloned() else {
            tracing::debug!(network = id, "delete of unknown network ignored");
            // the answer may rest on a delete still being committed
            return Ok(self.store.submit(Vec::new()).durable().await?);
        };
        let endpoints: Vec<EndpointRecord> = state
            .endpoints
            .values()
            .filter(|e| e.network_id == id)
            .cloned()
            .collect();
        // links of endpoints deleted earlier go first: after DeleteNetwork
        // nothing of the network is left on the host
        let spares = state.spares.remove_network(id);
        state.discard_spares(&self.reaper, spares);
        self.reaper.flush().await;
        for e in &endpoints {
            state.claimed.remove(&e.id);
            if self.netlink.delete_by_name(&e.link).await? {
                self.counters.links_deleted(1);
            }
        }
        if let Some(link) = &record.host_link {
            self.delete_host_link(link).await?;
        }
        let mut ops: Vec<Op> = endpoints.iter().map(|e| delete(ENDPOINTS, &e.id)).collect();
        // the endpoints' leases and the host link's
        let leases: Vec<_> = endpoints
            .iter()
            .map(|e| e.id.clone())
            .chain(std::iter::once(host_link_lease_key(id)))
            .filter_map(|key| state.leases.get(&key).cloned())
            .collect();
        ops.extend(leases.iter().map(|l| delete(LEASES, &l.endpoint)));
        ops.push(delete(NETWORKS, id));
        self.store.submit(ops).durable().await?;
        for e in &endpoints {
            state.remove_endpoint(&e.id);
        }
        for l in &leases {
            state.leases.remove(&l.endpoint);
        }
        self.counters.dhcp.set_leases_held(state.leases.len());
        for lease in &leases {
            self.release_lease(&record, lease).await;
        }
        state.networks.remove(id);
        if let Some(link) = &record.host_link {
            // after the record is gone: a crash before this leaves the
            // address in the pool, which the engine's ReleasePool frees
            self.release_host_address(link).await;
        }
        self.remove_parent_if_unused(&state, &record).await;
        tracing::info!(network = id, "network deleted");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn request(raw: &str) -> CreateNetworkRequest {
        serde_json::from_str(raw).unwrap()
    }

    /// As Docker 20.10 sent them to a Swarm node (tests/fixtures): the
    /// network of `service create` with SCOPE=local, and one made with
    /// `--config-from`.
    const LOST: &str = r#"{"NetworkID":"lhn9c99rs56s6h9go8f1or92m","Options":{"com.docker.network.enable_ipv6":false,"com.docker.network.generic":{}},"IPv4Data":[{"AddressSpace":"LocalDefault","Gateway":"172.19.0.1/16","Pool":"172.19.0.0/16"}],"IPv6Data":[]}"#;
    const CONFIG_FROM: &str = r#"{"NetworkID":"lbpjncdhzj68v7a34pi6kehnl","Options":{"com.docker.network.enable_ipv6":false,"com.docker.network.generic":{"parent":"hp0"},"com.docker.network.internal":false},"IPv4Data":[{"AddressSpace":"local","Gateway":"10.98.0.1/24","Pool":"10.98.0.0/24"}],"IPv6Data":[]}"#;

    #[test]
    fn a_swarm_network_without_options_at_a_local_plugin_is_lost() {
        assert!(lost_swarm_options(&request(LOST), Scope::Local));
    }

    #[test]
    fn config_from_global_scope_and_local_networks_are_not_lost() {
        assert!(!lost_swarm_options(&request(CONFIG_FROM), Scope::Local));
        assert!(!lost_swarm_options(&request(LOST), Scope::Global));
        let local_id = LOST.replace(
            "lhn9c99rs56s6h9go8f1or92m",
            &"ab01".repeat(16), // 64 hex digits: a local network
        );
        assert!(!lost_swarm_options(&request(&local_id), Scope::Local));
        // a config-only network without -o options, on this plugin's IPAM
        let own_pool = LOST.replace("LocalDefault", LOCAL_SPACE);
        assert!(!lost_swarm_options(&request(&own_pool), Scope::Local));
    }
}
