//! A Swarm leader's restore of a global pool: the re-claim window, the
//! networks its allocation named, and the global leases still waiting for
//! the `AllocateNetwork` that names their network.
//!
//! A manager that becomes leader starts swarmkit's allocator afresh. For
//! each network it leases the pools again (RequestPool), claims the
//! gateway, then calls the driver's AllocateNetwork with the network's ID,
//! all in one goroutine; once every network is restored it re-claims every
//! address it holds (node attachments, VIPs, tasks), and only then asks
//! for new addresses. Its plugin's copy of the global space is the one it
//! left when it last led: what other leaders freed meanwhile is still held
//! in it, and the pool's lease count has one more lease per restore.
//!
//! Invariants:
//! - A restore is *confirmed* only by positive proof: AllocateNetwork names
//!   a network whose lease this copy already counted. Only a confirmed
//!   restore sweeps, so a second network on the same subnet (whose
//!   allocation looks the same up to AllocateNetwork) never frees the
//!   first one's addresses.
//! - A network the pool's record never named, allocated while the restore
//!   is unconfirmed and the record names other networks (pools leased
//!   before network IDs were recorded name none), is taken for a new
//!   network on a subnet in use (a user
//!   `docker network create` with `--gateway`, which makes no address-less
//!   request): the window closes, so a `--ip` of an address the pool holds
//!   is refused at once. A restore allocates all its networks before any
//!   re-claim, so the pool's next lease within [`RECLAIM_QUIET`] (another
//!   network of the same restore) opens it again with what was claimed.
//! - The sweep runs at the pool's first new (address-less) allocation,
//!   when swarmkit has made every restore claim, and frees only addresses
//!   not claimed through the pool since the restore began.

use super::pool::PoolId;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How long after its last re-claim (or its lease) a global pool still
/// takes a claim of an address it holds as a Swarm leader's re-claim, when
/// no new allocation ended that earlier. A restore claims one address after
/// another without pause; a pool that saw no re-claim for this long is not
/// being restored.
pub(super) const RECLAIM_QUIET: Duration = Duration::from_secs(120);

/// A restore of one pool in progress (memory only: a restore happens while
/// the plugin runs).
#[derive(Debug)]
pub(super) struct Restore {
    /// The last sign of the restore (the lease, a claim, a new network).
    since: Instant,
    /// A network the pool never counted was allocated before any it
    /// counted: no re-claim is taken until the pool is leased again.
    closed: bool,
    /// A network whose lease this copy counted was allocated again.
    pub(super) confirmed: bool,
    /// Addresses claimed through the pool since the restore began.
    pub(super) claimed: BTreeSet<IpAddr>,
    /// Networks the restoring allocator named for this pool.
    pub(super) networks: BTreeSet<String>,
}

impl Restore {
    pub(super) fn new(now: Instant) -> Restore {
        Restore {
            since: now,
            closed: false,
            confirmed: false,
            claimed: BTreeSet::new(),
            networks: BTreeSet::new(),
        }
    }

    /// Whether a claim of an address the pool holds is taken as a re-claim.
    pub(super) fn window_open(&self, now: Instant) -> bool {
        !self.closed && self.recent(now)
    }

    fn recent(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.since) <= RECLAIM_QUIET
    }

    /// AllocateNetwork named a network the pool never counted while the
    /// restore is unconfirmed: most likely a new network on a subnet in
    /// use, so claims of held addresses are refused from now on. What was
    /// claimed and named is kept for a further lease of the same restore.
    pub(super) fn new_network(&mut self, now: Instant) {
        self.closed = true;
        self.since = now;
    }

    /// A claim through the pool: remembered, and a sign that the restore
    /// goes on.
    pub(super) fn claimed(&mut self, addr: IpAddr, now: Instant) {
        self.claimed.insert(addr);
        if self.window_open(now) {
            self.since = now;
        }
    }

    /// The pool is leased again while this restore is recorded: a further
    /// network of the same restore if its last sign is recent (keep what
    /// was claimed and named, and take re-claims again), else a new
    /// restore.
    pub(super) fn leased_again(&mut self, now: Instant) {
        if self.recent(now) {
            self.since = now;
            self.closed = false;
        } else {
            *self = Restore::new(now);
        }
    }
}

/// Global pool leases not yet matched with an AllocateNetwork, oldest
/// first.
#[derive(Debug, Default)]
pub(super) struct PendingLeases(Vec<(PoolId, Instant)>);

impl PendingLeases {
    /// A global lease. Leases no AllocateNetwork followed in time (a network
    /// created outside Swarm in the global space, or of another driver) are
    /// dropped here, so the list stays short.
    pub(super) fn push(&mut self, id: PoolId, now: Instant) {
        self.0
            .retain(|(_, at)| now.saturating_duration_since(*at) <= RECLAIM_QUIET);
        self.0.push((id, now));
    }

    /// A lease ended before its AllocateNetwork (swarmkit rolls back a
    /// network whose gateway claim failed).
    pub(super) fn released(&mut self, id: &str) {
        if let Some(i) = self.0.iter().rposition(|(p, _)| p.as_str() == id) {
            self.0.remove(i);
        }
    }

    /// Every pending lease, emptied; leases older than [`RECLAIM_QUIET`]
    /// belong to no allocation in progress (a network created outside
    /// Swarm in the global space) and are left out.
    pub(super) fn take(&mut self, now: Instant) -> Vec<PoolId> {
        std::mem::take(&mut self.0)
            .into_iter()
            .filter(|(_, at)| now.saturating_duration_since(*at) <= RECLAIM_QUIET)
            .map(|(id, _)| id)
            .collect()
    }
}
