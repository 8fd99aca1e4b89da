//! What the driver did to the kernel's links since the process started,
//! as plain atomic counters: the plugin turns a [`LinkCounts`] snapshot
//! into metrics, so this crate knows no metrics library.

use std::sync::atomic::{AtomicU64, Ordering};

/// The counters, shared by the driver and its reaper thread.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    container_links_created: AtomicU64,
    container_links_reused: AtomicU64,
    container_links_deleted: AtomicU64,
    parents_created: AtomicU64,
    parents_deleted: AtomicU64,
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
