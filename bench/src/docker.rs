//! Container start and teardown through a real Docker Engine: `docker run
//! --rm` and `docker rm -f` of a running container on a network of the
//! plugin, against Docker's built-in `macvlan` driver on an identical veth
//! parent and against `--network none`, interleaved (none, built-in, plugin,
//! rotating the order each round) on a private dockerd of each engine.
//!
//! The daemons come from the end-to-end rig (tests/rig/docker): private
//! data-root, exec-root and socket; nothing of a daemon the user runs is
//! touched. The plugin is created from this tree's bundle.

use crate::harness::{Latencies, ip, median};
use anyhow::{Context, Result, bail};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

/// Settings of one run.
pub struct Settings {
    /// Engines to measure ("20", "28").
    pub engines: Vec<String>,
    /// Rounds (each round measures every network once per operation).
    pub rounds: usize,
    /// Repository root (for the rig scripts and the bundle).
    pub root: PathBuf,
}

const NETS: [&str; 3] = ["none", "builtin", "plugin"];
/// The plugin's log target for "answered elapsed_us=N" lines.
const TIMING: &str = "ipvlan_rs::timing";
/// Calls whose handling time the report gives.
pub(crate) const TIMED_CALLS: [&str; 3] = ["CreateEndpoint", "Join", "DeleteEndpoint"];

/// What one engine's run measured.
struct EngineRun {
    /// (operation, [none, builtin, plugin medians, plugin/builtin, plugin/none])
    rows: Vec<(String, [f64; 5])>,
    /// Per call of [`TIMED_CALLS`]: the plugin's handling times (us).
    calls: Vec<Latencies>,
}

/// A private dockerd of the rig.
pub(crate) struct Engine<'a> {
    /// The daemon's name (its log is `<LOG_DIR>/<name>.log`).
    pub(crate) name: String,
    /// Its DOCKER_HOST.
    pub(crate) host: String,
    /// Repository root.
    pub(crate) root: &'a Path,
}

impl Engine<'_> {
    /// Runs `docker ARGS` against this daemon; an error carries its stderr.
    pub(crate) fn docker(&self, args: &[&str]) -> Result<Output> {
        let out = Command::new("docker")
            .env("DOCKER_HOST", &self.host)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .context("running docker")?;
        if !out.status.success() {
            bail!(
                "docker {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(out)
    }

    /// Runs a script of tests/rig/docker.
    pub(crate) fn rig(&self, script: &str, args: &[&str], env: &[(&str, &str)]) -> Result<String> {
        let mut cmd = Command::new(self.root.join("tests/rig/docker").join(script));
        cmd.args(args).stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().with_context(|| format!("running {script}"))?;
        if !out.status.success() {
            bail!(
                "{script} {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// Runs the benchmark and returns its report (markdown).
pub fn run(s: &Settings) -> Result<String> {
    let mut t = String::new();
    writeln!(
        t,
        "{} rounds per engine; each round runs every case once, in a rotating order. \
         `docker run --rm NET bb true` = create, start, exit, teardown; `docker rm -f` = \
         teardown of a running `sleep` container. Milliseconds, medians; \"plugin / \
         built-in\" is the median of the per-round ratios.\n",
        s.rounds
    )?;
    writeln!(
        t,
        "| engine | operation | --network none | built-in macvlan | ipvlan-rs (macvlan) | plugin / built-in | plugin / none |"
    )?;
    writeln!(t, "|---|---|---:|---:|---:|---:|---:|")?;
    let mut calls = Vec::new();
    for (e, bin, version) in engines(s)? {
        let run = run_engine(s, &e, &bin)?;
        calls.push((version.clone(), run.calls));
        for (op, cols) in run.rows {
            writeln!(
                t,
                "| {} | {op} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} |",
                version, cols[0], cols[1], cols[2], cols[3], cols[4],
            )?;
        }
    }
    writeln!(
        t,
        "\nGoal: `docker run --rm` plugin / built-in <= 1.00 (median of pair ratios).\n"
    )?;
    writeln!(
        t,
        "The plugin's own handling time for the calls of those containers (measured rounds \
         only), from its log (`LOG_LEVEL=info,{TIMING}=debug`): request read to response \
         ready, without the socket hop. Microseconds.\n"
    )?;
    write!(t, "| engine |")?;
    for c in TIMED_CALLS {
        write!(t, " {c} p50 / p99 / max (n) |")?;
    }
    writeln!(t, "\n|---|{}", "---:|".repeat(TIMED_CALLS.len()))?;
    let mut verdicts = Vec::new();
    for (version, mut lats) in calls {
        write!(t, "| {version} |")?;
        for l in &mut lats {
            let (p50, p99, max) = (l.quantile(0.5), l.quantile(0.99), l.quantile(1.0));
            write!(t, " {p50} / {p99} / {max} ({}) |", l.len())?;
        }
        writeln!(t)?;
        let d99 = lats[2].quantile(0.99);
        verdicts.push(format!(
            "{version}: {} ({d99} us)",
            if lats[2].len() > 0 && d99 <= 1000 {
                "met"
            } else {
                "NOT met"
            }
        ));
    }
    writeln!(
        t,
        "\nGoal: DeleteEndpoint p99 <= 1 ms: {}.",
        verdicts.join("; ")
    )?;
    Ok(t)
}

/// The plugin's handling times per call of [`TIMED_CALLS`], from the
/// daemon's log after byte offset `from`: dockerd relays each plugin line,
/// e.g. `msg="... DEBUG call{call=\"DeleteEndpoint\" ...}:
/// ipvlan_rs::timing: answered elapsed_us=412 ok=true" plugin=...`.
/// With `network`, only the calls on that network (the span's field).
pub(crate) fn call_times(log: &Path, from: u64, network: Option<&str>) -> Result<Vec<Latencies>> {
    let text = std::fs::read(log).with_context(|| format!("read {}", log.display()))?;
    let text = String::from_utf8_lossy(text.get(from as usize..).unwrap_or_default());
    let mut calls: Vec<Latencies> = TIMED_CALLS.iter().map(|_| Latencies::default()).collect();
    for line in text
        .lines()
        .filter(|l| l.contains(TIMING))
        .filter(|l| network.is_none_or(|n| l.contains(n)))
    {
        // the span field: call="X", escaped by dockerd as call=\"X\"
        let Some(call) = line.split("call=").nth(1).map(|r| {
            r.trim_start_matches(['\\', '"'])
                .split(|c: char| !c.is_ascii_alphanumeric())
                .next()
                .unwrap_or_default()
        }) else {
            continue;
        };
        let Some(i) = TIMED_CALLS.iter().position(|c| *c == call) else {
            continue;
        };
        let us = line
            .split("elapsed_us=")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(us) = us {
            calls[i].push(std::time::Duration::from_micros(us));
        }
    }
    Ok(calls)
}

fn run_engine(s: &Settings, e: &str, bin: &str) -> Result<EngineRun> {
    with_engine(s, e, bin, &["irsbp", "irsbb"], measure)
}

/// Starts a private dockerd `bench<e>` of engine `e` (binaries in `bin`),
/// runs `measure` against it, and stops it and deletes the `veths`, whatever
/// `measure` returned.
pub(crate) fn with_engine<T>(
    s: &Settings,
    e: &str,
    bin: &str,
    veths: &[&str],
    measure: impl FnOnce(&Settings, &Engine) -> Result<T>,
) -> Result<T> {
    let name = format!("bench{e}");
    let root = s.root.as_path();
    let path = format!("{bin}:{}", std::env::var("PATH").unwrap_or_default());
    let mut engine = Engine {
        name: name.clone(),
        host: String::new(),
        root,
    };
    let started = engine.rig("dockerd-start.sh", &[&name, e], &[("PATH", &path)])?;
    engine.host = started
        .lines()
        .find_map(|l| l.strip_prefix("DOCKER_HOST="))
        .context("dockerd-start.sh printed no DOCKER_HOST")?
        .to_string();
    let result = measure(s, &engine);
    // always clean up: containers, networks, the daemon, the veths
    let _ = engine.rig("dockerd-stop.sh", &[&engine.name], &[]);
    for p in veths {
        let _ = ip(&["link", "del", p]);
    }
    result
}

/// The engines the rig installs: (engine, its bin dir, its version).
pub(crate) fn engines(s: &Settings) -> Result<Vec<(String, String, String)>> {
    let engines = Command::new(s.root.join("tests/rig/docker/install-engines.sh"))
        .stderr(Stdio::null())
        .output()
        .context("install-engines.sh")?;
    let vars = String::from_utf8_lossy(&engines.stdout).into_owned();
    let var = |k: &str| {
        vars.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(|v| v.trim_matches('\'').to_string())
    };
    s.engines
        .iter()
        .map(|e| {
            let bin = var(&format!("ENGINE_{e}_BIN_DIR")).with_context(|| format!("engine {e}"))?;
            let version = var(&format!("ENGINE_{e}_VERSION")).unwrap_or_default();
            let version = version.split(',').next().unwrap_or(e).to_string();
            Ok((e.clone(), bin, version))
        })
        .collect()
}

/// Creates this tree's plugin as `bench/ipvlan-rs:latest` with each call's
/// handling time in the daemon's log (see [`call_times`]) and enables it.
pub(crate) fn create_plugin(e: &Engine) -> Result<&'static str> {
    let plugin = "bench/ipvlan-rs:latest";
    let make = Command::new("make")
        .current_dir(e.root)
        .args(["-s", "create", "PLUGIN_NAME=bench/ipvlan-rs"])
        .env("DOCKER_HOST", &e.host)
        .output()?;
    if !make.status.success() {
        bail!(
            "make create: {}",
            String::from_utf8_lossy(&make.stderr).trim()
        );
    }
    e.docker(&[
        "plugin",
        "set",
        plugin,
        &format!("LOG_LEVEL=info,{TIMING}=debug"),
    ])?;
    e.docker(&["plugin", "enable", plugin])?;
    Ok(plugin)
}

/// A veth pair `name` / `name`x, both up.
pub(crate) fn veth(name: &str) -> Result<()> {
    let _ = ip(&["link", "del", name]);
    ip(&[
        "link",
        "add",
        name,
        "type",
        "veth",
        "peer",
        "name",
        &format!("{name}x"),
    ])?;
    ip(&["link", "set", name, "up"])?;
    ip(&["link", "set", &format!("{name}x"), "up"])?;
    Ok(())
}

/// `docker network create -d DRIVER --ipam-driver IPAM EXTRA... -o
/// parent=PARENT -o kind=macvlan NAME`.
pub(crate) fn macvlan_network(
    e: &Engine,
    driver: &str,
    ipam: &str,
    parent: &str,
    extra: &[&str],
    name: &str,
) -> Result<()> {
    let parent = format!("parent={parent}");
    let mut args = vec!["network", "create", "-d", driver, "--ipam-driver", ipam];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-o", &parent, "-o", "kind=macvlan", name]);
    e.docker(&args)?;
    Ok(())
}

/// The daemon's log and its current length (where a measurement starts).
pub(crate) fn log_mark(e: &Engine) -> (PathBuf, u64) {
    let log = PathBuf::from(
        std::env::var("LOG_DIR").unwrap_or_else(|_| "/var/log/ipvlan-rs-test".into()),
    )
    .join(format!("{}.log", e.name));
    let from = std::fs::metadata(&log).map_or(0, |m| m.len());
    (log, from)
}

fn measure(s: &Settings, e: &Engine) -> Result<EngineRun> {
    e.rig("busybox-image.sh", &[], &[("DOCKER_HOST", &e.host)])?;
    for p in ["irsbp", "irsbb"] {
        veth(p)?;
    }
    let plugin = create_plugin(e)?;
    macvlan_network(
        e,
        plugin,
        plugin,
        "irsbp",
        &["--subnet", "10.230.0.0/16"],
        "plugin",
    )?;
    e.docker(&[
        "network",
        "create",
        "-d",
        "macvlan",
        "--subnet",
        "10.231.0.0/16",
        "-o",
        "parent=irsbb",
        "builtin",
    ])?;
    let run_rm = |net: &str| -> Result<f64> {
        let t = Instant::now();
        e.docker(&["run", "--rm", "--network", net, "bb:latest", "true"])?;
        Ok(t.elapsed().as_secs_f64() * 1000.0)
    };
    let rm_f = |net: &str| -> Result<f64> {
        let out = e.docker(&[
            "run",
            "-d",
            "--init",
            "--network",
            net,
            "bb:latest",
            "sleep",
            "600",
        ])?;
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let t = Instant::now();
        e.docker(&["rm", "-f", &id])?;
        Ok(t.elapsed().as_secs_f64() * 1000.0)
    };
    // warm-up: image layers, plugin connections, first-use paths
    for net in NETS {
        for _ in 0..3 {
            run_rm(net)?;
        }
    }
    let (log, log_from) = log_mark(e);
    let mut rows = Vec::new();
    for (op, f) in [
        ("docker run --rm", &run_rm as &dyn Fn(&str) -> Result<f64>),
        ("docker rm -f", &rm_f),
    ] {
        let mut times: [Vec<f64>; 3] = Default::default();
        for round in 0..s.rounds {
            for k in 0..3 {
                let i = (k + round) % 3;
                times[i].push(f(NETS[i])?);
            }
        }
        let mut pb: Vec<f64> = times[2].iter().zip(&times[1]).map(|(p, b)| p / b).collect();
        let mut pn: Vec<f64> = times[2].iter().zip(&times[0]).map(|(p, n)| p / n).collect();
        let cols = [
            median(&mut times[0].clone()),
            median(&mut times[1].clone()),
            median(&mut times[2].clone()),
            median(&mut pb),
            median(&mut pn),
        ];
        eprintln!(
            "docker {}: {op}: none {:.0} ms, built-in {:.0} ms, plugin {:.0} ms",
            e.name, cols[0], cols[1], cols[2]
        );
        rows.push((op.to_string(), cols));
    }
    // dockerd relays plugin output asynchronously
    std::thread::sleep(std::time::Duration::from_millis(500));
    Ok(EngineRun {
        rows,
        calls: call_times(&log, log_from, None)?,
    })
}
