//! `docker run --rm` on a `dhcp=on` network of the plugin against the same
//! on a static network of the plugin (its own IPAM), on twin veth parents,
//! interleaved, on a private dockerd of each engine. Beyond the DHCP
//! network's parent, Debian's dnsmasq serves in a namespace of its own
//! (2-minute leases; `--no-ping`, so the server adds no wait of its own).
//! Where the time goes: the plugin's CreateEndpoint handling time on each
//! network, from its log; on the DHCP network that is the exchange (two
//! round trips to the server) plus the ARP probe of the offered address.

use crate::docker::{
    Engine, Settings, TIMED_CALLS, call_times, create_plugin, engines, log_mark, macvlan_network,
    veth, with_engine,
};
use crate::harness::{ip, median};
use anyhow::{Context, Result, bail};
use std::fmt::Write as _;
use std::process::Command;
use std::time::Instant;

const NS: &str = "irsbdhcp";
const STATIC_PARENT: &str = "irsbs";
const DHCP_PARENT: &str = "irsbd";
const PID: &str = "/run/ipvlan-rs-bench-dnsmasq.pid";

/// One engine's medians: static ms, DHCP ms, ratio, CreateEndpoint p50 us
/// on each.
struct Row {
    static_ms: f64,
    dhcp_ms: f64,
    ratio: f64,
    create_static_us: u32,
    create_dhcp_us: u32,
}

/// Runs the benchmark and returns its report (markdown).
pub fn run(s: &Settings) -> Result<String> {
    let mut t = String::new();
    writeln!(
        t,
        "{} rounds per engine, each running both cases once in a rotating order. \
         `docker run --rm NET bb true` = create, start, exit, teardown (DHCP: lease, \
         ARP probe of 200 ms, release). Milliseconds, medians; the ratio is the median of \
         the per-round ratios. CreateEndpoint: the plugin's handling time (p50, us).\n",
        s.rounds
    )?;
    writeln!(
        t,
        "| engine | static (plugin IPAM) | dhcp=on (dnsmasq) | dhcp / static | CreateEndpoint static | CreateEndpoint dhcp |"
    )?;
    writeln!(t, "|---|---:|---:|---:|---:|---:|")?;
    for (e, bin, version) in engines(s)? {
        let row = with_engine(s, &e, &bin, &[STATIC_PARENT, DHCP_PARENT], measure)?;
        writeln!(
            t,
            "| {version} | {:.0} | {:.0} | {:.2} | {} | {} |",
            row.static_ms, row.dhcp_ms, row.ratio, row.create_static_us, row.create_dhcp_us
        )?;
    }
    Ok(t)
}

fn measure(s: &Settings, e: &Engine) -> Result<Row> {
    let server = start_server();
    let row = server.and_then(|()| measure_on(s, e));
    stop_server();
    row
}

fn start_server() -> Result<()> {
    let _ = ip(&["netns", "del", NS]);
    veth(STATIC_PARENT)?;
    veth(DHCP_PARENT)?;
    let peer = format!("{DHCP_PARENT}x");
    ip(&["netns", "add", NS])?;
    ip(&["link", "set", &peer, "netns", NS])?;
    ip(&["-n", NS, "link", "set", &peer, "up"])?;
    ip(&["-n", NS, "addr", "add", "10.232.0.1/16", "dev", &peer])?;
    let _ = std::fs::remove_file(PID);
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            NS,
            "dnsmasq",
            "--conf-file=/dev/null",
            "--port=0",
        ])
        .args(["--user=root", "--bind-interfaces", "--no-ping"])
        .arg(format!("--interface={peer}"))
        .args(["--dhcp-range=10.232.1.0,10.232.200.255,255.255.0.0,2m"])
        .args(["--dhcp-option=3,10.232.0.1", "--dhcp-authoritative"])
        .args(["--dhcp-leasefile=/run/ipvlan-rs-bench-dnsmasq.leases"])
        .arg(format!("--pid-file={PID}"))
        .output()
        .context("starting dnsmasq (apt-get install dnsmasq-base)")?;
    if !out.status.success() {
        bail!("dnsmasq: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

fn stop_server() {
    if let Ok(pid) = std::fs::read_to_string(PID) {
        let _ = Command::new("kill").arg(pid.trim()).status();
    }
    let _ = ip(&["netns", "del", NS]);
    let _ = std::fs::remove_file("/run/ipvlan-rs-bench-dnsmasq.leases");
}

fn network_id(e: &Engine, name: &str) -> Result<String> {
    let out = e.docker(&["network", "inspect", "-f", "{{.Id}}", name])?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn measure_on(s: &Settings, e: &Engine) -> Result<Row> {
    e.rig("busybox-image.sh", &[], &[("DOCKER_HOST", &e.host)])?;
    let plugin = create_plugin(e)?;
    let subnet = ["--subnet", "10.233.0.0/16"];
    macvlan_network(e, plugin, plugin, STATIC_PARENT, &subnet, "static")?;
    macvlan_network(e, plugin, "null", DHCP_PARENT, &["-o", "dhcp=on"], "dhcp")?;
    let nets = ["static", "dhcp"];
    let run_rm = |net: &str| -> Result<f64> {
        let t = Instant::now();
        e.docker(&["run", "--rm", "--network", net, "bb:latest", "true"])?;
        Ok(t.elapsed().as_secs_f64() * 1000.0)
    };
    for net in nets {
        for _ in 0..3 {
            run_rm(net)?;
        }
    }
    let (log, from) = log_mark(e);
    let mut times: [Vec<f64>; 2] = Default::default();
    for round in 0..s.rounds {
        for k in 0..2 {
            let i = (k + round) % 2;
            times[i].push(run_rm(nets[i])?);
        }
    }
    let mut ratios: Vec<f64> = times[1]
        .iter()
        .zip(&times[0])
        .map(|(d, st)| d / st)
        .collect();
    // dockerd relays plugin output asynchronously
    std::thread::sleep(std::time::Duration::from_millis(500));
    let create = TIMED_CALLS
        .iter()
        .position(|c| *c == "CreateEndpoint")
        .context("CreateEndpoint timed")?;
    let p50 = |net: &str| -> Result<u32> {
        let id = network_id(e, net)?;
        let mut calls = call_times(&log, from, Some(&id))?;
        Ok(calls[create].quantile(0.5))
    };
    let (create_static_us, create_dhcp_us) = (p50("static")?, p50("dhcp")?);
    let row = Row {
        static_ms: median(&mut times[0].clone()),
        dhcp_ms: median(&mut times[1].clone()),
        ratio: median(&mut ratios),
        create_static_us,
        create_dhcp_us,
    };
    eprintln!(
        "dhcp {}: static {:.0} ms, dhcp {:.0} ms",
        e.name, row.static_ms, row.dhcp_ms
    );
    Ok(row)
}
