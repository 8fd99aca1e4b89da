//! The durable store alone: what a commit through `store::Store`
//! (committer thread, group commit, write-ahead log) costs over a bare
//! redb write transaction with one insert and immediate durability, the
//! floor measured in the same run on the same disk, and what the disk
//! itself costs for one page made durable.
//!
//! Then the design question of issue #18, in interleaved rounds: the store
//! as it is against redb alone behind the same group commit
//! ([`crate::redb_group`]), one client and many, same ops.

use crate::harness::{Latencies, median};
use crate::redb_group::RedbGroup;
use anyhow::Result;
use futures::future::try_join_all;
use redb::{Database, TableDefinition};
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};
use store::{Op, Store};

/// Settings of one run.
pub struct Settings {
    /// Commits per case (and per one-client phase of the comparison).
    pub commits: usize,
    /// Rounds of the design comparison, each measuring (a) then (b).
    pub rounds: usize,
    /// Concurrent clients of the comparison's throughput phase.
    pub clients: usize,
    /// Length of each throughput phase.
    pub phase: Duration,
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
            let t = Instant::now();
            store
                .submit(allocation([&key[..], b"x"].concat()))
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
        "{} commits per case, one writer, state in {}.\n",
        s.commits,
        state_dir_line(dir.path())
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
    t.push('\n');
    t.push_str(&compare_designs(s, dir.path()).await?);
    Ok(t)
}

/// An allocation as the IPAM commits it: the address and the pool's serial
/// cursor, in two tables, 32-byte values.
fn allocation(address: Vec<u8>) -> Vec<Op> {
    vec![
        Op::Put {
            table: "a",
            key: address,
            value: vec![0u8; 32],
        },
        Op::Put {
            table: "b",
            key: b"cursor".to_vec(),
            value: vec![0u8; 32],
        },
    ]
}

/// `dir`'s parent (the benchmark's base dir) and its file system, so that a
/// record says whether its fdatasyncs reached a disk.
fn state_dir_line(dir: &Path) -> String {
    use nix::sys::statfs::{TMPFS_MAGIC, statfs};
    let base = dir.parent().unwrap_or(dir).display();
    match statfs(dir) {
        Ok(fs) if fs.filesystem_type() == TMPFS_MAGIC => {
            format!("{base} (tmpfs: fdatasync writes nothing)")
        }
        Ok(_) => format!("{base} (on disk: a real fdatasync each)"),
        Err(e) => format!("{base} (file system unknown: {e})"),
    }
}

/// The designs of issue #18, driven by the same load.
enum Design {
    /// (a) `store::Store` as it is: write-ahead log, checkpoints into redb.
    Wal(Store),
    /// (b) redb alone behind the same group commit.
    Redb(RedbGroup),
}

impl Design {
    const TABLES: &[&'static str] = &["a", "b"];

    /// Opens design `wal` ((a)) or not ((b)) on its state file in `dir`.
    fn open(wal: bool, dir: &Path) -> Result<Design> {
        Ok(if wal {
            Design::Wal(Store::open(&dir.join("wal.redb"), 1, Self::TABLES)?)
        } else {
            Design::Redb(RedbGroup::open(&dir.join("redb.redb"), Self::TABLES)?)
        })
    }

    /// Submits `ops` and waits until they are durable.
    async fn commit(&self, ops: Vec<Op>) -> Result<()> {
        match self {
            Design::Wal(store) => Ok(store.submit(ops).durable().await?),
            Design::Redb(group) => group.commit(ops).await,
        }
    }

    /// Leaves nothing running (the store's last checkpoint included), so
    /// that the other design's turn has the disk and the CPUs to itself.
    fn close(self) {
        if let Design::Wal(store) = &self {
            store.close();
        }
    }
}

/// What one turn of a design measured.
struct Turn {
    one_p50: u32,
    one_p99: u32,
    /// Bytes written (write calls) per one-client commit.
    one_bytes: f64,
    many_rate: f64,
    many_p99: u32,
}

impl Turn {
    /// The comparison table's columns, in its order.
    fn columns(&self) -> [f64; 5] {
        [
            f64::from(self.one_p50),
            f64::from(self.one_p99),
            self.one_bytes,
            self.many_rate,
            f64::from(self.many_p99),
        ]
    }

    /// Each column of `self` over the same column of `base`.
    fn over(&self, base: &Turn) -> [f64; 5] {
        let (x, b) = (self.columns(), base.columns());
        std::array::from_fn(|k| ratio(x[k], b[k]))
    }
}

/// `x / base`, finite when `base` is 0.
fn ratio(x: f64, base: f64) -> f64 {
    x / base.max(f64::MIN_POSITIVE)
}

/// Bytes this process has passed to write calls so far (`wchar` of
/// `/proc/self/io`). Not `write_bytes`: it counts the whole large folio a
/// dirtied 4 KiB page belongs to (~250 KiB per log record on this ext4),
/// though writeback sends only the dirty blocks to the disk.
fn written_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|io| {
            io.lines()
                .find_map(|l| l.strip_prefix("wchar:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// `commits` allocations one after the other, each awaited.
async fn one_client(design: &Design, commits: usize, tag: &str) -> Result<Latencies> {
    let mut l = Latencies::default();
    for i in 0..commits {
        let t = Instant::now();
        design
            .commit(allocation(format!("{tag}-1-{i:08}").into_bytes()))
            .await?;
        l.push(t.elapsed());
    }
    Ok(l)
}

/// `clients` concurrent clients committing allocations back to back for
/// `phase`: commits per second and every commit's latency.
async fn many_clients(
    design: &Design,
    clients: usize,
    phase: Duration,
    tag: &str,
) -> Result<(f64, Latencies)> {
    let start = Instant::now();
    let deadline = start + phase;
    let runs = (0..clients).map(|c| async move {
        let mut l = Latencies::default();
        let mut i = 0u64;
        while Instant::now() < deadline {
            let t = Instant::now();
            design
                .commit(allocation(format!("{tag}-{c:03}-{i:08}").into_bytes()))
                .await?;
            l.push(t.elapsed());
            i += 1;
        }
        Ok::<_, anyhow::Error>(l)
    });
    let mut all = Latencies::default();
    for l in try_join_all(runs).await? {
        all.extend(l);
    }
    let rate = all.len() as f64 / start.elapsed().as_secs_f64();
    Ok((rate, all))
}

/// One turn: open, one client, many clients, close. Each design keeps its
/// state files from turn to turn, as a plugin keeps them from restart to
/// restart; `warm` runs the same load untimed first (a fresh state dir:
/// logs and redb file grow to their working size).
async fn turn(s: &Settings, wal: bool, dir: &Path, round: usize, warm: bool) -> Result<Turn> {
    let design = Design::open(wal, dir)?;
    if warm {
        one_client(&design, s.commits / 4, "warm").await?;
        many_clients(&design, s.clients, s.phase / 2, "warm").await?;
    }
    let tag = format!("r{round}");
    let written = written_bytes();
    let mut one = one_client(&design, s.commits, &tag).await?;
    let one_bytes = written_bytes().saturating_sub(written) as f64 / s.commits as f64;
    let (many_rate, mut many) = many_clients(&design, s.clients, s.phase, &tag).await?;
    design.close();
    Ok(Turn {
        one_p50: one.quantile(0.5),
        one_p99: one.quantile(0.99),
        one_bytes,
        many_rate,
        many_p99: many.quantile(0.99),
    })
}

/// Issue #18: the store as it is against redb alone behind the same group
/// commit, in interleaved rounds (a, b, a, b, ...), and the rule's verdict.
async fn compare_designs(s: &Settings, dir: &Path) -> Result<String> {
    let load_before = crate::harness::load_average();
    let wal_dir = dir.join("a");
    let redb_dir = dir.join("b");
    std::fs::create_dir_all(&wal_dir)?;
    std::fs::create_dir_all(&redb_dir)?;
    let mut pairs = Vec::with_capacity(s.rounds);
    for round in 1..=s.rounds {
        let a = turn(s, true, &wal_dir, round, round == 1).await?;
        let b = turn(s, false, &redb_dir, round, round == 1).await?;
        pairs.push((a, b));
    }

    let mut t = String::new();
    writeln!(
        t,
        "**Design (issue #18)**: (a) `Store` as it is (write-ahead log, \
         checkpoints into redb) against (b) redb alone behind the same group \
         commit (one committer thread: the first submission and all queued \
         behind it, up to 4096 ops, in one write transaction at \
         `Durability::Immediate`). Each commit is an allocation (two puts, \
         two tables, 32 B values). {} rounds, interleaved a, b, a, b, ...; \
         each turn reopens its design's state files (one untimed warm-up \
         turn's load first in round 1): one client, {} commits back to \
         back; then {} clients for {:.1} s. Ratios: (a)/(b) of the same \
         round, (b) being the baseline. Load average (1 min) {load_before:.1} \
         before the rounds, {:.1} after.\n",
        s.rounds,
        s.commits,
        s.clients,
        s.phase.as_secs_f64(),
        crate::harness::load_average()
    )?;
    writeln!(
        t,
        "| round | design | one client p50 | one client p99 | one client bytes written per commit | {c} clients commits/s | {c} clients p99 |",
        c = s.clients
    )?;
    writeln!(t, "|---|---|---:|---:|---:|---:|---:|")?;
    let turn_row = |t: &mut String, round: &str, name: &str, x: [f64; 5]| {
        let _ = writeln!(
            t,
            "| {round} | {name} | {:.0} us | {:.0} us | {:.1} KiB | {:.0} | {:.0} us |",
            x[0],
            x[1],
            x[2] / 1024.0,
            x[3],
            x[4]
        );
    };
    let ratio_row = |t: &mut String, round: &str, r: [f64; 5]| {
        let _ = writeln!(
            t,
            "| {round} | (a)/(b) | {:.2}x | {:.2}x | {:.2}x | {:.2}x | {:.2}x |",
            r[0], r[1], r[2], r[3], r[4]
        );
    };
    for (i, (a, b)) in pairs.iter().enumerate() {
        let round = (i + 1).to_string();
        turn_row(&mut t, &round, "(a) WAL", a.columns());
        turn_row(&mut t, &round, "(b) redb", b.columns());
        ratio_row(&mut t, &round, a.over(b));
    }
    let medians = |f: &dyn Fn(&(Turn, Turn)) -> [f64; 5]| {
        std::array::from_fn(|k| median(&mut pairs.iter().map(|p| f(p)[k]).collect::<Vec<_>>()))
    };
    turn_row(&mut t, "median", "(a) WAL", medians(&|p| p.0.columns()));
    turn_row(&mut t, "median", "(b) redb", medians(&|p| p.1.columns()));
    ratio_row(&mut t, "median", medians(&|p| p.0.over(&p.1)));

    // the rule: keep the log only if it is >= 1.5x faster at one client
    let speedups: Vec<f64> = pairs
        .iter()
        .map(|(a, b)| ratio(f64::from(b.one_p50), f64::from(a.one_p50)))
        .collect();
    let speedup = median(&mut speedups.clone());
    let each = speedups
        .iter()
        .map(|x| format!("{x:.2}x"))
        .collect::<Vec<_>>()
        .join(", ");
    writeln!(
        t,
        "\nRule of issue #18 (keep the log only if it is at least 1.5x faster \
         at one client): one-client p50 of (b) over (a), median of the rounds \
         {speedup:.2}x (rounds: {each}): {}.",
        if speedup >= 1.5 {
            "met, the log earns its place"
        } else {
            "not met, redb alone behind the group commit would do"
        }
    )?;
    Ok(t)
}
