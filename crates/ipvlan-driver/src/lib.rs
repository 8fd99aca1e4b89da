//! The ipvlan-rs network driver: networks, endpoints and the kernel links
//! behind them (ipvlan and macvlan slaves, 802.1Q and dummy parents).
//!
//! Job: answer the engine's NetworkDriver calls. Options are parsed and
//! checked before any netlink call ("validate first, act second").
//!
//! Invariants:
//! - A network or endpoint the engine was told exists is in the store first.
//! - Links this driver creates carry recognisable names: container links
//!   `ivr` + 12 characters of the endpoint ID, dummy parents `ivd` + 12 of
//!   the network ID; created 802.1Q parents carry the alias `ipvlan-rs:<network>`.
//!   All of them are created in this state's own link group (chosen at
//!   random when the state file is made), so that two instances on one host
//!   (two engines, or a test beside a real installation) never take each
//!   other's links for their own. At start, [`Driver::reconcile`] removes
//!   links of its group that belong to nothing and re-creates created
//!   parents that went missing.
//! - Parents are shared only by networks whose link kind and ipvlan mode
//!   agree (the kernel ties the ipvlan mode to the parent and refuses
//!   macvlan beside ipvlan); a parent is deleted only by its creator, with
//!   the last network on it.
//! - Leave and Delete* of unknown IDs succeed: the engine replays them after
//!   crashes.
//! - A released container link is deleted off the request path (reaper) or,
//!   while its network churns and only if it is exactly as a new link would
//!   be, kept for a short window and given to the network's next endpoint
//!   (spare); spares live in memory only, so a restart deletes them.
//!
//! Knows nothing of HTTP; talks to the kernel only through rtnetlink.

pub mod link;
pub mod options;
mod reaper;
mod spare;
mod state;

pub use link::{Link, LinkError, Netlink};
pub use options::{LinkKind, NetworkOptions, OptionError, ParentSpec};
pub use reaper::REAP_GROUP;
pub use state::{CreatedParent, EndpointRecord, NetworkRecord, Subnet};

use ipnet::IpNet;
use protocol::network::{
    CreateEndpointRequest, CreateNetworkRequest, InterfaceName, JoinRequest, JoinResponse,
    RouteType, StaticRoute,
};
use state::{ENDPOINTS, INSTANCE, NETWORKS, TABLES};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::{Op, Store, StoreError};
use tokio::sync::Mutex;

/// Name prefix of container links in the host namespace.
pub const SLAVE_PREFIX: &str = "ivr";
/// Name prefix of dummy parents.
pub const DUMMY_PREFIX: &str = "ivd";
/// Alias prefix of parents this driver created.
pub const ALIAS_PREFIX: &str = "ipvlan-rs:";
/// Schema of the state file: 1 = networks + endpoints tables.
pub const SCHEMA: u64 = 1;

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
    /// IPv4 is enabled but no IPv4 pool was given.
    #[error("ipv4 pool is empty")]
    NoIpv4Pool,
    /// A user MAC on an ipvlan network.
    #[error(
        "ipvlan interfaces do not support custom mac address assignment (got {0}); use -o kind=macvlan"
    )]
    MacOnIpvlan(String),
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
    /// The state file holds something this build cannot read.
    #[error("corrupt driver state: {0}")]
    Corrupt(String),
}

/// Driver settings.
#[derive(Debug, Clone, Default)]
pub struct DriverConfig {
    /// Parent used when a network names none (`None`: dummy parent).
    pub default_parent: Option<String>,
    /// How long a released container link is kept for reuse while its
    /// network churns (see [`spare`]); zero deletes every released link.
    pub link_reuse_window: Duration,
}

#[derive(Default)]
struct State {
    networks: HashMap<String, NetworkRecord>,
    endpoints: HashMap<String, EndpointRecord>,
    /// Host-side link names of `endpoints`, so that choosing a unique name
    /// costs the same with 100 000 endpoints as with one.
    links: std::collections::HashSet<String>,
    /// Released links kept for reuse; their names are in `links` too.
    spares: spare::Spares,
    /// Spares handed to endpoints by CreateEndpoint, taken up by Join.
    claimed: HashMap<String, spare::Spare>,
}

impl State {
    fn insert_endpoint(&mut self, e: EndpointRecord) {
        self.remove_endpoint(&e.id);
        self.links.insert(e.link.clone());
        self.endpoints.insert(e.id.clone(), e);
    }

    /// Hands `spares`, taken out of `self.spares`, to the reaper and frees
    /// their names.
    fn discard_spares(
        &mut self,
        reaper: &reaper::Reaper,
        spares: impl IntoIterator<Item = spare::Spare>,
    ) {
        for spare in spares {
            self.links.remove(&spare.name);
            reaper.delete(spare.index, spare.name);
        }
    }

    fn remove_endpoint(&mut self, eid: &str) -> Option<EndpointRecord> {
        let e = self.endpoints.remove(eid)?;
        self.links.remove(&e.link);
        Some(e)
    }

    /// The endpoint `eid` of network `nid`.
    fn endpoint(&self, nid: &str, eid: &str) -> Result<&EndpointRecord, DriverError> {
        self.endpoints
            .get(eid)
            .filter(|e| e.network_id == nid)
            .ok_or_else(|| DriverError::NoEndpoint {
                endpoint: eid.to_string(),
                network: nid.to_string(),
            })
    }
}

/// The network driver. Share it behind an `Arc`.
pub struct Driver {
    /// Shared with the timers that expire spares.
    state: Arc<Mutex<State>>,
    store: Store,
    netlink: Netlink,
    reaper: reaper::Reaper,
    link_group: u32,
    /// The commit of a newly chosen link group, awaited before the first
    /// link is made with it (open is synchronous and runs inside a runtime).
    link_group_commit: std::sync::Mutex<Option<store::Commit>>,
    config: DriverConfig,
}

const LINK_GROUP_KEY: &str = "link_group";

/// The link group of this state: stored, or chosen now (at random, never 0,
/// the kernel's default group, nor the reaper's group) and submitted.
fn load_link_group(store: &Store) -> Result<(u32, Option<store::Commit>), DriverError> {
    for (k, v) in store.load(INSTANCE)? {
        if k == LINK_GROUP_KEY.as_bytes() {
            let bytes: [u8; 4] = v
                .as_slice()
                .try_into()
                .map_err(|_| DriverError::Corrupt(format!("link group {v:?}")))?;
            return Ok((u32::from_be_bytes(bytes), None));
        }
    }
    // 31 bits: iproute2 reads and prints groups as signed ints
    let mut group = 0u32;
    while group == 0 || group == reaper::REAP_GROUP {
        group = random_u32() & 0x7fff_ffff;
    }
    let commit = store.submit(vec![Op::Put {
        table: INSTANCE,
        key: LINK_GROUP_KEY.as_bytes().to_vec(),
        value: group.to_be_bytes().to_vec(),
    }]);
    tracing::info!(
        link_group = group,
        "new state: chose this instance's link group"
    );
    Ok((group, Some(commit)))
}

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    random_bytes(&mut b);
    u32::from_be_bytes(b)
}

/// Fills `buf` from /dev/urandom; without it, from the clock and pid, which
/// still differ between instances and calls.
fn random_bytes(buf: &mut [u8]) {
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| {
        use std::io::Read;
        f.read_exact(buf)
    });
    if read.is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let seed = (nanos ^ u128::from(std::process::id())).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for (b, s) in buf.iter_mut().zip(seed.to_le_bytes().iter().cycle()) {
            *b = *s;
        }
    }
}

/// A random unicast, locally administered MAC, as the kernel gives a new
/// macvlan link.
fn random_mac() -> [u8; 6] {
    let mut mac = [0u8; 6];
    random_bytes(&mut mac);
    mac[0] = (mac[0] & 0xfe) | 0x02;
    mac
}

/// Host-side name of an endpoint's link.
pub fn slave_name(endpoint_id: &str) -> String {
    format!(
        "{SLAVE_PREFIX}{}",
        endpoint_id.chars().take(12).collect::<String>()
    )
}

/// A host-side link name for `endpoint_id` that no other live endpoint
/// uses: 12-character windows of the ID in turn (IDs sharing a prefix
/// still get distinct links), then a counter.
fn unique_slave_name(endpoint_id: &str, taken: &std::collections::HashSet<String>) -> String {
    let chars: Vec<char> = endpoint_id.chars().collect();
    let windows = chars
        .chunks(12)
        .map(|w| format!("{SLAVE_PREFIX}{}", w.iter().collect::<String>()));
    let counter = (0u64..).map(|n| format!("{SLAVE_PREFIX}x{n:011x}"));
    windows
        .chain(counter)
        .find(|name| !taken.contains(name.as_str()))
        .unwrap_or_else(|| slave_name(endpoint_id))
}

/// Name of a network's dummy parent.
pub fn dummy_name(network_id: &str) -> String {
    format!(
        "{DUMMY_PREFIX}{}",
        network_id.chars().take(12).collect::<String>()
    )
}

fn put<T: serde::Serialize>(table: &'static str, key: &str, value: &T) -> Op {
    Op::Put {
        table,
        key: key.as_bytes().to_vec(),
        value: serde_json::to_vec(value).unwrap_or_default(),
    }
}

fn delete(table: &'static str, key: &str) -> Op {
    Op::Delete {
        table,
        key: key.as_bytes().to_vec(),
    }
}

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
        resp.gateway = gateway_for(&network.ipv4, endpoint.address.as_ref());
        resp.gateway_ipv6 = gateway_for(&network.ipv6, endpoint.address_ipv6.as_ref());
    }
    resp
}

impl Driver {
    /// Open the state file at `path`, connect to netlink (on the current
    /// tokio runtime) and load the state. Call [`Driver::reconcile`] next.
    pub fn open(path: &Path, config: DriverConfig) -> Result<Driver, DriverError> {
        let store = Store::open(path, SCHEMA, TABLES)?;
        let mut state = State::default();
        for (k, v) in store.load(NETWORKS)? {
            let n: NetworkRecord = serde_json::from_slice(&v).map_err(|e| {
                DriverError::Corrupt(format!("network {}: {e}", String::from_utf8_lossy(&k)))
            })?;
            state.networks.insert(n.id.clone(), n);
        }
        for (k, v) in store.load(ENDPOINTS)? {
            let e: EndpointRecord = serde_json::from_slice(&v).map_err(|e| {
                DriverError::Corrupt(format!("endpoint {}: {e}", String::from_utf8_lossy(&k)))
            })?;
            state.insert_endpoint(e);
        }
        let (link_group, link_group_commit) = load_link_group(&store)?;
        tracing::info!(
            path = %path.display(),
            networks = state.networks.len(),
            endpoints = state.endpoints.len(),
            link_group,
            "driver state loaded"
        );
        Ok(Driver {
            state: Arc::new(Mutex::new(state)),
            store,
            netlink: Netlink::connect()?,
            reaper: reaper::Reaper::start()?,
            link_group,
            link_group_commit: std::sync::Mutex::new(link_group_commit),
            config,
        })
    }

    /// The link group this instance creates its links in.
    pub fn link_group(&self) -> u32 {
        self.link_group
    }

    /// Makes sure the link group is on disk before links carry it: links of
    /// a group the state forgot would never be cleaned up.
    async fn link_group_durable(&self) -> Result<(), DriverError> {
        let pending = self.link_group_commit.lock().map_or(None, |mut c| c.take());
        if let Some(commit) = pending {
            commit.durable().await?;
        }
        Ok(())
    }

    /// Whether `link` was created by this instance (or is being deleted by
    /// a reaper, which only ever holds container links).
    fn owns(&self, link: &Link) -> bool {
        matches!(link.group, Some(g) if g == self.link_group || g == reaper::REAP_GROUP)
    }

    /// The netlink handle (also used for host routes).
    pub fn netlink(&self) -> &Netlink {
        &self.netlink
    }

    /// Bring the kernel in line with the state after a start or a crash:
    /// re-create created parents that are missing, delete container links
    /// and dummy parents that belong to no endpoint or network.
    pub async fn reconcile(&self) -> Result<(), DriverError> {
        self.link_group_durable().await?;
        let state = self.state.lock().await;
        let links = self.netlink.list().await?;
        let by_name: HashMap<&str, &Link> = links.iter().map(|l| (l.name.as_str(), l)).collect();
        for net in state.networks.values() {
            if by_name.contains_key(net.parent.as_str()) {
                continue;
            }
            match &net.created_parent {
                Some(created) => {
                    tracing::warn!(network = %net.id, parent = %net.parent, "created parent missing; re-creating");
                    if let Err(e) = self.create_parent(&net.id, &net.parent, created).await {
                        tracing::error!(network = %net.id, parent = %net.parent, error = %e, "could not re-create parent");
                    }
                }
                // the user's interface: not ours to create; Join looks it
                // up by name each time, so the network works again once
                // an interface of that name is back
                None => tracing::warn!(
                    network = %net.id,
                    parent = %net.parent,
                    "parent interface missing; containers cannot join this network until it exists again"
                ),
            }
        }
        let live_slaves = &state.links;
        let live_dummies: std::collections::HashSet<String> =
            state.networks.keys().map(|id| dummy_name(id)).collect();
        for l in &links {
            let orphan_slave = l.name.starts_with(SLAVE_PREFIX)
                && link::is_slave_kind(l.kind.as_deref())
                && self.owns(l)
                && !live_slaves.contains(l.name.as_str());
            let ours = l.group == Some(self.link_group);
            let orphan_dummy = l.name.starts_with(DUMMY_PREFIX)
                && l.kind.as_deref() == Some("dummy")
                && ours
                && !live_dummies.contains(&l.name);
            let orphan_vlan = ours
                && l.kind.as_deref() == Some("vlan")
                && l.alias
                    .as_deref()
                    .and_then(|a| a.strip_prefix(ALIAS_PREFIX))
                    .is_some_and(|_| {
                        !state
                            .networks
                            .values()
                            .any(|n| n.parent == l.name && n.created_parent.is_some())
                    });
            if orphan_slave || orphan_dummy || orphan_vlan {
                tracing::info!(link = %l.name, kind = ?l.kind, "removing link that belongs to no endpoint or network");
                self.netlink.delete(l.index, &l.name).await?;
            }
        }
        Ok(())
    }

    async fn create_parent(
        &self,
        network: &str,
        name: &str,
        created: &CreatedParent,
    ) -> Result<(), DriverError> {
        let alias = format!("{ALIAS_PREFIX}{network}");
        match created {
            CreatedParent::Dummy => {
                self.netlink
                    .create_dummy(name, &alias, self.link_group)
                    .await?
            }
            CreatedParent::Vlan { base, vid } => {
                let base_link =
                    self.netlink
                        .get(base)
                        .await?
                        .ok_or_else(|| DriverError::NoVlanBase {
                            base: base.clone(),
                            name: name.to_string(),
                        })?;
                self.netlink
                    .create_vlan(name, base_link.index, *vid, &alias, self.link_group)
                    .await?;
            }
        }
        Ok(())
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
        let options = self.check_options(&req.options.generic)?;
        if req.options.enable_ipv4.unwrap_or(true)
            && req.ipv4_data.iter().all(|d| d.pool.prefix_len() == 0)
        {
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
            ipv4: req.ipv4_data.iter().map(Subnet::from_ipam).collect(),
            ipv6: req.ipv6_data.iter().map(Subnet::from_ipam).collect(),
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
                return Ok(());
            }
            if state.endpoints.values().any(|e| e.network_id == id) {
                return Err(DriverError::Exists(id.to_string()));
            }
        }
        self.check_parent_sharing(&state, &record)?;
        let mut record = record;
        let existing_link = self.netlink.get(&record.parent).await?;
        match existing_link {
            Some(l) if l.loopback => return Err(DriverError::Loopback(record.parent)),
            Some(_) => {
                // another network of ours may have created it: share its ownership
                if record.created_parent.is_none() {
                    record.created_parent = state
                        .networks
                        .values()
                        .find(|n| n.parent == record.parent)
                        .and_then(|n| n.created_parent.clone());
                }
            }
            None => {
                let created = match &record.created_parent {
                    Some(c) => c.clone(),
                    None => match options::vlan_parts(&record.parent) {
                        Some((base, vid)) => CreatedParent::Vlan {
                            base: base.to_string(),
                            vid,
                        },
                        None => return Err(DriverError::NoParent(record.parent)),
                    },
                };
                self.create_parent(id, &record.parent, &created).await?;
                tracing::info!(network = id, parent = %record.parent, kind = ?created, "created parent link");
                record.created_parent = Some(created);
            }
        }
        let commit = self.store.submit(vec![put(NETWORKS, id, &record)]);
        if let Err(e) = commit.durable().await {
            self.remove_parent_if_unused(&state, &record).await;
            return Err(e.into());
        }
        tracing::info!(network = id, parent = %record.parent, kind = %record.options.kind, internal = record.internal, "network created");
        // spares and template of an earlier configuration under this ID
        // (re-created without a DeleteNetwork) do not fit this one
        let spares = state.spares.remove_network(id);
        state.discard_spares(&self.reaper, spares);
        state.networks.insert(id.to_string(), record);
        Ok(())
    }

    fn check_parent_sharing(
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

    async fn remove_parent_if_unused(&self, state: &State, record: &NetworkRecord) {
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
    pub async fn delete_network(&self, id: &str) -> Result<(), DriverError> {
        let mut state = self.state.lock().await;
        let Some(record) = state.networks.get(id).cloned() else {
            tracing::debug!(network = id, "delete of unknown network ignored");
            return Ok(());
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
            self.netlink.delete_by_name(&e.link).await?;
        }
        let mut ops: Vec<Op> = endpoints.iter().map(|e| delete(ENDPOINTS, &e.id)).collect();
        ops.push(delete(NETWORKS, id));
        self.store.submit(ops).durable().await?;
        for e in &endpoints {
            state.remove_endpoint(&e.id);
        }
        state.networks.remove(id);
        self.remove_parent_if_unused(&state, &record).await;
        tracing::info!(network = id, "network deleted");
        Ok(())
    }

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
            Some(existing) if existing == &record => return Ok(()),
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
        let commit = self.store.submit(vec![put(ENDPOINTS, eid, &record)]);
        let (address, address_ipv6) = (record.address, record.address_ipv6);
        state.insert_endpoint(record);
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
        nid: &str,
        eid: &str,
    ) -> Result<BTreeMap<String, serde_json::Value>, DriverError> {
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

    /// `Join`: create the container's link on the parent; the engine moves
    /// it into the container.
    pub async fn join(&self, req: &JoinRequest) -> Result<JoinResponse, DriverError> {
        self.link_group_durable().await?;
        let (nid, eid) = (req.network_id.as_str(), req.endpoint_id.as_str());
        let mut state = self.state.lock().await;
        let claimed = state.claimed.remove(eid);
        let network = state
            .networks
            .get(nid)
            .ok_or_else(|| DriverError::NoNetwork(nid.to_string()))?;
        let endpoint = state.endpoint(nid, eid)?;
        let parent = self
            .netlink
            .get(&network.parent)
            .await?
            .ok_or_else(|| DriverError::NoParent(network.parent.clone()))?;
        if !parent.up {
            self.netlink.set_up(parent.index).await?;
        }
        if let Some(spare) = claimed
            && endpoint.link == spare.name
            && self.reuse(&spare, network, &parent).await?
        {
            tracing::debug!(network = nid, endpoint = eid, link = %endpoint.link, "joined with a reused link");
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
            self.netlink.delete_by_name(&endpoint.link).await?;
            created = create().await;
        }
        if let Err(e) = created {
            let hint = if e.errno() == Some(16) {
                " (EBUSY: the parent carries links of another kind, e.g. macvlan beside ipvlan)"
            } else if e.errno() == Some(95) {
                " (EOPNOTSUPP: the kernel lacks this link kind; try modprobe ipvlan or -o kind=macvlan)"
            } else {
                ""
            };
            return Err(DriverError::JoinFailed {
                parent: network.parent.clone(),
                source: e,
                hint,
            });
        }
        tracing::info!(network = nid, endpoint = eid, link = %endpoint.link, parent = %network.parent, "joined");
        let response = join_response(network, endpoint);
        if !self.config.link_reuse_window.is_zero() && state.spares.template(nid).is_none() {
            // what a fresh link of this network looks like, to judge released ones by
            let link = endpoint.link.clone();
            if let Some((_, shape)) = self.netlink.get_with_shape(&link).await? {
                state.spares.set_template(nid, shape);
            }
        }
        Ok(response)
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
            LinkKind::MacVlan { .. } => {
                Ok(self.netlink.set_address(spare.index, random_mac()).await?)
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
    pub async fn leave(&self, nid: &str, eid: &str) -> Result<(), DriverError> {
        tracing::debug!(network = nid, endpoint = eid, "left");
        Ok(())
    }

    /// `DeleteEndpoint`: forget the endpoint and hand its link, if it is
    /// still in the host namespace, to the reaper (see [`reaper`]): the
    /// answer does not wait for the kernel's delete. Unknown endpoints
    /// succeed.
    pub async fn delete_endpoint(&self, nid: &str, eid: &str) -> Result<(), DriverError> {
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
                    return Ok(());
                }
                name
            }
        };
        // looked up now, while the name is still this endpoint's: the
        // reaper deletes by index, so a later link of the same name is safe
        let link = self.netlink.get_with_shape(&name).await?;
        if known.is_some() {
            state.claimed.remove(eid);
            state.remove_endpoint(eid);
            // as in create_endpoint: applied under the lock, awaited without
            let commit = self.store.submit(vec![delete(ENDPOINTS, eid)]);
            drop(state);
            commit.durable().await?;
            tracing::info!(network = nid, endpoint = eid, "endpoint deleted");
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

    /// Keeps a released link of network `nid` as a spare if [`spare`]'s
    /// rules allow, and arms its expiry; `false` if it must be deleted.
    async fn keep_spare(&self, nid: &str, link: &Link, shape: &link::LinkShape) -> bool {
        let window = self.config.link_reuse_window;
        if window.is_zero() || link.group != Some(self.link_group) {
            return false;
        }
        let mut state = self.state.lock().await;
        // the name may have been given to a new endpoint meanwhile
        if !state.networks.contains_key(nid) || state.links.contains(&link.name) {
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

    /// Waits until every link handed to the reaper so far is deleted (at
    /// shutdown, and in tests that look at the host's links).
    pub async fn flush_deletions(&self) {
        let mut state = self.state.lock().await;
        let spares = state.spares.drain();
        state.discard_spares(&self.reaper, spares);
        drop(state);
        self.reaper.flush().await;
    }

    /// The known network records (for tests and diagnostics).
    pub async fn networks(&self) -> Vec<NetworkRecord> {
        self.state.lock().await.networks.values().cloned().collect()
    }

    /// Whether the store has failed (the process should restart).
    pub fn failed(&self) -> bool {
        self.store.failed()
    }

    /// Flush and close the state file.
    pub fn close(&self) {
        self.store.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slave_names_fit_and_stay_unique() {
        let a = "2d8f9f27cfc80e68eb2a47f12e21c334c81901d1abdf85fff2ba94fb012ff37c";
        assert_eq!(slave_name(a), "ivr2d8f9f27cfc8");
        assert!(slave_name(a).len() <= 15);
        let mut taken = std::collections::HashSet::new();
        taken.insert("ivr2d8f9f27cfc8".to_string());
        let b = unique_slave_name(a, &taken);
        assert_eq!(b, "ivr0e68eb2a47f1");
        taken.insert(b);
        let short = unique_slave_name("2d8f9f27cfc8", &taken);
        assert!(short.starts_with("ivrx") && short.len() == 15, "{short}");
    }

    fn network(kind: LinkKind, internal: bool) -> NetworkRecord {
        NetworkRecord {
            id: "n".into(),
            options: NetworkOptions {
                parent: ParentSpec::Named {
                    name: "eth0".into(),
                },
                kind,
                mtu: None,
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
        }
    }

    fn endpoint(v4: &str, v6: Option<&str>) -> EndpointRecord {
        EndpointRecord {
            id: "e".into(),
            network_id: "n".into(),
            link: "ivre".into(),
            address: Some(v4.parse().unwrap()),
            address_ipv6: v6.map(|a| a.parse().unwrap()),
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
