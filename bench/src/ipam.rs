//! IPAM at scale over the socket: RequestAddress + ReleaseAddress with
//! durable commits while 10 ... 1M addresses are allocated in one pool, and
//! what each allocated address costs in memory and on disk.
//!
//! Baseline in the same run: IpamDriver.GetCapabilities over the same
//! connections, which touches no state (the transport's floor).

use crate::harness::{Conn, Latencies, PluginProcess, floor_loop};

const FLOOR: &str = "/IpamDriver.GetCapabilities";
use anyhow::{Context, Result, bail};
use futures::future::try_join_all;
use serde_json::json;
use std::cell::Cell;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

/// Settings of one run.
pub struct Settings {
    /// Allocated-address levels to measure at, ascending.
    pub levels: Vec<usize>,
    /// Concurrent keep-alive connections for the throughput phases.
    pub clients: usize,
    /// Length of each measured phase.
    pub phase: Duration,
    /// IPv4 /8 and/or IPv6 /64.
    pub families: Vec<Family>,
}

/// The pool a run allocates from.
#[derive(Clone, Copy)]
pub enum Family {
    /// 10.0.0.0/8
    V4,
    /// fd00:b:e:c::/64
    V6,
}

impl Family {
    fn pool(self) -> (&'static str, bool) {
        match self {
            Family::V4 => ("10.0.0.0/8", false),
            Family::V6 => ("fd00:b:e:c::/64", true),
        }
    }
}

struct Level {
    allocated: usize,
    fill_rate: Option<f64>,
    pairs_per_s: f64,
    req: Latencies,
    rel: Latencies,
    single: Latencies,
    cpu_per_pair: Duration,
    rss: u64,
    state: u64,
}

/// Runs the benchmark and returns its report (markdown); the chart goes to
/// `chart` (an SVG the report links to, relative to `link_base`).
pub async fn run(binary: &Path, s: &Settings, chart: &Path, link_base: &Path) -> Result<String> {
    let mut out = String::new();
    let mut series = Vec::new();
    for family in &s.families {
        let (text, points) = run_family(binary, s, *family).await?;
        out += &text;
        out.push('\n');
        series.push(crate::plot::Series {
            name: format!("{} plugin CPU per pair", family.pool().0),
            points,
        });
    }
    if crate::plot::try_chart(
        chart,
        "IPAM: cost of RequestAddress + ReleaseAddress vs addresses allocated",
        "addresses allocated in the pool",
        "plugin CPU per pair (us)",
        &series,
    )
    .is_some()
    {
        let link = chart.strip_prefix(link_base).unwrap_or(chart);
        out += &format!("![IPAM cost vs allocated addresses]({})\n", link.display());
    }
    Ok(out)
}

async fn run_family(
    binary: &Path,
    s: &Settings,
    family: Family,
) -> Result<(String, Vec<(f64, f64)>)> {
    let plugin = PluginProcess::start(binary, &[])?;
    let mut conns = Conn::open_many(&plugin.socket, s.clients).await?;

    // the floor: a request that reaches the handler and touches no state
    let mut floor = Latencies::default();
    let floor_rate = {
        let deadline = Instant::now() + s.phase;
        let t0 = Instant::now();
        let all = try_join_all(conns.iter_mut().map(|c| floor_loop(c, FLOOR, deadline))).await?;
        let n: usize = all.iter().map(Latencies::len).sum();
        all.into_iter().for_each(|l| floor.extend(l));
        n as f64 / t0.elapsed().as_secs_f64()
    };
    let mut floor_single = floor_loop(&mut conns[0], FLOOR, Instant::now() + s.phase / 2).await?;

    let (pool, v6) = family.pool();
    let reply = conns[0]
        .post(
            "/IpamDriver.RequestPool",
            json!({"AddressSpace": "local", "Pool": pool, "V6": v6, "Options": {}}).to_string(),
        )
        .await?;
    let pool_id = reply["PoolID"]
        .as_str()
        .context("RequestPool: no PoolID")?
        .to_string();

    let mut levels = Vec::new();
    let mut allocated = 0usize;
    for &target in &s.levels {
        let fill_rate = if target > allocated {
            let n = target - allocated;
            let left = Cell::new(n);
            let t0 = Instant::now();
            try_join_all(conns.iter_mut().map(|c| fill_loop(c, &pool_id, &left))).await?;
            allocated = target;
            Some(n as f64 / t0.elapsed().as_secs_f64())
        } else {
            None
        };
        let cpu0 = plugin.cpu_time()?;
        let t0 = Instant::now();
        let deadline = t0 + s.phase;
        let all = try_join_all(conns.iter_mut().map(|c| pair_loop(c, &pool_id, deadline))).await?;
        let elapsed = t0.elapsed();
        let cpu = plugin.cpu_time()?.saturating_sub(cpu0);
        let (mut req, mut rel) = (Latencies::default(), Latencies::default());
        for (q, r) in all {
            req.extend(q);
            rel.extend(r);
        }
        let pairs = req.len();
        let (single, _) = pair_loop(&mut conns[0], &pool_id, Instant::now() + s.phase / 2).await?;
        levels.push(Level {
            allocated,
            fill_rate: fill_rate.filter(|_| target >= 1000),
            pairs_per_s: pairs as f64 / elapsed.as_secs_f64(),
            req,
            rel,
            single,
            cpu_per_pair: cpu / u32::try_from(pairs.max(1)).unwrap_or(u32::MAX),
            rss: plugin.rss()?,
            state: plugin.state_bytes(),
        });
        eprintln!("ipam {pool}: measured at {allocated} allocated");
    }

    let mut t = String::new();
    writeln!(
        t,
        "**{pool}**, {} clients, {} s phases. Floor (GetCapabilities, same connections): \
         {:.0} req/s, p50 {} us, p99 {} us; one client p50 {} us.\n",
        s.clients,
        s.phase.as_secs_f64(),
        floor_rate,
        floor.quantile(0.5),
        floor.quantile(0.99),
        floor_single.quantile(0.5),
    )?;
    writeln!(
        t,
        "| allocated | RequestAddress alone (fill) | Request+Release pairs/s | vs floor rate | \
         RequestAddress p50 / p99 | ReleaseAddress p50 / p99 | one client RequestAddress p50 | \
         plugin CPU per pair | CPU vs first level | RSS | state file |"
    )?;
    writeln!(
        t,
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )?;
    let first_cpu = levels.first().map_or(Duration::ZERO, |l| l.cpu_per_pair);
    for l in &mut levels {
        writeln!(
            t,
            "| {} | {} | {:.0} | {:.2} | {} / {} us | {} / {} us | {} us | {} us | {:.2}x | {:.1} MiB | {:.1} MiB |",
            l.allocated,
            l.fill_rate.map_or("-".into(), |r| format!("{r:.0}/s")),
            l.pairs_per_s,
            l.pairs_per_s / floor_rate,
            l.req.quantile(0.5),
            l.req.quantile(0.99),
            l.rel.quantile(0.5),
            l.rel.quantile(0.99),
            l.single.quantile(0.5),
            l.cpu_per_pair.as_micros(),
            ratio(l.cpu_per_pair, first_cpu),
            mib(l.rss),
            mib(l.state),
        )?;
    }
    if let (Some(lo), Some(hi)) = (levels.first(), levels.last())
        && hi.allocated > lo.allocated
    {
        let n = (hi.allocated - lo.allocated) as f64;
        let per_address = hi.rss.saturating_sub(lo.rss) as f64 / n;
        writeln!(
            t,
            "\nPer allocated address (from {} to {}): {per_address:.0} B of RSS, {:.0} B of state file.\n",
            lo.allocated,
            hi.allocated,
            hi.state.saturating_sub(lo.state) as f64 / n,
        )?;
        let slowest_fill = levels
            .iter()
            .filter_map(|l| l.fill_rate)
            .fold(f64::INFINITY, f64::min);
        let cpu_growth = ratio(hi.cpu_per_pair, lo.cpu_per_pair);
        let verdict = |met: bool| if met { "met" } else { "NOT met" };
        writeln!(
            t,
            "Goals: >= 20k durable RequestAddress/s: {} (slowest fill {slowest_fill:.0}/s); \
             cost at {} <= 2x cost at {}: {} ({cpu_growth:.2}x plugin CPU per pair); \
             <= 64 B per address: {} ({per_address:.0} B).",
            verdict(slowest_fill >= 20_000.0),
            hi.allocated,
            lo.allocated,
            verdict(cpu_growth <= 2.0),
            verdict(per_address <= 64.0),
        )?;
    }
    let points = levels
        .iter()
        .map(|l| (l.allocated as f64, l.cpu_per_pair.as_secs_f64() * 1e6))
        .collect();
    Ok((t, points))
}

fn ratio(a: Duration, b: Duration) -> f64 {
    if b.is_zero() {
        return f64::NAN;
    }
    a.as_secs_f64() / b.as_secs_f64()
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

async fn request_address(c: &mut Conn, pool_id: &str) -> Result<String> {
    let reply = c
        .post(
            "/IpamDriver.RequestAddress",
            json!({"PoolID": pool_id, "Address": "", "Options": {}}).to_string(),
        )
        .await?;
    let cidr = reply["Address"]
        .as_str()
        .context("RequestAddress: no Address")?;
    match cidr.split_once('/') {
        Some((addr, _)) => Ok(addr.to_string()),
        None => bail!("RequestAddress: {cidr} is not in CIDR form"),
    }
}

async fn fill_loop(c: &mut Conn, pool_id: &str, left: &Cell<usize>) -> Result<()> {
    while left.get() > 0 {
        left.set(left.get() - 1);
        request_address(c, pool_id).await?;
    }
    Ok(())
}

async fn pair_loop(
    c: &mut Conn,
    pool_id: &str,
    deadline: Instant,
) -> Result<(Latencies, Latencies)> {
    let (mut req, mut rel) = (Latencies::default(), Latencies::default());
    while Instant::now() < deadline {
        let t = Instant::now();
        let addr = request_address(c, pool_id).await?;
        req.push(t.elapsed());
        let t = Instant::now();
        c.post(
            "/IpamDriver.ReleaseAddress",
            json!({"PoolID": pool_id, "Address": addr}).to_string(),
        )
        .await?;
        rel.push(t.elapsed());
    }
    Ok((req, rel))
}
