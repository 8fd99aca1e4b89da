//! What every benchmark needs beyond the test kit (`testkit`: namespaces,
//! the plugin process, keep-alive connections): the plugin measured (RSS,
//! CPU time, state on disk) on a state dir on disk, latency sets, and the
//! record in BENCHMARKS.md.

use anyhow::{Context, Result};
use std::ops::Deref;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
pub use testkit::{Conn, NetNs, docker_id, ip};

/// The plugin under test: the kit's plugin process ([`testkit::Plugin`])
/// on a private socket and a state dir on disk, so that commits pay a
/// real fdatasync (see [`scratch_dir`]).
pub struct PluginProcess {
    plugin: testkit::Plugin,
}

impl Deref for PluginProcess {
    type Target = testkit::Plugin;

    fn deref(&self) -> &testkit::Plugin {
        &self.plugin
    }
}

impl PluginProcess {
    /// Starts `binary` with extra environment and waits for its socket.
    pub fn start(binary: &Path, env: &[(&str, &str)]) -> Result<PluginProcess> {
        PluginProcess::start_in(None, binary, env)
    }

    /// Like [`PluginProcess::start`], inside network namespace `netns`.
    pub fn start_in(
        netns: Option<&NetNs>,
        binary: &Path,
        env: &[(&str, &str)],
    ) -> Result<PluginProcess> {
        PluginProcess::start_wrapped(netns, &[], binary, env)
    }

    /// Like [`PluginProcess::start_in`], run through `wrapper` (a program
    /// and its arguments that execs `binary` in the same process, such as
    /// valgrind). Logs go to the benchmark's stderr at `BENCH_LOG`'s level
    /// (default warn).
    pub fn start_wrapped(
        netns: Option<&NetNs>,
        wrapper: &[String],
        binary: &Path,
        env: &[(&str, &str)],
    ) -> Result<PluginProcess> {
        let log_level = std::env::var("BENCH_LOG").unwrap_or_else(|_| "warn".into());
        let plugin = testkit::Launch::new(binary)
            .netns(netns.map(|ns| ns.name.as_str()))
            .wrapper(wrapper)
            .log_level(&log_level)
            .env(env)
            .start_in(scratch_dir()?)?;
        Ok(PluginProcess { plugin })
    }

    /// Resident set size in bytes (VmRSS).
    pub fn rss(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .context("no VmRSS")?;
        Ok(kib * 1024)
    }

    /// CPU time (user + system, all threads) the plugin has used so far.
    pub fn cpu_time(&self) -> Result<Duration> {
        let (user, system) = self.cpu_times()?;
        Ok(user + system)
    }

    /// CPU time the plugin has used so far (all threads), in user space
    /// (its own code) and in the kernel (its syscalls: netlink, the disk).
    pub fn cpu_times(&self) -> Result<(Duration, Duration)> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))?;
        // fields after the parenthesised command name; utime and stime are 14 and 15
        let rest = stat.rsplit_once(')').map(|(_, r)| r).context("bad stat")?;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let hz = nix_clock_ticks();
        let time = |t: u64| Duration::from_micros(t * 1_000_000 / hz);
        Ok((time(ticks(11)), time(ticks(12))))
    }

    /// Bytes of state files on disk.
    pub fn state_bytes(&self) -> u64 {
        std::fs::read_dir(&self.state_dir)
            .map(|d| {
                d.filter_map(|e| e.ok()?.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }
}

/// A temporary directory for state files, on disk: /var/tmp, not /tmp,
/// where a tmpfs would make fdatasync free.
pub fn scratch_dir() -> Result<tempfile::TempDir> {
    // BENCH_DIR=/dev/shm takes the disk out of a run, to see what is left.
    let base = std::env::var("BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into());
    tempfile::Builder::new()
        .prefix("ipvlan-rs-bench.")
        .tempdir_in(&base)
        .with_context(|| format!("temp dir in {base}"))
}

/// A network namespace of the benchmark's own with an up veth parent
/// `hp0` (peer `hp0p`), deleted with everything in it on drop.
pub fn netns_with_parent(tag: &str) -> Result<NetNs> {
    let ns = NetNs::new(tag)?;
    ns.add_veth_parent("hp0")?;
    Ok(ns)
}

/// USER_HZ, the unit of /proc/PID/stat times.
fn nix_clock_ticks() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|v| u64::try_from(v).ok())
        .filter(|v| *v > 0)
        .unwrap_or(100)
}

/// The transport's floor: `path` (a GetCapabilities, which touches no
/// state) posted back to back on `c` until `deadline`.
pub async fn floor_loop(c: &mut Conn, path: &str, deadline: Instant) -> Result<Latencies> {
    let mut l = Latencies::default();
    while Instant::now() < deadline {
        let t = Instant::now();
        c.post(path, String::new()).await?;
        l.push(t.elapsed());
    }
    Ok(l)
}

/// Latencies of one kind of request, in microseconds.
#[derive(Default, Clone)]
pub struct Latencies(Vec<u32>);

impl Latencies {
    /// Records one sample.
    pub fn push(&mut self, d: Duration) {
        self.0
            .push(u32::try_from(d.as_micros()).unwrap_or(u32::MAX));
    }

    /// Adds another set.
    pub fn extend(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The `q` quantile (0..=1) in microseconds; 0 when empty.
    pub fn quantile(&mut self, q: f64) -> u32 {
        if self.0.is_empty() {
            return 0;
        }
        self.0.sort_unstable();
        let i = ((self.0.len() - 1) as f64 * q).round() as usize;
        self.0[i.min(self.0.len() - 1)]
    }
}

/// The median of `v` (the mean of the middle two when their number is
/// even; NaN when empty), sorting `v`.
pub fn median(v: &mut [f64]) -> f64 {
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

/// Replaces the text between `<!-- NAME:begin -->` and `<!-- NAME:end -->`
/// in `file` (appending the section when absent), so BENCHMARKS.md carries
/// the numbers a run printed and nothing typed by hand.
pub fn record_section(file: &Path, name: &str, text: &str) -> Result<()> {
    let begin = format!("<!-- {name}:begin -->");
    let end = format!("<!-- {name}:end -->");
    let old = std::fs::read_to_string(file).unwrap_or_default();
    let section = format!("{begin}\n{}\n{end}", text.trim_end());
    let new = match (old.find(&begin), old.find(&end)) {
        (Some(b), Some(e)) if e > b => {
            format!("{}{section}{}", &old[..b], &old[e + end.len()..])
        }
        _ => format!("{}\n{section}\n", old.trim_end()),
    };
    std::fs::write(file, new).with_context(|| format!("write {}", file.display()))
}

/// A one-line description of the machine and the run, for the record.
pub fn machine_line() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let date = Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d %H:%M UTC")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!(
        "{date}; {cores} cores ({cpu}); kernel {}; {}{}; ipvlan-rs {}",
        kernel.trim(),
        idle_line(),
        nice_note(),
        env!("CARGO_PKG_VERSION")
    )
}

/// The 1-minute load average (`/proc/loadavg`; 0 when unreadable): how
/// much else the machine ran around a measurement.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// "; bench at nice N" when the benchmark ran at a nice value other than 0
/// (its threads, the store's among them, then win the CPU over other work
/// more often than a plugin would).
fn nice_note() -> String {
    // /proc/self/stat: the nice value is the 17th field after the name
    let nice = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.to_string();
            rest.split_whitespace().nth(16)?.parse::<i32>().ok()
        })
        .unwrap_or(0);
    if nice == 0 {
        String::new()
    } else {
        format!("; bench at nice {nice}")
    }
}

/// The CPU idle driver, and in a VM guest the halt-polling window: on a
/// guest that halts at once, every wake-up of an idle vCPU is a VM exit,
/// which moved the one-client lifecycle's p50 by ~25 % (BENCHMARKS.md).
fn idle_line() -> String {
    let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_string());
    let driver =
        read("/sys/devices/system/cpu/cpuidle/current_driver").unwrap_or_else(|_| "none".into());
    match read("/sys/module/haltpoll/parameters/guest_halt_poll_ns") {
        Ok(ns) => format!("cpuidle {driver}, guest_halt_poll_ns {ns}"),
        Err(_) => format!("cpuidle {driver}"),
    }
}
