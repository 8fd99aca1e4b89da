//! Container start and teardown through a real Docker Engine: `docker run
//! --rm` and `docker rm -f` of a running container on a network of the
//! plugin, against Docker's built-in `macvlan` driver on an identical veth
//! parent and against `--network none`, interleaved (none, built-in, plugin,
//! rotating the order each round) on a private dockerd of each engine.
//!
//! The daemons come from the end-to-end rig (tests/rig/docker): private
//! data-root, exec-root and socket; nothing of a daemon the user runs is
//! touched. The plugin is created from this tree's bundle.

use crate::harness::ip;
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

struct Engine<'a> {
    name: String,
    host: String,
    root: &'a Path,
}

impl Engine<'_> {
    fn docker(&self, args: &[&str]) -> Result<Output> {
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

    fn rig(&self, script: &str, args: &[&str], env: &[(&str, &str)]) -> Result<String> {
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

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs the benchmark and returns its report (markdown).
pub fn run(s: &Settings) -> Result<String> {
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
    for e in &s.engines {
        let bin = var(&format!("ENGINE_{e}_BIN_DIR")).with_context(|| format!("engine {e}"))?;
        let version = var(&format!("ENGINE_{e}_VERSION")).unwrap_or_default();
        let rows = run_engine(s, e, &bin)?;
        for (op, cols) in rows {
            writeln!(
                t,
                "| {} | {op} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} |",
                version.split(',').next().unwrap_or(e),
                cols[0],
                cols[1],
                cols[2],
                cols[3],
                cols[4],
            )?;
        }
    }
    writeln!(
        t,
        "\nGoal: `docker run --rm` plugin / built-in <= 1.00 (median of pair ratios)."
    )?;
    Ok(t)
}

/// Rows of (operation, [none, builtin, plugin medians, plugin/builtin, plugin/none]).
fn run_engine(s: &Settings, e: &str, bin: &str) -> Result<Vec<(String, [f64; 5])>> {
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
    for p in ["irsbp", "irsbb"] {
        let _ = ip(&["link", "del", p]);
    }
    result
}

fn measure(s: &Settings, e: &Engine) -> Result<Vec<(String, [f64; 5])>> {
    e.rig("busybox-image.sh", &[], &[("DOCKER_HOST", &e.host)])?;
    for p in ["irsbp", "irsbb"] {
        let _ = ip(&["link", "del", p]);
        ip(&[
            "link",
            "add",
            p,
            "type",
            "veth",
            "peer",
            "name",
            &format!("{p}x"),
        ])?;
        ip(&["link", "set", p, "up"])?;
        ip(&["link", "set", &format!("{p}x"), "up"])?;
    }
    let plugin = "bench/ipvlan-rs:latest";
    let make = Command::new("make")
        .current_dir(e.root)
        .args(["-s", "create", "enable", "PLUGIN_NAME=bench/ipvlan-rs"])
        .env("DOCKER_HOST", &e.host)
        .output()?;
    if !make.status.success() {
        bail!(
            "make create enable: {}",
            String::from_utf8_lossy(&make.stderr).trim()
        );
    }
    e.docker(&[
        "network",
        "create",
        "-d",
        plugin,
        "--ipam-driver",
        plugin,
        "--subnet",
        "10.230.0.0/16",
        "-o",
        "parent=irsbp",
        "-o",
        "kind=macvlan",
        "plugin",
    ])?;
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
    Ok(rows)
}
