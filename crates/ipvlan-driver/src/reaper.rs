//! Deletion of container links off the request path.
//!
//! The kernel's link delete waits for an RCU grace period (about 15 ms here,
//! against well under 1 ms for a create). DeleteEndpoint only forgets the
//! endpoint durably and hands its link to the reaper, which deletes links
//! on a thread and a netlink socket of its own, so that neither the
//! plugin's runtime thread nor its other requests wait for the grace period.
//! (A link kept for reuse, see `spare`, reaches the reaper when its window
//! ends, with its network, or at shutdown.)
//! Links queued together are moved into [`REAP_GROUP`] and deleted with one
//! group delete (one grace period for the batch); should that fail they are
//! deleted one by one.
//!
//! Crash safety needs no record of the queue: a link whose endpoint is gone
//! from the store is an orphan, and [`crate::Driver::reconcile`] deletes
//! orphans at start.

use crate::counters::Counters;
use crate::link::{LinkError, Netlink};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Link group the reaper moves links into just before deleting them
/// ("ivr" in ASCII, followed by 0x01). Links of other software must not use
/// it: a group delete removes every deletable link of the group.
pub const REAP_GROUP: u32 = 0x6976_7201;

enum Job {
    Delete { index: u32, name: String },
    Flush(oneshot::Sender<()>),
}

/// Handle on the reaper thread; dropping the last one ends the thread once
/// the queue is empty.
#[derive(Clone)]
pub(crate) struct Reaper {
    jobs: mpsc::UnboundedSender<Job>,
    /// Indexes of the links queued and not yet dealt with: still in the
    /// instance's group for a moment, but no longer anyone's.
    queued: Arc<std::sync::Mutex<std::collections::HashSet<u32>>>,
}

impl Reaper {
    /// Starts the reaper thread with its own netlink socket (opened in the
    /// caller's network namespace, which the thread inherits).
    /// Deletions are counted in `counters`.
    pub(crate) fn start(counters: Arc<Counters>) -> Result<Reaper, LinkError> {
        let (jobs, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let queued = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
        let thread_queued = queued.clone();
        let spawned = std::thread::Builder::new()
            .name("link-reaper".into())
            .spawn(move || run(rx, ready_tx, counters, thread_queued));
        let fail = |message: String| LinkError::other("starting the link reaper", message);
        spawned.map_err(|e| fail(e.to_string()))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Reaper { jobs, queued }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(fail("the reaper thread ended during start".into())),
        }
    }

    /// Queues the link with `index` (named `name`, for logs) for deletion.
    pub(crate) fn delete(&self, index: u32, name: String) {
        lock(&self.queued).insert(index);
        if self.jobs.send(Job::Delete { index, name }).is_err() {
            lock(&self.queued).remove(&index);
            // only after the thread died; reconcile deletes the orphan at start
            tracing::error!("link reaper is gone; the link stays until the next start");
        }
    }

    /// Whether the link with `index` is queued for deletion.
    pub(crate) fn is_queued(&self, index: u32) -> bool {
        lock(&self.queued).contains(&index)
    }

    /// How many links are queued.
    pub(crate) fn queue_len(&self) -> usize {
        lock(&self.queued).len()
    }

    /// Waits until every link queued before this call is deleted.
    pub(crate) async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.jobs.send(Job::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

fn run(
    mut rx: mpsc::UnboundedReceiver<Job>,
    ready: std::sync::mpsc::Sender<Result<(), LinkError>>,
    counters: Arc<Counters>,
    queued: Arc<std::sync::Mutex<std::collections::HashSet<u32>>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(LinkError::other(
                "starting the link reaper",
                e.to_string(),
            )));
            return;
        }
    };
    runtime.block_on(async move {
        let netlink = match Netlink::connect() {
            Ok(n) => n,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        while let Some(job) = rx.recv().await {
            let mut batch = Vec::new();
            let mut flushes = Vec::new();
            let mut take = |job| match job {
                Job::Delete { index, name } => batch.push((index, name)),
                Job::Flush(tx) => flushes.push(tx),
            };
            take(job);
            // whatever queued up meanwhile shares this batch
            while let Ok(job) = rx.try_recv() {
                take(job);
            }
            let deleted = delete_batch(&netlink, &batch).await;
            counters.links_deleted(deleted);
            {
                let mut still = lock(&queued);
                for (index, _) in &batch {
                    still.remove(index);
                }
            }
            for tx in flushes {
                let _ = tx.send(());
            }
        }
    });
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Deletes the batch's links; returns how many it deleted (links already
/// gone are not counted).
async fn delete_batch(netlink: &Netlink, batch: &[(u32, String)]) -> u64 {
    if batch.is_empty() {
        return 0;
    }
    let started = std::time::Instant::now();
    let mut grouped = 0usize;
    let mut group_ok = true;
    for (index, name) in batch {
        match netlink.set_group(*index, REAP_GROUP).await {
            Ok(true) => grouped += 1,
            Ok(false) => tracing::debug!(link = %name, "link already gone"),
            Err(e) => {
                tracing::warn!(link = %name, error = %e, "could not group link for deletion");
                group_ok = false;
            }
        }
    }
    if group_ok {
        if grouped == 0 {
            return 0;
        }
        match netlink.delete_group(REAP_GROUP).await {
            Ok(()) => {
                tracing::debug!(
                    links = grouped,
                    elapsed_us = started.elapsed().as_micros() as u64,
                    "deleted container links"
                );
                return grouped as u64;
            }
            Err(e) => tracing::warn!(error = %e, "group delete failed; deleting links one by one"),
        }
    }
    let mut deleted = 0;
    for (index, name) in batch {
        match netlink.delete(*index, name).await {
            Ok(true) => deleted += 1,
            Ok(false) => {}
            Err(e) => tracing::error!(link = %name, error = %e, "could not delete container link"),
        }
    }
    deleted
}
