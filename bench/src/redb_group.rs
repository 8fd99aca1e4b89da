//! redb alone behind a group committer: the design `crates/store`'s
//! write-ahead log is measured against (`BENCH=store`, issue #18).
//!
//! One thread takes the first queued submission and everything already
//! queued behind it, up to 4096 ops (the batching rule of the store's
//! committer), applies them in order in one redb write transaction at
//! `Durability::Immediate` (redb's default durable commit), and answers
//! every submission of the batch with that commit's outcome. There is no
//! log and no checkpoint: the redb commit is the durable write.
//!
//! A benchmark fixture, not a store: no schema, no failure latch, no load.

use anyhow::{Context, Result};
use redb::{Database, Durability, TableDefinition};
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use store::Op;
use tokio::sync::oneshot;

/// Most ops one transaction groups (as `crates/store`'s committer).
const MAX_BATCH: usize = 4096;
/// redb's page cache, as `store::Store` sets it.
const CACHE_BYTES: usize = 8 << 20;

/// Changes submitted together, and where their outcome goes.
struct Submission {
    ops: Vec<Op>,
    reply: oneshot::Sender<Result<(), String>>,
}

/// The committer thread and the way to it.
pub struct RedbGroup {
    submit: Option<mpsc::Sender<Submission>>,
    committer: Option<thread::JoinHandle<()>>,
}

impl RedbGroup {
    /// Opens (or creates) the redb file at `path` with `tables` and starts
    /// its committer thread.
    pub fn open(path: &Path, tables: &[&'static str]) -> Result<RedbGroup> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .with_context(|| format!("open {}", path.display()))?;
        let txn = db.begin_write()?;
        for name in tables {
            txn.open_table(table(name))?;
        }
        txn.commit()?;
        let (tx, rx) = mpsc::channel::<Submission>();
        let committer = thread::Builder::new()
            .name("redb-group-commit".into())
            .spawn(move || run(&db, &rx))?;
        Ok(RedbGroup {
            submit: Some(tx),
            committer: Some(committer),
        })
    }

    /// Queues `ops` after everything submitted before and waits until the
    /// transaction that carries them is durable.
    pub async fn commit(&self, ops: Vec<Op>) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.submit
            .as_ref()
            .context("redb group committer closed")?
            .send(Submission { ops, reply })
            .ok()
            .context("redb group committer gone")?;
        rx.await
            .context("redb group committer gone")?
            .map_err(anyhow::Error::msg)
    }
}

impl Drop for RedbGroup {
    /// Commits what is queued, stops the thread and releases the file.
    fn drop(&mut self) {
        drop(self.submit.take());
        if let Some(handle) = self.committer.take() {
            let _ = handle.join();
        }
    }
}

/// A table of the transaction, keys and values as bytes.
type BytesTable<'txn> = redb::Table<'txn, &'static [u8], &'static [u8]>;

fn table(name: &str) -> TableDefinition<'_, &'static [u8], &'static [u8]> {
    TableDefinition::new(name)
}

/// The committer loop: ends when every sender is gone.
fn run(db: &Database, rx: &mpsc::Receiver<Submission>) {
    while let Ok(first) = rx.recv() {
        let mut ops = first.ops.len();
        let mut batch = vec![first];
        while ops < MAX_BATCH {
            match rx.try_recv() {
                Ok(s) => {
                    ops += s.ops.len();
                    batch.push(s);
                }
                Err(_) => break,
            }
        }
        let result = apply(db, batch.iter().flat_map(|s| &s.ops)).map_err(|e| e.to_string());
        for s in batch {
            // a receiver that is gone stopped waiting; the change stands
            let _ = s.reply.send(result.clone());
        }
    }
}

/// `ops` in order in one transaction at `Durability::Immediate`, each
/// table opened once per transaction (none if `ops` is empty).
fn apply<'a>(db: &Database, ops: impl Iterator<Item = &'a Op>) -> Result<()> {
    let mut ops = ops.peekable();
    if ops.peek().is_none() {
        return Ok(());
    }
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    {
        let mut open: Vec<(&str, BytesTable<'_>)> = Vec::new();
        for op in ops {
            let name = match op {
                Op::Put { table, .. } | Op::Delete { table, .. } => *table,
            };
            let i = match open.iter().position(|(n, _)| *n == name) {
                Some(i) => i,
                None => {
                    open.push((name, txn.open_table(table(name))?));
                    open.len() - 1
                }
            };
            let t = &mut open[i].1;
            match op {
                Op::Put { key, value, .. } => {
                    t.insert(key.as_slice(), value.as_slice())?;
                }
                Op::Delete { key, .. } => {
                    t.remove(key.as_slice())?;
                }
            }
        }
    }
    txn.commit()?;
    Ok(())
}
