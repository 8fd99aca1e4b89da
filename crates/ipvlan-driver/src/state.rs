//! The driver's in-memory index of its records, how it is loaded from and
//! written to the store, and this instance's link group.

use crate::error::DriverError;
use crate::link::Link;
use crate::names::random_u32;
use crate::records::{
    ENDPOINTS, EndpointRecord, INSTANCE, LEASES, LeaseRecord, NETWORKS, NetworkRecord, TABLES,
};
use crate::{Driver, DriverConfig, Netlink, reaper, spare};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use store::{Op, Store};
use tokio::sync::{Mutex, MutexGuard};

/// Schema of the state file: 1 = networks + endpoints tables.
pub const SCHEMA: u64 = 1;

/// How many locks [`EndpointTurns`] spreads endpoints over: enough that
/// concurrent calls on different endpoints rarely share one.
const TURNS: usize = 64;

/// Makes the calls that act on one endpoint's link (Join, DeleteEndpoint)
/// take turns, so that they need not hold the state lock across netlink
/// round trips, while calls on other endpoints go on beside them. Each
/// endpoint ID maps to one of [`TURNS`] locks; DeleteNetwork, which deletes
/// the links of all its endpoints, takes them all.
///
/// Lock order: turns before the state lock, never one while holding it;
/// more than one turn only through [`EndpointTurns::all`], in index order.
pub(crate) struct EndpointTurns([Mutex<()>; TURNS]);

impl Default for EndpointTurns {
    fn default() -> Self {
        EndpointTurns(std::array::from_fn(|_| Mutex::new(())))
    }
}

impl EndpointTurns {
    /// Waits for endpoint `eid`'s turn.
    pub(crate) async fn one(&self, eid: &str) -> MutexGuard<'_, ()> {
        // FNV-1a: endpoint IDs are random hex, any spread of them will do
        let hash = eid.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let slot = usize::try_from(hash % TURNS as u64).unwrap_or(0);
        self.0[slot].lock().await
    }

    /// Waits for every endpoint's turn.
    pub(crate) async fn all(&self) -> Vec<MutexGuard<'_, ()>> {
        let mut turns = Vec::with_capacity(TURNS);
        for turn in &self.0 {
            turns.push(turn.lock().await);
        }
        turns
    }
}

/// What the driver knows, kept in step with the store: records applied
/// here in the order their commits were submitted.
#[derive(Default)]
pub(crate) struct State {
    pub(crate) networks: HashMap<String, NetworkRecord>,
    pub(crate) endpoints: HashMap<String, EndpointRecord>,
    /// Host-side link names of `endpoints`, so that choosing a unique name
    /// costs the same with 100 000 endpoints as with one.
    pub(crate) links: HashSet<String>,
    /// Released links kept for reuse; their names are in `links` too.
    pub(crate) spares: spare::Spares,
    /// Spares handed to endpoints by CreateEndpoint, taken up by Join.
    pub(crate) claimed: HashMap<String, spare::Spare>,
    /// Where the endpoints created or joined since start are in their
    /// life. Memory only: recording each Join durably would add a commit
    /// to every `docker run`; endpoints loaded at start have no entry.
    pub(crate) phases: HashMap<String, crate::status::Phase>,
    /// DHCP leases of endpoints, by endpoint ID.
    pub(crate) leases: HashMap<String, LeaseRecord>,
}

impl State {
    pub(crate) fn insert_endpoint(&mut self, e: EndpointRecord) {
        self.remove_endpoint(&e.id);
        self.links.insert(e.link.clone());
        self.endpoints.insert(e.id.clone(), e);
    }

    /// Hands `spares`, taken out of `self.spares`, to the reaper and frees
    /// their names.
    pub(crate) fn discard_spares(
        &mut self,
        reaper: &reaper::Reaper,
        spares: impl IntoIterator<Item = spare::Spare>,
    ) {
        for spare in spares {
            self.links.remove(&spare.name);
            reaper.delete(spare.index, spare.name);
        }
    }

    pub(crate) fn remove_endpoint(&mut self, eid: &str) -> Option<EndpointRecord> {
        let e = self.endpoints.remove(eid)?;
        self.links.remove(&e.link);
        self.phases.remove(eid);
        Some(e)
    }

    /// The endpoint `eid` of network `nid`.
    pub(crate) fn endpoint(&self, nid: &str, eid: &str) -> Result<&EndpointRecord, DriverError> {
        self.endpoints
            .get(eid)
            .filter(|e| e.network_id == nid)
            .ok_or_else(|| DriverError::NoEndpoint {
                endpoint: eid.to_string(),
                network: nid.to_string(),
            })
    }
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

/// The store write of a record; a record that cannot be encoded is an
/// error for the caller, never an empty value on disk.
pub(crate) fn put<T: serde::Serialize>(
    table: &'static str,
    key: &str,
    value: &T,
) -> Result<Op, DriverError> {
    let value = serde_json::to_vec(value).map_err(|source| DriverError::Encode {
        table,
        key: key.to_string(),
        source,
    })?;
    Ok(Op::Put {
        table,
        key: key.as_bytes().to_vec(),
        value,
    })
}

pub(crate) fn delete(table: &'static str, key: &str) -> Op {
    Op::Delete {
        table,
        key: key.as_bytes().to_vec(),
    }
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
        for (k, v) in store.load(LEASES)? {
            let l: LeaseRecord = serde_json::from_slice(&v).map_err(|e| {
                DriverError::Corrupt(format!("lease {}: {e}", String::from_utf8_lossy(&k)))
            })?;
            state.leases.insert(l.endpoint.clone(), l);
        }
        Driver::report_expired(&state.leases);
        let (link_group, link_group_commit) = load_link_group(&store)?;
        let counters = Arc::new(crate::counters::Counters::default());
        tracing::info!(
            path = %path.display(),
            networks = state.networks.len(),
            endpoints = state.endpoints.len(),
            leases = state.leases.len(),
            link_group,
            "driver state loaded"
        );
        Ok(Driver {
            state: Arc::new(Mutex::new(state)),
            store,
            netlink: Netlink::connect()?,
            reaper: reaper::Reaper::start(counters.clone())?,
            link_group,
            link_group_commit: std::sync::Mutex::new(link_group_commit),
            endpoint_turns: EndpointTurns::default(),
            config,
            counters,
        })
    }

    /// The link group this instance creates its links in.
    pub fn link_group(&self) -> u32 {
        self.link_group
    }

    /// Makes sure the link group is on disk before links carry it: links of
    /// a group the state forgot would never be cleaned up.
    pub(crate) async fn link_group_durable(&self) -> Result<(), DriverError> {
        let pending = self.link_group_commit.lock().map_or(None, |mut c| c.take());
        if let Some(commit) = pending {
            commit.durable().await?;
        }
        Ok(())
    }

    /// Whether `link` was created by this instance (or is being deleted by
    /// a reaper, which only ever holds container links).
    pub(crate) fn owns(&self, link: &Link) -> bool {
        matches!(link.group, Some(g) if g == self.link_group || g == reaper::REAP_GROUP)
    }

    /// The known network records (for tests and diagnostics).
    pub async fn networks(&self) -> Vec<NetworkRecord> {
        self.state.lock().await.networks.values().cloned().collect()
    }

    /// What the driver did to links since start.
    pub fn link_counts(&self) -> crate::LinkCounts {
        self.counters.read(self.reaper.queue_len() as u64)
    }

    /// Reports each durable write of the driver's state file to `observer`.
    pub fn observe_commits(&self, observer: store::CommitObserver) {
        self.store.observe_commits(observer);
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
