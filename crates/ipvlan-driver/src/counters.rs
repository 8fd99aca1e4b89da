//! What the driver did to the kernel's links since the process started,
//! as plain atomic counters: the plugin turns a [`LinkCounts`] snapshot
//! into metrics, so this crate knows no metrics library. Likewise the
//! DHCP exchanges of `dhcp=on` endpoints, by kind and outcome ([`DhcpCounts`]).

use std::sync::atomic::{AtomicU64, Ordering};

/// The counters, shared by the driver and its reaper thread.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    container_links_created: AtomicU64,
    container_links_reused: AtomicU64,
    container_links_deleted: AtomicU64,
    parents_created: AtomicU64,
    parents_deleted: AtomicU64,
    pub(crate) dhcp: DhcpCounters,
}

/// One reading of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkCounts {
    /// Container links Join created.
    pub container_links_created: u64,
    /// Released container links Join reused (see the `spare` module).
    pub container_links_reused: u64,
    /// Container links deleted (by the reaper, DeleteNetwork, a Join
    /// replacing a leftover, or reconcile).
    pub container_links_deleted: u64,
    /// Dummy and 802.1Q parents created (by CreateNetwork, or re-created
    /// by reconcile).
    pub parents_created: u64,
    /// Created parents deleted (with their last network, or by reconcile
    /// as orphans).
    pub parents_deleted: u64,
    /// Links queued for the reaper and not yet deleted (a gauge).
    pub reaper_queue: u64,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn link_created(&self) {
        add(&self.container_links_created, 1);
    }

    pub(crate) fn link_reused(&self) {
        add(&self.container_links_reused, 1);
    }

    pub(crate) fn links_deleted(&self, n: u64) {
        add(&self.container_links_deleted, n);
    }

    pub(crate) fn parent_created(&self) {
        add(&self.parents_created, 1);
    }

    pub(crate) fn parent_deleted(&self) {
        add(&self.parents_deleted, 1);
    }

    /// The counters, with the reaper's queue length as given.
    pub(crate) fn read(&self, reaper_queue: u64) -> LinkCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        LinkCounts {
            container_links_created: get(&self.container_links_created),
            container_links_reused: get(&self.container_links_reused),
            container_links_deleted: get(&self.container_links_deleted),
            parents_created: get(&self.parents_created),
            parents_deleted: get(&self.parents_deleted),
            reaper_queue,
        }
    }
}

/// What a DHCP exchange was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DhcpKind {
    /// A new lease: DISCOVER, REQUEST (CreateEndpoint).
    Acquire,
    /// An extension sent to the granting server (T1).
    Renew,
    /// An extension broadcast to any server (T2).
    Rebind,
    /// Asking again for a lease that ran out (INIT-REBOOT).
    Reboot,
    /// Asking from INIT for the address of a lease refused, or run out
    /// with no answer to INIT-REBOOT (DISCOVER naming it, REQUEST).
    Reclaim,
    /// A lease given back (DeleteEndpoint, DeleteNetwork).
    Release,
    /// An offered address refused because another host answered ARP for
    /// it; counted when the acquisition gave up on it.
    Decline,
}

impl DhcpKind {
    /// Every kind, in the order [`DhcpCounts::exchanges`] lists them.
    pub const ALL: [DhcpKind; 7] = [
        DhcpKind::Acquire,
        DhcpKind::Renew,
        DhcpKind::Rebind,
        DhcpKind::Reboot,
        DhcpKind::Reclaim,
        DhcpKind::Release,
        DhcpKind::Decline,
    ];

    /// Its name as a metric label.
    pub fn name(self) -> &'static str {
        match self {
            DhcpKind::Acquire => "acquire",
            DhcpKind::Renew => "renew",
            DhcpKind::Rebind => "rebind",
            DhcpKind::Reboot => "reboot",
            DhcpKind::Reclaim => "reclaim",
            DhcpKind::Release => "release",
            DhcpKind::Decline => "decline",
        }
    }
}

/// How a DHCP exchange ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DhcpOutcome {
    /// Granted (or, for release and decline, sent).
    Ok,
    /// The server refused (DHCPNAK).
    Nak,
    /// No server answered in time.
    Timeout,
    /// Anything else: socket, encoding, parent, address in use.
    Error,
}

impl DhcpOutcome {
    /// Every outcome, in the order [`DhcpCounts::exchanges`] lists them.
    pub const ALL: [DhcpOutcome; 4] = [
        DhcpOutcome::Ok,
        DhcpOutcome::Nak,
        DhcpOutcome::Timeout,
        DhcpOutcome::Error,
    ];

    /// Its name as a metric label.
    pub fn name(self) -> &'static str {
        match self {
            DhcpOutcome::Ok => "ok",
            DhcpOutcome::Nak => "nak",
            DhcpOutcome::Timeout => "timeout",
            DhcpOutcome::Error => "error",
        }
    }

    /// The outcome of an exchange's result.
    pub(crate) fn of<T>(result: &Result<T, dhcp::DhcpError>) -> DhcpOutcome {
        match result {
            Ok(_) => DhcpOutcome::Ok,
            Err(dhcp::DhcpError::Nak { .. }) => DhcpOutcome::Nak,
            Err(dhcp::DhcpError::NoServer { .. }) => DhcpOutcome::Timeout,
            Err(_) => DhcpOutcome::Error,
        }
    }
}

const KINDS: usize = DhcpKind::ALL.len();
const OUTCOMES: usize = DhcpOutcome::ALL.len();

/// DHCP exchanges by kind and outcome, and the leases held now.
#[derive(Debug, Default)]
pub(crate) struct DhcpCounters {
    exchanges: [[AtomicU64; OUTCOMES]; KINDS],
    leases_held: AtomicU64,
}

/// One reading of the DHCP counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpCounts {
    /// Exchanges since start, for every kind and outcome (zeros included).
    pub exchanges: Vec<(DhcpKind, DhcpOutcome, u64)>,
    /// Leases the driver holds for endpoints now (a gauge).
    pub leases_held: u64,
}

impl DhcpCounters {
    pub(crate) fn exchange(&self, kind: DhcpKind, outcome: DhcpOutcome) {
        add(&self.exchanges[kind as usize][outcome as usize], 1);
    }

    pub(crate) fn set_leases_held(&self, n: usize) {
        self.leases_held.store(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn read(&self) -> DhcpCounts {
        let exchanges = DhcpKind::ALL
            .iter()
            .flat_map(|&k| DhcpOutcome::ALL.iter().map(move |&o| (k, o)))
            .map(|(k, o)| {
                let n = self.exchanges[k as usize][o as usize].load(Ordering::Relaxed);
                (k, o, n)
            })
            .collect();
        DhcpCounts {
            exchanges,
            leases_held: self.leases_held.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dhcp_exchanges_are_counted_by_kind_and_outcome() {
        let c = DhcpCounters::default();
        c.exchange(DhcpKind::Renew, DhcpOutcome::Nak);
        c.exchange(DhcpKind::Renew, DhcpOutcome::Nak);
        c.exchange(DhcpKind::Release, DhcpOutcome::Ok);
        c.set_leases_held(3);
        let read = c.read();
        assert_eq!(read.exchanges.len(), KINDS * OUTCOMES);
        let get = |k, o| {
            read.exchanges
                .iter()
                .find(|(kk, oo, _)| *kk == k && *oo == o)
                .map(|(_, _, n)| *n)
        };
        assert_eq!(get(DhcpKind::Renew, DhcpOutcome::Nak), Some(2));
        assert_eq!(get(DhcpKind::Release, DhcpOutcome::Ok), Some(1));
        assert_eq!(get(DhcpKind::Acquire, DhcpOutcome::Ok), Some(0));
        assert_eq!(read.leases_held, 3);
    }
}
