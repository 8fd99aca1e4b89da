//! The durable store alone, one writer at a time: what a commit through
//! `store::Store` (committer thread, group commit) costs over a bare redb
//! write transaction with one insert and immediate durability, the floor
//! measured in the same run on the same disk, and what the disk itself
//! costs for one page made durable.

use crate::harness::Latencies;
use anyhow::Result;
use redb::{Database, TableDefinition};
use std::fmt::Write as _;
use std::time::Instant;
use store::{Op, Store};

/// Settings of one run.
pub struct Settings {
    /// Commits per case.
    pub commits: usize,
}

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("t");

/// Runs the benchmark and returns its report (markdown).
pub async fn run(s: &Settings) -> Result<String> {
    let dir = crate::harness::scratch_dir()?;

    // the disk's own floor: one 4 KiB page overwritten in place in a
    // preallocated file, then fdatasync (no metadata, no journal commit)
    let mut page = Latencies::default();
    // and the same after 20 ms without I/O, as between a paced engine's calls
    let mut page_idle = Latencies::default();
    {
        use std::os::unix::fs::FileExt;
        const PAGES: u64 = 256;
        let file = std::fs::File::create(dir.path().join("page"))?;
        file.write_all_at(&vec![0u8; (PAGES * 4096) as usize], 0)?;
        file.sync_all()?;
        let data = [1u8; 4096];
        let page_sync = |i: u64, into: &mut Latencies| -> std::io::Result<()> {
            let t = Instant::now();
            file.write_all_at(&data, (i % PAGES) * 4096)?;
            file.sync_data()?;
            into.push(t.elapsed());
            Ok(())
        };
        for i in 0..s.commits as u64 {
            page_sync(i, &mut page)?;
        }
        for i in 0..(s.commits as u64 / 8).max(1) {
            std::thread::sleep(std::time::Duration::from_millis(20));
            page_sync(i, &mut page_idle)?;
        }
    }

    // redb itself, one insert per write transaction
    let mut bare = Latencies::default();
    {
        let db = Database::create(dir.path().join("bare.redb"))?;
        for i in 0..s.commits {
            let t = Instant::now();
            let txn = db.begin_write()?;
            {
                let mut table = txn.open_table(TABLE)?;
                table.insert(format!("key{i:08}").as_bytes(), [0u8; 32].as_slice())?;
            }
            txn.commit()?;
            bare.push(t.elapsed());
        }
    }

    // the store as the IPAM and the driver use it: submit, await durable
    let mut one = Latencies::default();
    let mut two = Latencies::default();
    {
        let store = Store::open(&dir.path().join("store.redb"), 1, &["a", "b"])?;
        for i in 0..s.commits {
            let key = format!("key{i:08}").into_bytes();
            let put = |table, key: &[u8]| Op::Put {
                table,
                key: key.to_vec(),
                value: vec![0u8; 32],
            };
            let t = Instant::now();
            store.submit(vec![put("a", &key)]).durable().await?;
            one.push(t.elapsed());
            // an allocation: the address and the pool's serial cursor
            let t = Instant::now();
            store
                .submit(vec![
                    put("a", &[&key[..], b"x"].concat()),
                    put("b", b"cursor"),
                ])
                .durable()
                .await?;
            two.push(t.elapsed());
        }
        store.close();
    }
    let row = |t: &mut String, name: &str, l: &mut Latencies, base: &mut Latencies| {
        let (p50, p99, b50, b99) = (
            l.quantile(0.5),
            l.quantile(0.99),
            base.quantile(0.5),
            base.quantile(0.99),
        );
        let _ = writeln!(
            t,
            "| {name} | {p50} us | {p99} us | {:.2}x | {:.2}x |",
            f64::from(p50) / f64::from(b50.max(1)),
            f64::from(p99) / f64::from(b99.max(1)),
        );
    };
    let mut t = String::new();
    writeln!(
        t,
        "{} commits per case, one writer, state on /var/tmp (a real fdatasync each).\n",
        s.commits
    )?;
    writeln!(t, "| case | p50 | p99 | p50 vs bare | p99 vs bare |")?;
    writeln!(t, "|---|---:|---:|---:|---:|")?;
    let mut base = bare.clone();
    row(
        &mut t,
        "disk floor: 4 KiB page overwrite + fdatasync",
        &mut page,
        &mut base,
    );
    row(
        &mut t,
        "disk floor after 20 ms idle (commits / 8 samples)",
        &mut page_idle,
        &mut base,
    );
    row(
        &mut t,
        "bare redb: one insert, commit",
        &mut bare,
        &mut base,
    );
    row(&mut t, "Store: one put, durable", &mut one, &mut base);
    row(
        &mut t,
        "Store: two tables (an allocation)",
        &mut two,
        &mut base,
    );
    Ok(t)
}
