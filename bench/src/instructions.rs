//! The plugin's own work per call, in instructions: each call of the
//! endpoint lifecycle run N times on the real binary under valgrind's
//! callgrind, which counts every instruction the process executes in user
//! space (all its threads: the runtime, the committer, the checkpointer,
//! the reaper). Unlike time, the count does not move with the machine's
//! noise, so a change to the plugin's code shows in it even where the
//! latency benchmarks cannot see it. What it leaves out is the kernel's
//! work (syscalls, netlink, the disk), which `BENCH=lifecycle` times.
//!
//! Baseline in the same run: NetworkDriver.GetCapabilities, which touches
//! no state (HTTP decoding, routing and encoding only).

use crate::harness::{Conn, NetNs, PluginProcess, docker_id, netns_with_parent, scratch_dir};
use crate::lifecycle::{
    CALLS, Network, create_network, delete_network, endpoint_calls, request_address,
};
use anyhow::{Context, Result, bail};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Lifecycles before counting: four log records each, so that both logs
/// (2046 records each) have been filled once.
const WARM_UP_LIFECYCLES: usize = 1100;
/// Longer than the store's idle checkpoint (2 s): waited after each phase
/// that changes state, so that the phase's count holds the checkpoint of
/// its own changes into redb, and no other phase's.
const CHECKPOINTED: Duration = Duration::from_millis(2500);

/// Settings of one run.
pub struct Settings {
    /// Calls per phase.
    pub calls: usize,
}

/// The plugin under callgrind and the files its dumps go to.
struct Profiled {
    plugin: PluginProcess,
    out: PathBuf,
    dumps: usize,
}

impl Profiled {
    /// Writes the counts since the last dump (or zero) and returns their
    /// total instructions; callgrind zeroes its counters after a dump.
    fn dump(&mut self, phase: &str) -> Result<u64> {
        callgrind_control(&["--dump", phase], self.plugin.pid())?;
        self.dumps += 1;
        let file = PathBuf::from(format!("{}.{}", self.out.display(), self.dumps));
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("callgrind dump {}", file.display()))?;
        if !text.contains(&format!("Trigger: dump {phase}")) {
            bail!("{} is not the dump of phase {phase}", file.display());
        }
        text.lines()
            .find_map(|l| l.strip_prefix("totals:"))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("no totals in {}", file.display()))
    }
}

fn callgrind_control(args: &[&str], pid: u32) -> Result<()> {
    let out = Command::new("callgrind_control")
        .args(args)
        .arg(pid.to_string())
        .output()
        .context("callgrind_control (apt-get install valgrind)")?;
    if !out.status.success() || !String::from_utf8_lossy(&out.stdout).contains("OK") {
        bail!(
            "callgrind_control {} {pid}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// valgrind's own binary: Debian's `valgrind` is a shell script that
/// starts it as a child, and callgrind_control needs the plugin's pid.
fn valgrind() -> Result<&'static str> {
    [
        "/usr/bin/valgrind.bin",
        "/usr/libexec/valgrind/valgrind",
        "/usr/bin/valgrind",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .context("no valgrind (apt-get install valgrind)")
}

/// Runs the benchmark and returns its report (markdown).
pub async fn run(binary: &Path, s: &Settings) -> Result<String> {
    let n = s.calls.max(1);
    let ns = netns_with_parent("ir")?;
    // BENCH_CALLGRIND_DIR keeps the dumps for callgrind_annotate (use a
    // binary built with symbols: the shipped one is stripped)
    let dumps = scratch_dir()?;
    let out = match std::env::var_os("BENCH_CALLGRIND_DIR") {
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            PathBuf::from(dir).join(format!("callgrind.out.{}", std::process::id()))
        }
        None => dumps.path().join("callgrind.out"),
    };
    let wrapper = [
        valgrind()?.to_string(),
        "--tool=callgrind".into(),
        format!("--callgrind-out-file={}", out.display()),
    ];
    // no reuse: every Join creates a link and every DeleteEndpoint hands
    // one to the reaper, so each phase does the same work at any speed
    // (reuse depends on timing, which valgrind stretches ~50 times)
    let plugin =
        PluginProcess::start_wrapped(Some(&ns), &wrapper, binary, &[("LINK_REUSE_MS", "0")])?;
    let mut p = Profiled {
        plugin,
        out,
        dumps: 0,
    };
    let mut c = Conn::open(&p.plugin.socket).await?;
    let net = create_network(&mut c).await?;
    // steady state: both logs grown to full size (a log writes zeros ahead
    // of its records only in its first epoch) and checkpointed
    let mut next_id = 0u64;
    for _ in 0..WARM_UP_LIFECYCLES {
        lifecycle(&mut c, &net, next_id).await?;
        next_id += 1;
    }
    wait_links_gone(&ns).await?;
    tokio::time::sleep(CHECKPOINTED).await;
    callgrind_control(&["--zero"], p.plugin.pid())?;

    let mut per_call: Vec<(&str, f64)> = Vec::new();
    for _ in 0..n {
        c.post("/NetworkDriver.GetCapabilities", String::new())
            .await?;
    }
    per_call.push((
        "GetCapabilities (floor)",
        p.dump("GetCapabilities")? as f64 / n as f64,
    ));

    // each call of the lifecycle as a phase of its own: N RequestAddress,
    // then N CreateEndpoint, ... so that a dump holds one kind of call
    let eids: Vec<String> = (next_id..next_id + n as u64).map(docker_id).collect();
    next_id += n as u64;
    let mut addrs = Vec::with_capacity(n);
    for _ in 0..n {
        let (path, body) = request_address(&net);
        let reply = c.post(path, body).await?;
        addrs.push(reply["Address"].as_str().context("no Address")?.to_string());
    }
    tokio::time::sleep(CHECKPOINTED).await;
    per_call.push((CALLS[0], p.dump(CALLS[0])? as f64 / n as f64));
    let calls: Vec<_> = eids
        .iter()
        .zip(&addrs)
        .map(|(eid, addr)| endpoint_calls(&net, eid, addr))
        .collect();
    for step in 0..5 {
        for endpoint in &calls {
            let (path, body) = &endpoint[step];
            c.post(path, body.clone()).await?;
        }
        if step == 3 {
            // DeleteEndpoint's link deletes run on the reaper thread after
            // the answer; they are part of its cost
            wait_links_gone(&ns).await?;
        }
        tokio::time::sleep(CHECKPOINTED).await;
        per_call.push((CALLS[step + 1], p.dump(CALLS[step + 1])? as f64 / n as f64));
    }

    // the same calls in the engine's order, endpoint after endpoint
    for _ in 0..n {
        lifecycle(&mut c, &net, next_id).await?;
        next_id += 1;
    }
    wait_links_gone(&ns).await?;
    tokio::time::sleep(CHECKPOINTED).await;
    let whole = p.dump("lifecycle")? as f64 / n as f64;
    delete_network(&mut c, &net).await?;
    report(n, &per_call, whole)
}

/// One endpoint's six calls in the engine's order.
async fn lifecycle(c: &mut Conn, net: &Network, id: u64) -> Result<()> {
    let (path, body) = request_address(net);
    let reply = c.post(path, body).await?;
    let addr = reply["Address"].as_str().context("no Address")?;
    for (path, body) in endpoint_calls(net, &docker_id(id), addr) {
        c.post(path, body).await?;
    }
    Ok(())
}

/// Waits (up to 60 s: the reaper runs under valgrind too) until no
/// container link is left in the namespace.
async fn wait_links_gone(ns: &NetNs) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = ns.links_with_prefix("ivr")?;
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{} container links still there after 60 s", left.len());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn report(n: usize, per_call: &[(&str, f64)], whole: f64) -> Result<String> {
    let floor = per_call.first().map_or(1.0, |(_, v)| v.max(1.0));
    let mut t = String::new();
    writeln!(
        t,
        "Instructions the plugin executed in user space (all threads; callgrind), per call, \
         over {n} calls of each kind on a macvlan network (veth parent in a netns, state on \
         disk, `LINK_REUSE_MS=0`: every Join creates a link, every DeleteEndpoint has the \
         reaper delete one, counted once the link is gone), after {WARM_UP_LIFECYCLES} \
         lifecycles of warm-up. Each phase that changes state includes the checkpoint of its \
         changes into redb. The kernel's work is not in these counts. Baseline: \
         NetworkDriver.GetCapabilities.\n"
    )?;
    writeln!(t, "| call | instructions per call | vs GetCapabilities |")?;
    writeln!(t, "|---|---:|---:|")?;
    for (name, v) in per_call {
        writeln!(t, "| {name} | {v:.0} | {:.2}x |", v / floor)?;
    }
    let sum: f64 = per_call.iter().skip(1).map(|(_, v)| v).sum();
    writeln!(
        t,
        "| the six above, summed | {sum:.0} | {:.2}x |",
        sum / floor
    )?;
    writeln!(
        t,
        "| one lifecycle, the six calls in the engine's order | {whole:.0} | {:.2}x |",
        whole / floor
    )?;
    Ok(t)
}
