//! Footprint: binary size, idle memory, time from exec to a serving
//! socket, and that time again with a large state to load and reconcile.
//!
//! Baselines in the same run: `ipvlan-rs --version` (exec of the same
//! static binary doing nothing) for start-up, and the empty-state start-up
//! for the large state.

use crate::harness::{Conn, Latencies, PluginProcess, docker_id, netns_with_parent};
use anyhow::{Context, Result, bail};
use futures::future::try_join_all;
use serde_json::json;
use std::cell::Cell;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Settings of one run.
pub struct Settings {
    /// Start-ups measured per case.
    pub starts: usize,
    /// Endpoints (each with an allocated address) in the large state.
    pub endpoints: usize,
}

/// Runs the benchmark and returns its report (markdown).
pub async fn run(binary: &Path, s: &Settings) -> Result<String> {
    let size = std::fs::metadata(binary)
        .with_context(|| format!("{}", binary.display()))?
        .len();

    let mut exec_floor = Latencies::default();
    for _ in 0..s.starts {
        let t = Instant::now();
        let status = Command::new(binary)
            .arg("--version")
            .stdout(Stdio::null())
            .status()?;
        exec_floor.push(t.elapsed());
        if !status.success() {
            bail!("{} --version failed", binary.display());
        }
    }

    let ns = netns_with_parent("fp")?;
    let mut empty = Latencies::default();
    let mut idle_rss = 0;
    for _ in 0..s.starts {
        let t = Instant::now();
        let p = PluginProcess::start_in(Some(&ns), binary, &[])?;
        empty.push(t.elapsed());
        // settled: the runtime, both stores and the reaper are up
        tokio::time::sleep(Duration::from_millis(50)).await;
        idle_rss = idle_rss.max(p.rss()?);
    }

    // a large state: endpoints with addresses, made over the socket
    let state_dir = crate::harness::scratch_dir()?;
    let env = [("STATE_DIR", state_dir.path().to_str().unwrap_or_default())];
    let fill_started = Instant::now();
    {
        let p = PluginProcess::start_in(Some(&ns), binary, &env)?;
        let mut conns = Conn::open_many(&p.socket, 64).await?;
        let net = docker_id(u64::MAX);
        let pool = conns[0]
            .post(
                "/IpamDriver.RequestPool",
                json!({"AddressSpace": "local", "Pool": "10.0.0.0/8", "Options": {}}).to_string(),
            )
            .await?["PoolID"]
            .as_str()
            .context("no PoolID")?
            .to_string();
        conns[0]
            .post(
                "/NetworkDriver.CreateNetwork",
                json!({"NetworkID": net,
                       "Options": {"com.docker.network.generic": {"parent": "hp0", "kind": "macvlan"}},
                       "IPv4Data": [{"AddressSpace": "local", "Pool": "10.0.0.0/8", "Gateway": "10.0.0.1/8"}],
                       "IPv6Data": []})
                .to_string(),
            )
            .await?;
        let next = Cell::new(0u64);
        let total = s.endpoints as u64;
        try_join_all(conns.iter_mut().map(|c| async {
            loop {
                let n = next.get();
                if n >= total {
                    return Ok::<(), anyhow::Error>(());
                }
                next.set(n + 1);
                let reply = c
                    .post(
                        "/IpamDriver.RequestAddress",
                        json!({"PoolID": pool, "Address": "", "Options": {}}).to_string(),
                    )
                    .await?;
                let addr = reply["Address"].as_str().context("no Address")?;
                c.post(
                    "/NetworkDriver.CreateEndpoint",
                    json!({"NetworkID": net, "EndpointID": docker_id(n),
                           "Interface": {"Address": addr, "AddressIPv6": "", "MacAddress": ""},
                           "Options": {}})
                    .to_string(),
                )
                .await?;
            }
        }))
        .await?;
    }
    let fill = fill_started.elapsed();
    let mut large = Latencies::default();
    let mut large_rss = 0;
    for _ in 0..s.starts.min(5) {
        let t = Instant::now();
        let p = PluginProcess::start_in(Some(&ns), binary, &env)?;
        large.push(t.elapsed());
        large_rss = large_rss.max(p.rss()?);
    }

    let (f50, e50, l50) = (
        exec_floor.quantile(0.5),
        empty.quantile(0.5),
        large.quantile(0.5),
    );
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    let mut t = String::new();
    writeln!(
        t,
        "Medians of {} start-ups (exec until the socket accepts a connection; includes \
         opening both state files and reconciling links). The {}-endpoint state was \
         made over the socket in {:.1} s (an address and an endpoint each).\n",
        s.starts,
        s.endpoints,
        fill.as_secs_f64()
    )?;
    writeln!(
        t,
        "| measure | value | baseline (same run) | ratio | goal |"
    )?;
    writeln!(t, "|---|---:|---:|---:|---|")?;
    writeln!(
        t,
        "| static binary size | {:.1} MiB | | | <= 8 MiB: {} |",
        mib(size),
        verdict(size <= 8 << 20)
    )?;
    writeln!(
        t,
        "| idle RSS, empty state | {:.1} MiB | | | <= 8 MiB: {} |",
        mib(idle_rss),
        verdict(idle_rss <= 8 << 20)
    )?;
    writeln!(
        t,
        "| exec to serving, empty state | {:.1} ms | {:.1} ms (`--version`) | {:.1}x | <= 50 ms: {} |",
        f64::from(e50) / 1000.0,
        f64::from(f50) / 1000.0,
        f64::from(e50) / f64::from(f50.max(1)),
        verdict(e50 <= 50_000)
    )?;
    writeln!(
        t,
        "| exec to serving, {} endpoints + addresses | {:.1} ms | {:.1} ms (empty state) | {:.1}x | <= 1 s: {} |",
        s.endpoints,
        f64::from(l50) / 1000.0,
        f64::from(e50) / 1000.0,
        f64::from(l50) / f64::from(e50.max(1)),
        verdict(l50 <= 1_000_000)
    )?;
    writeln!(
        t,
        "| RSS after loading {} endpoints + addresses | {:.1} MiB | {:.1} MiB (empty state) | {:.1}x | |",
        s.endpoints,
        mib(large_rss),
        mib(idle_rss),
        large_rss as f64 / idle_rss.max(1) as f64
    )?;
    Ok(t)
}
