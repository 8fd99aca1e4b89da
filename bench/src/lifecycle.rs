//! The control plane over the socket: the full endpoint lifecycle the
//! engine drives for `docker run` and its teardown (RequestAddress,
//! CreateEndpoint, Join, Leave, DeleteEndpoint, ReleaseAddress), with real
//! macvlan links on a veth parent in a network namespace of the
//! benchmark's own and durable commits.
//!
//! Baselines in the same run: NetworkDriver.GetCapabilities at the same
//! concurrency (the transport's floor), and one client on a second plugin
//! started with `LINK_REUSE_MS=0`, which creates and deletes a link for
//! every lifecycle (what link reuse saves).

use crate::harness::{Conn, Latencies, PluginProcess, docker_id, floor_loop, netns_with_parent};
use anyhow::{Context, Result, bail};
use futures::future::try_join_all;
use serde_json::json;
use std::cell::Cell;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

/// Settings of one run.
pub struct Settings {
    /// Concurrent clients, one row each.
    pub clients: Vec<usize>,
    /// Length of each measured phase.
    pub phase: Duration,
    /// Lifecycles per second for the paced rows (one client, each row
    /// [`PACED_LIFECYCLES`] long).
    pub paced: Vec<f64>,
}

/// Lifecycles measured in a paced row (enough for a p99 of ten samples).
const PACED_LIFECYCLES: f64 = 1000.0;

/// One row: clients back to back, or one client at a fixed rate.
#[derive(Clone, Copy)]
enum Row {
    Saturated(usize),
    Paced(f64),
}

/// What a row runs against: a plugin, its connections and its network.
struct Target {
    conns: Vec<Conn>,
    net: Network,
}

/// The lifecycle's calls, in the engine's order.
pub(crate) const CALLS: [&str; 6] = [
    "RequestAddress",
    "CreateEndpoint",
    "Join",
    "Leave",
    "DeleteEndpoint",
    "ReleaseAddress",
];

#[derive(Default)]
struct Sample {
    calls: [Latencies; 6],
    whole: Latencies,
    /// Host-side link names Join answered with: a reused link keeps its
    /// name, a new one is named after its endpoint.
    links: std::collections::HashSet<String>,
}

impl Sample {
    fn merge(&mut self, other: Sample) {
        for (mine, theirs) in self.calls.iter_mut().zip(other.calls) {
            mine.extend(theirs);
        }
        self.whole.extend(other.whole);
        self.links.extend(other.links);
    }

    /// The share of Joins answered with a reused link.
    fn reused(&self) -> f64 {
        let joins = self.calls[2].len();
        if joins == 0 {
            return 0.0;
        }
        (joins - self.links.len().min(joins)) as f64 / joins as f64
    }
}

/// A network of the benchmark's (macvlan on `hp0`) and its IPv4 pool.
pub(crate) struct Network {
    id: String,
    pool: String,
}

/// Runs the benchmark and returns its report (markdown); the chart goes to
/// `chart` (an SVG the report links to, relative to `link_base`).
pub async fn run(binary: &Path, s: &Settings, chart: &Path, link_base: &Path) -> Result<String> {
    let ns = netns_with_parent("lc")?;
    let plugin = PluginProcess::start_in(Some(&ns), binary, &[])?;
    // the baseline without reuse: a second instance (a link group of its
    // own) with a network on the same parent
    let plain = PluginProcess::start_in(Some(&ns), binary, &[("LINK_REUSE_MS", "0")])?;
    let max = s.clients.iter().copied().max().unwrap_or(1).max(1);
    let mut targets = [
        Target::open(&plugin, max).await?,
        Target::open(&plain, 1).await?,
    ];
    // each row with whether it runs on the plugin with link reuse
    let mut rows: Vec<(Row, bool)> = Vec::new();
    for &n in &s.clients {
        rows.push((Row::Saturated(n.max(1)), true));
        if n <= 1 {
            rows.push((Row::Saturated(1), false));
        }
    }
    for &r in s.paced.iter().filter(|r| **r > 0.0) {
        rows.push((Row::Paced(r), true));
        rows.push((Row::Paced(r), false));
    }
    let plugins = [&plugin, &plain];
    let ids = Cell::new(0u64);

    let mut t = String::new();
    writeln!(
        t,
        "Endpoint lifecycles on a macvlan network (veth parent in a netns). Rows `N` run N \
         clients back to back for {} s; rows `1 @ R/s` run one client starting a lifecycle every \
         1/R s ({PACED_LIFECYCLES} lifecycles), as an engine does when it is not saturated. \
         Rows marked `no reuse` run on a second plugin started with `LINK_REUSE_MS=0`: every \
         Join creates a link and every DeleteEndpoint deletes one. `reused`: the share of Joins \
         answered with a released link. `plugin CPU`: the plugin's CPU time during the row's \
         lifecycles (all threads, from /proc, in ticks of 10 ms) over their number, in its own \
         code and in the kernel on its behalf. Floor: NetworkDriver.GetCapabilities at the \
         same concurrency.\n",
        s.phase.as_secs_f64()
    )?;
    write!(
        t,
        "| clients | lifecycles/s | lifecycle p50 / p99 | floor p50 / p99 | lifecycle p50 / floor p50 | reused | plugin CPU per lifecycle, user / kernel |"
    )?;
    for c in CALLS {
        write!(t, " {c} p50 / p99 |")?;
    }
    writeln!(t)?;
    writeln!(
        t,
        "|---:|---:|---:|---:|---:|---:|---:{}",
        "|---:".repeat(CALLS.len()) + "|"
    )?;
    let mut verdicts: Vec<(String, Sample)> = Vec::new();
    let (mut p50s, mut p99s, mut floor_p50s) = (Vec::new(), Vec::new(), Vec::new());
    for (row, reuse) in rows {
        let (n, interval, phase) = match row {
            Row::Saturated(n) => (n, None, s.phase),
            Row::Paced(r) => (
                1,
                Some(Duration::from_secs_f64(1.0 / r)),
                Duration::from_secs_f64(PACED_LIFECYCLES / r),
            ),
        };
        let target = &mut targets[usize::from(!reuse)];
        let net = &target.net;
        let conns = &mut target.conns[..n];
        let deadline = Instant::now() + s.phase;
        let floors = try_join_all(
            conns
                .iter_mut()
                .map(|c| floor_loop(c, "/NetworkDriver.GetCapabilities", deadline)),
        )
        .await?;
        let mut floor = Latencies::default();
        floors.into_iter().for_each(|l| floor.extend(l));

        let plugin = plugins[usize::from(!reuse)];
        let cpu0 = plugin.cpu_times()?;
        let t0 = Instant::now();
        let deadline = t0 + phase;
        let samples = try_join_all(
            conns
                .iter_mut()
                .map(|c| lifecycle_loop(c, net, &ids, deadline, interval)),
        )
        .await?;
        let elapsed = t0.elapsed();
        let cpu = plugin.cpu_times()?;
        let mut all = Sample::default();
        samples.into_iter().for_each(|x| all.merge(x));
        let rate = all.whole.len() as f64 / elapsed.as_secs_f64();
        let (w50, w99) = (all.whole.quantile(0.5), all.whole.quantile(0.99));
        let (f50, f99) = (floor.quantile(0.5), floor.quantile(0.99));
        let mut label = match row {
            Row::Saturated(n) => n.to_string(),
            Row::Paced(r) => format!("1 @ {r:.0}/s"),
        };
        if let (Row::Saturated(n), true) = (row, reuse) {
            p50s.push((n as f64, f64::from(w50) / 1000.0));
            p99s.push((n as f64, f64::from(w99) / 1000.0));
            floor_p50s.push((n as f64, f64::from(f50) / 1000.0));
        }
        if !reuse {
            label.push_str(", no reuse");
        }
        let per_lifecycle = |from: Duration, to: Duration| {
            to.saturating_sub(from).as_secs_f64() * 1e6 / all.whole.len().max(1) as f64
        };
        write!(
            t,
            "| {label} | {rate:.0} | {w50} / {w99} us | {f50} / {f99} us | {:.1}x | {:.0} % | {:.0} / {:.0} us |",
            f64::from(w50) / f64::from(f50.max(1)),
            all.reused() * 100.0,
            per_lifecycle(cpu0.0, cpu.0),
            per_lifecycle(cpu0.1, cpu.1),
        )?;
        for l in &mut all.calls {
            write!(t, " {} / {} us |", l.quantile(0.5), l.quantile(0.99))?;
        }
        writeln!(t)?;
        eprintln!("lifecycle: {label}: {rate:.0}/s");
        let first_of_its_kind = !verdicts.iter().any(|(l, _)| *l == label);
        if matches!(row, Row::Saturated(1) | Row::Paced(_)) && first_of_its_kind {
            verdicts.push((label, all));
        }
    }

    // nothing of the run may stay on the host
    for target in &mut targets {
        delete_network(&mut target.conns[0], &target.net).await?;
    }
    let left = ns.links_with_prefix("ivr")?;
    if !left.is_empty() {
        bail!("container links left after DeleteNetwork: {left:?}");
    }
    let series = [
        ("lifecycle p50", p50s),
        ("lifecycle p99", p99s),
        ("floor (GetCapabilities) p50", floor_p50s),
    ]
    .map(|(name, points)| crate::plot::Series {
        name: name.into(),
        points,
    });
    if crate::plot::try_chart(
        chart,
        "Endpoint lifecycle latency vs concurrent clients",
        "concurrent clients",
        "ms",
        &series,
    )
    .is_some()
    {
        let link = chart.strip_prefix(link_base).unwrap_or(chart);
        writeln!(t, "\n![lifecycle latency vs clients]({})", link.display())?;
    }
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    for (label, mut one) in verdicts {
        let (w99, d99) = (one.whole.quantile(0.99), one.calls[4].quantile(0.99));
        let what = match label.as_str() {
            "1" => "one client, back to back".to_string(),
            other => format!("row {other}"),
        };
        writeln!(
            t,
            "\nGoals ({what}): lifecycle p99 <= 2 ms: {} ({w99} us); DeleteEndpoint p99 <= 1 ms: {} ({d99} us).",
            verdict(w99 <= 2000),
            verdict(d99 <= 1000),
        )?;
    }
    Ok(t)
}

impl Target {
    /// `clients` connections to `plugin` and a network of its own.
    async fn open(plugin: &PluginProcess, clients: usize) -> Result<Target> {
        let mut conns = Conn::open_many(&plugin.socket, clients).await?;
        let net = create_network(&mut conns[0]).await?;
        Ok(Target { conns, net })
    }
}

/// Creates a pool and a macvlan network on `hp0`, as `docker network create` does.
pub(crate) async fn create_network(c: &mut Conn) -> Result<Network> {
    let reply = c
        .post(
            "/IpamDriver.RequestPool",
            json!({"AddressSpace": "local", "Pool": "10.88.0.0/16", "Options": {}, "V6": false})
                .to_string(),
        )
        .await?;
    let pool = reply["PoolID"].as_str().context("no PoolID")?.to_string();
    let gw = c
        .post(
            "/IpamDriver.RequestAddress",
            json!({"PoolID": pool, "Address": "",
                   "Options": {"RequestAddressType": "com.docker.network.gateway"}})
            .to_string(),
        )
        .await?;
    let gateway = gw["Address"].as_str().context("no gateway")?.to_string();
    let id = docker_id(u64::MAX);
    c.post(
        "/NetworkDriver.CreateNetwork",
        json!({
            "NetworkID": id,
            "Options": {
                "com.docker.network.enable_ipv4": true,
                "com.docker.network.enable_ipv6": false,
                "com.docker.network.generic": {"parent": "hp0", "kind": "macvlan"}
            },
            "IPv4Data": [{"AddressSpace": "local", "Pool": "10.88.0.0/16", "Gateway": gateway}],
            "IPv6Data": []
        })
        .to_string(),
    )
    .await?;
    Ok(Network { id, pool })
}

/// Deletes the network and its pool.
pub(crate) async fn delete_network(c: &mut Conn, net: &Network) -> Result<()> {
    c.post(
        "/NetworkDriver.DeleteNetwork",
        json!({"NetworkID": net.id}).to_string(),
    )
    .await?;
    c.post(
        "/IpamDriver.ReleasePool",
        json!({"PoolID": net.pool}).to_string(),
    )
    .await?;
    Ok(())
}

async fn lifecycle_loop(
    c: &mut Conn,
    net: &Network,
    ids: &Cell<u64>,
    deadline: Instant,
    interval: Option<Duration>,
) -> Result<Sample> {
    let mut s = Sample::default();
    let mut next = Instant::now();
    while Instant::now() < deadline {
        if let Some(interval) = interval {
            tokio::time::sleep_until(next.into()).await;
            next += interval;
        }
        let n = ids.get();
        ids.set(n + 1);
        let eid = docker_id(n);
        let started = Instant::now();
        let t = Instant::now();
        let (path, body) = request_address(net);
        let reply = c.post(path, body).await?;
        s.calls[0].push(t.elapsed());
        let addr = reply["Address"].as_str().context("no Address")?.to_string();
        for (i, (path, body)) in endpoint_calls(net, &eid, &addr).into_iter().enumerate() {
            let t = Instant::now();
            let reply = c.post(path, body).await?;
            s.calls[i + 1].push(t.elapsed());
            if let Some(link) = reply["InterfaceName"]["SrcName"].as_str() {
                s.links.insert(link.to_string());
            }
        }
        s.whole.push(started.elapsed());
    }
    Ok(s)
}

/// A dynamic RequestAddress in the network's pool: path and body.
pub(crate) fn request_address(net: &Network) -> (&'static str, String) {
    (
        "/IpamDriver.RequestAddress",
        json!({"PoolID": net.pool, "Address": "", "Options": {}}).to_string(),
    )
}

/// The rest of endpoint `eid`'s lifecycle once RequestAddress gave it
/// `addr` (CIDR form), in the engine's order: CreateEndpoint, Join, Leave,
/// DeleteEndpoint, ReleaseAddress (paths and bodies).
pub(crate) fn endpoint_calls(net: &Network, eid: &str, addr: &str) -> [(&'static str, String); 5] {
    let nid = net.id.as_str();
    let ep = json!({"NetworkID": nid, "EndpointID": eid}).to_string();
    [
        (
            "/NetworkDriver.CreateEndpoint",
            json!({"NetworkID": nid, "EndpointID": eid,
                   "Interface": {"Address": addr, "AddressIPv6": "", "MacAddress": ""},
                   "Options": {}})
            .to_string(),
        ),
        (
            "/NetworkDriver.Join",
            json!({"NetworkID": nid, "EndpointID": eid,
                   "SandboxKey": "/var/run/docker/netns/bench", "Options": {}})
            .to_string(),
        ),
        ("/NetworkDriver.Leave", ep.clone()),
        ("/NetworkDriver.DeleteEndpoint", ep),
        (
            "/IpamDriver.ReleaseAddress",
            json!({"PoolID": net.pool, "Address": addr.split('/').next().unwrap_or(addr)})
                .to_string(),
        ),
    ]
}
