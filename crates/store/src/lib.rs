//! Durable state for ipvlan-rs: a redb file fronted by a write-ahead log,
//! written by one committer thread that groups concurrent changes into one
//! log record (group commit).
//!
//! Job: make a list of key/value changes durable, in the order they were
//! submitted, and say when each is. Owners (the IPAM, the driver) keep their
//! working state in memory, apply a change there first, submit the matching
//! [`Op`]s while still holding their own lock (so submission order is apply
//! order), and answer the engine only once the [`Commit`] resolves.
//!
//! Invariants:
//! - Changes become durable in submission order, each batch as one log
//!   record (one page write and one fdatasync): when a `Commit` resolves
//!   `Ok`, that change and every change submitted before it are on disk.
//! - The redb file plus its two logs (`<file>.wal0`, `.wal1`) is the
//!   state. Checkpoints (a full log, 1024 changes pending,
//!   two idle seconds, load, close) switch to the other log and hand the
//!   changes to a checkpoint thread, which applies them to redb in one
//!   durable transaction while new records go on being logged. A log is
//!   reused only once its checkpoint is durable. [`Store::open`] replays
//!   both logs into redb, older epoch first, and [`Store::load`] waits for
//!   a checkpoint, so both read every acknowledged change.
//! - A failed write is fatal: every later submission fails too, because the
//!   owners' memory already holds changes the disk does not. The process
//!   should exit and reload from disk ([`Store::failed`]).
//! - The file carries a schema version; a file from a newer schema is refused.
//!
//! - Each durable log record is reported to the owner's commit observer,
//!   if one is set ([`Store::observe_commits`]): the store counts nothing
//!   itself and knows no metrics library.
//!
//! Knows nothing of Docker, IP addresses or links: tables hold bytes.
//! This file is the API; the two threads behind it live in `committer`,
//! the log format in `wal`.

mod committer;
mod file;
mod wal;

use committer::{Batch, Reply, write_ops};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use tokio::sync::oneshot;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const SCHEMA_KEY: &str = "schema";
/// redb's page cache (see [`Store::open`]).
const CACHE_BYTES: usize = 8 << 20;
/// A store failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The state file could not be opened, read or written.
    #[error("state file {path}: {message}")]
    Io {
        /// The state file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The state file was written by a newer release.
    #[error("state file {path} has schema {found}, newer than the {supported} this release reads")]
    NewerSchema {
        /// The state file.
        path: PathBuf,
        /// Schema found on disk.
        found: u64,
        /// Newest schema this build understands.
        supported: u64,
    },
    /// An earlier commit failed; nothing more is accepted.
    #[error("state store stopped after an earlier write failure: {0}")]
    Failed(String),
    /// The committer thread is gone (shutdown).
    #[error("state store is closed")]
    Closed,
}

/// An [`StoreError::Io`] naming `path`.
fn io_error(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// One change to a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Insert or replace `key` in `table`.
    Put {
        /// Table name (one of those given to [`Store::open`]).
        table: &'static str,
        /// Key bytes.
        key: Vec<u8>,
        /// Value bytes.
        value: Vec<u8>,
    },
    /// Remove `key` from `table` (no-op if absent).
    Delete {
        /// Table name.
        table: &'static str,
        /// Key bytes.
        key: Vec<u8>,
    },
}

/// Resolves when a submitted change is durable (or failed).
#[must_use = "a change is only durable once its Commit resolves"]
pub struct Commit(oneshot::Receiver<Result<(), StoreError>>);

impl Commit {
    /// Wait for durability from async code.
    pub async fn durable(self) -> Result<(), StoreError> {
        self.0.await.unwrap_or(Err(StoreError::Closed))
    }

    /// Wait for durability from blocking code.
    pub fn wait(self) -> Result<(), StoreError> {
        self.0.blocking_recv().unwrap_or(Err(StoreError::Closed))
    }

    fn ready(result: Result<(), StoreError>) -> Commit {
        let (tx, rx) = oneshot::channel();
        let _ = tx.send(result);
        Commit(rx)
    }
}

/// One durable write of the committer, as told to a [`CommitObserver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitRecord {
    /// Changes the write made durable (the batches it grouped).
    pub changes: usize,
    /// From the start of the write to the end of its fdatasync.
    pub elapsed: std::time::Duration,
}

/// Called on the committer thread after each durable write: keep it short
/// (an atomic add, a histogram observation).
pub type CommitObserver = Arc<dyn Fn(CommitRecord) + Send + Sync>;

/// A key/value snapshot of one table, read at start-up.
pub type Rows = Vec<(Vec<u8>, Vec<u8>)>;

/// The durable store. Cheap to share behind an `Arc`.
pub struct Store {
    db: Arc<Database>,
    path: PathBuf,
    submit: std::sync::Mutex<Option<mpsc::Sender<Batch>>>,
    failed: Arc<AtomicBool>,
    committer: std::sync::Mutex<Option<thread::JoinHandle<()>>>,
    observer: Arc<std::sync::OnceLock<CommitObserver>>,
}

impl Store {
    /// Open (or create) the state file at `path` with the given tables.
    ///
    /// `schema` is the owner's current schema version: a new file is stamped
    /// with it, an older file is accepted (the owner migrates while loading),
    /// a newer one is refused. Fails if another process holds the file.
    pub fn open(path: &Path, schema: u64, tables: &[&'static str]) -> Result<Store, StoreError> {
        let io = |e: &dyn std::fmt::Display| io_error(path, e);
        // Owners hold their working state in memory and read the file only
        // when they load it, so redb's cache serves writes alone. Its 1 GiB
        // default made the file's pages resident twice (here and in the
        // kernel's page cache): RSS grew ~40 B per stored address.
        let db = file::open_database(path, CACHE_BYTES, &[log_path(path, 0), log_path(path, 1)])
            .map_err(|e| io(&e))?;
        restrict_permissions(path).map_err(|e| io(&e))?;
        let txn = db.begin_write().map_err(|e| io(&e))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| io(&e))?;
            let found = meta.get(SCHEMA_KEY).map_err(|e| io(&e))?.map(|v| v.value());
            match found {
                Some(found) if found > schema => {
                    return Err(StoreError::NewerSchema {
                        path: path.to_path_buf(),
                        found,
                        supported: schema,
                    });
                }
                Some(_) => {}
                None => {
                    meta.insert(SCHEMA_KEY, schema).map_err(|e| io(&e))?;
                }
            }
            for name in tables {
                txn.open_table(table(name)).map_err(|e| io(&e))?;
            }
        }
        txn.commit().map_err(|e| io(&e))?;

        // replayed in that order: the older epoch first
        let logs = open_logs(path, tables)?;
        for (log, replay) in &logs {
            if !replay.is_empty() {
                // a log keeps its records after their checkpoint until it
                // is reused, so this runs after a clean stop too: applying
                // them again is harmless (each op sets or removes a key)
                tracing::info!(
                    path = %log.path().display(),
                    changes = replay.len(),
                    "applying the state log's changes to the state file (after any stop, clean or not)"
                );
            }
        }
        write_ops(&db, logs.iter().flat_map(|(_, ops)| ops)).map_err(|e| io(&e))?;
        let newest = logs.iter().map(|(log, _)| log.epoch()).max().unwrap_or(0);
        let mut logs = logs.into_iter().map(|(log, _)| log);
        let (Some(mut active), Some(spare)) = (logs.next(), logs.next()) else {
            return Err(io(&"two state logs expected"));
        };
        // both are in redb now; the older one takes the next epoch
        active
            .start_epoch(newest + 1)
            .map_err(|e| io_error(active.path(), e))?;

        let db = Arc::new(db);
        let failed = Arc::new(AtomicBool::new(false));
        let observer = Arc::new(std::sync::OnceLock::new());
        let (tx, committer) = committer::start(
            db.clone(),
            active,
            spare,
            path.to_path_buf(),
            failed.clone(),
            observer.clone(),
        )
        .map_err(|e| io(&e))?;
        Ok(Store {
            db,
            path: path.to_path_buf(),
            submit: std::sync::Mutex::new(Some(tx)),
            failed,
            committer: std::sync::Mutex::new(Some(committer)),
            observer,
        })
    }

    /// Reports every durable write from now on to `observer` (the first
    /// observer set stays; later calls are ignored).
    pub fn observe_commits(&self, observer: CommitObserver) {
        let _ = self.observer.set(observer);
    }

    /// The schema version stamped in the file.
    pub fn schema(&self) -> Result<u64, StoreError> {
        let io = |e: &dyn std::fmt::Display| io_error(&self.path, e);
        let txn = self.db.begin_read().map_err(|e| io(&e))?;
        let meta = txn.open_table(META).map_err(|e| io(&e))?;
        Ok(meta
            .get(SCHEMA_KEY)
            .map_err(|e| io(&e))?
            .map(|v| v.value())
            .unwrap_or(0))
    }

    /// Every row of `table`, in key order, including every change whose
    /// commit resolved (blocking: it waits for a checkpoint while the
    /// store is open).
    pub fn load(&self, name: &'static str) -> Result<Rows, StoreError> {
        // the committer checkpoints before answering a load
        let (tx, rx) = mpsc::sync_channel(1);
        if self.send(Vec::new(), Reply::Load(tx)).is_ok() {
            rx.recv().unwrap_or(Err(StoreError::Closed))?;
        }
        let io = |e: &dyn std::fmt::Display| io_error(&self.path, e);
        let txn = self.db.begin_read().map_err(|e| io(&e))?;
        let t = txn.open_table(table(name)).map_err(|e| io(&e))?;
        let mut rows = Vec::new();
        for entry in t.iter().map_err(|e| io(&e))? {
            let (k, v) = entry.map_err(|e| io(&e))?;
            rows.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(rows)
    }

    /// Queue `ops` for commit, after everything submitted before; an empty
    /// list resolves once everything submitted before it is durable.
    ///
    /// Call while holding the lock that ordered the in-memory change, then
    /// await the returned [`Commit`] without it.
    pub fn submit(&self, ops: Vec<Op>) -> Commit {
        if self.failed.load(Ordering::Acquire) {
            return Commit::ready(Err(StoreError::Failed("see the earlier error".into())));
        }
        // An empty submission goes through the committer too: it is
        // answered once everything submitted before it is durable, which is
        // what an answer repeating an earlier change relies on.
        let (reply, rx) = oneshot::channel();
        match self.send(ops, Reply::Commit(reply)) {
            Ok(()) => Commit(rx),
            Err(e) => Commit::ready(Err(e)),
        }
    }

    fn send(&self, ops: Vec<Op>, reply: Reply) -> Result<(), StoreError> {
        let guard = match self.submit.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        match guard.as_ref() {
            Some(tx) if tx.send(Batch { ops, reply }).is_ok() => Ok(()),
            _ => Err(StoreError::Closed),
        }
    }

    /// Whether a write has failed (the process should restart and reload).
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Commit what is queued, stop the committer and release the file.
    pub fn close(&self) {
        let sender = match self.submit.lock() {
            Ok(mut g) => g.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        drop(sender);
        let handle = match self.committer.lock() {
            Ok(mut g) => g.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}

pub(crate) fn table(name: &str) -> TableDefinition<'_, &'static [u8], &'static [u8]> {
    TableDefinition::new(name)
}

fn restrict_permissions(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

/// The state file's write-ahead logs: `<state file>.wal0` and `.wal1`.
fn log_path(path: &Path, which: u8) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".wal{which}"));
    PathBuf::from(name)
}

/// Both logs of the state file at `path` with their logged changes, the
/// older epoch first.
fn open_logs(path: &Path, tables: &[&'static str]) -> Result<Vec<(wal::Log, Vec<Op>)>, StoreError> {
    let mut logs = Vec::with_capacity(2);
    for which in 0..2 {
        let log_path = log_path(path, which);
        logs.push(wal::Log::open(&log_path, tables).map_err(|e| io_error(&log_path, e))?);
    }
    logs.sort_by_key(|(log, _)| log.epoch());
    Ok(logs)
}

#[cfg(test)]
mod tests;
