//! The host side: makes the disk, boots the VM rig again and again on it
//! (`tests/rig/vm/run.sh` with the disk, the plugin, the plan and a second
//! serial port), reads the guest's acknowledgements as they leave it, cuts
//! the power at the planned moment (SIGKILL to qemu, or the guest's own
//! sysrq reset), and carries the acknowledged state from boot to boot.

use crate::ack_lines::AckLines;
use crate::channel::{Cut, Line, PLAN_PATH, PLUGIN_PATH, Plan, SLOW_DISK_IOPS};
use crate::model::{Model, Outcome, Rng};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Modules the guest needs: the dummy parents the driver creates, the link
/// kind of its networks (CreateNetwork checks the kernel can make it), the
/// disk, and the file system (the rig fails on a module the kernel lacks;
/// ext4 is built in, which it accepts).
pub(crate) fn modules(fs: &str) -> String {
    format!("dummy ipvlan virtio_pci virtio_blk {fs}")
}
/// Size of the disk image (xfs wants at least 300 MiB).
const DISK_BYTES: u64 = 320 << 20;
/// After the VM is gone, how long the channel may stay quiet before all of
/// its bytes are taken as read (they are in the FIFO already).
const DRAIN_QUIET: Duration = Duration::from_millis(300);

/// What every host role needs: where the VM boots and what it runs.
#[derive(Default)]
pub struct Setup {
    /// ext4 or xfs.
    pub fs: String,
    /// The static plugin binary.
    pub plugin: PathBuf,
    /// Scratch directory (disk images, FIFO, plans, logs, history).
    pub work: PathBuf,
    /// The rig's run.sh.
    pub rig: PathBuf,
}

impl Setup {
    /// Takes `--fs`, `--plugin`, `--work` or `--rig`; false for other flags.
    pub fn set(&mut self, flag: &str, value: &str) -> bool {
        match flag {
            "--fs" => self.fs = value.to_string(),
            "--plugin" => self.plugin = value.into(),
            "--work" => self.work = value.into(),
            "--rig" => self.rig = value.into(),
            _ => return false,
        }
        true
    }

    /// All four were given.
    pub fn complete(&self) -> bool {
        !(self.fs.is_empty()
            || self.plugin.as_os_str().is_empty()
            || self.work.as_os_str().is_empty()
            || self.rig.as_os_str().is_empty())
    }

    /// run.sh booting this program as `role`, with the plugin and the plan
    /// file in the guest; the caller adds disks and the rest of the env.
    pub fn boot(&self, guest: &Path, role: &str, plan: &Path) -> Command {
        let mut cmd = Command::new(&self.rig);
        cmd.arg(guest).arg(role).env(
            "VM_FILES",
            format!(
                "{}:{PLUGIN_PATH} {}:{PLAN_PATH}",
                self.plugin.display(),
                plan.display()
            ),
        );
        cmd
    }
}

/// Settings of one run (one file system).
pub struct Opts {
    /// File system, plugin, rig, scratch directory.
    pub setup: Setup,
    /// Power cuts to make.
    pub cuts: u64,
    /// Cuts per fresh disk (the first of them during the plugin's first start).
    pub per_disk: u64,
    /// Seed of the cut moments (each boot's load gets its own from it).
    pub seed: u64,
    /// Only this kind of cut after the first start (to look into one).
    pub only: Option<CutKind>,
}

/// The kinds of cut after a first start (see [`Cut`]).
#[derive(Clone, Copy, Debug)]
pub enum CutKind {
    /// [`Cut::HostAfterAcks`].
    Acks,
    /// [`Cut::HostAfterDupAck`].
    Dup,
    /// [`Cut::GuestSysrq`].
    Sysrq,
}

#[derive(Default)]
struct Totals {
    host_kills: u64,
    sysrq: u64,
    on_dup: u64,
    first_start: u64,
    acked: u64,
    facts: u64,
    in_flight_applied: u64,
    in_flight_not: u64,
}

/// Runs every cut; `Err` says what failed (a finding with its sequence, or
/// a rig that could not run).
pub fn run(o: &Opts) -> Result<(), String> {
    let t0 = Instant::now();
    std::fs::create_dir_all(&o.setup.work)
        .map_err(|e| format!("{}: {e}", o.setup.work.display()))?;
    let guest = std::env::current_exe().map_err(|e| e.to_string())?;
    for f in [&o.setup.plugin, &o.setup.rig] {
        if !f.is_file() {
            return Err(format!("{} is missing", f.display()));
        }
    }
    let template = o.setup.work.join("template.img");
    make_fs(&o.setup.fs, &template)?;
    let disk = o.setup.work.join("disk.img");
    let fifo = o.setup.work.join("ack.fifo");
    let _ = std::fs::remove_file(&fifo);
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(|e| format!("mkfifo {}: {e}", fifo.display()))?;
    let mut lines = AckLines::open(&fifo)?;
    let history_path = o.setup.work.join("history.log");
    let mut history = std::fs::File::create(&history_path).map_err(|e| e.to_string())?;

    // the same seed gives each file system its own sequence
    let mut rng = Rng(o.seed
        ^ o.setup
            .fs
            .bytes()
            .fold(0u64, |h, b| h.rotate_left(8) ^ u64::from(b)));
    let mut model = Model::default();
    let mut totals = Totals::default();
    // how long a first start takes until the plugin serves (measured by
    // the guest; the cut moment is drawn from up to a little beyond it)
    let mut first_start_ms = 600u64;
    let mut last_cut: Option<Cut> = None;
    for boot in 0..=o.cuts {
        let fresh = boot % o.per_disk == 0 && boot < o.cuts;
        if fresh {
            copy_sparse(&template, &disk)?;
            model = Model::default();
        }
        let cut = if boot == o.cuts {
            Cut::None
        } else if fresh {
            Cut::HostAfterStart {
                ms: rng.below(first_start_ms * 6 / 5 + 1),
            }
        } else {
            // a quarter each: sysrq, after a duplicate's answer; half after N acks
            let kind = o.only.unwrap_or_else(|| match rng.below(4) {
                0 => CutKind::Sysrq,
                1 => CutKind::Dup,
                _ => CutKind::Acks,
            });
            match kind {
                CutKind::Sysrq => Cut::GuestSysrq {
                    acks: rng.below(30),
                    us: rng.below(3000),
                },
                CutKind::Dup => Cut::HostAfterDupAck {
                    acks: rng.below(30),
                },
                CutKind::Acks => Cut::HostAfterAcks {
                    acks: 1 + rng.below(30),
                    on_intent: rng.below(3) == 0,
                },
            }
        };
        let plan = Plan {
            fs: o.setup.fs.clone(),
            boot,
            seed: rng.next(),
            cut: cut.clone(),
            slow_disk: rng.below(2) == 0,
            model: model.clone(),
        };
        let started = Instant::now();
        let mut log = |s: String| {
            let ms = started.elapsed().as_millis();
            let _ = writeln!(history, "boot {boot} +{ms}ms: {s}");
        };
        log(format!(
            "plan {cut:?}{}, in flight {:?}",
            if plan.slow_disk { ", slow disk" } else { "" },
            model.in_flight
        ));
        let seen = boot_once(
            o, &guest, &disk, &fifo, &mut lines, &plan, &mut model, &mut log,
        );
        let seen = match seen {
            Ok(s) => s,
            Err(e) => {
                drop(history);
                return Err(format!(
                    "{} boot {boot} (planned cut {cut:?}; the disk is as {} left it): {e}\nthe sequence of calls and outcomes: {}\n{}",
                    o.setup.fs,
                    match &last_cut {
                        Some(c) if !fresh => format!("the cut {c:?} of boot {}", boot - 1),
                        _ => "mkfs".to_string(),
                    },
                    history_path.display(),
                    tail(&history_path, 40)
                ));
            }
        };
        last_cut = Some(cut.clone());
        totals.acked += seen.acks;
        totals.facts += seen.facts;
        match seen.resolved {
            Some(Outcome::NotApplied) => totals.in_flight_not += 1,
            Some(_) => totals.in_flight_applied += 1,
            None => {}
        }
        if let (Some(ms), true) = (seen.ready_ms, fresh) {
            first_start_ms = ms;
        }
        match cut {
            Cut::HostAfterStart { .. } => totals.first_start += 1,
            Cut::HostAfterAcks { .. } => totals.host_kills += 1,
            Cut::GuestSysrq { .. } => totals.sysrq += 1,
            Cut::HostAfterDupAck { .. } => totals.on_dup += 1,
            Cut::None => {}
        }
        println!(
            "powercut {}: boot {boot:>3} {:<44} {} checked {:>3} facts, in flight {:<40} then {:>2} acks, {:.1} s",
            o.setup.fs,
            format!("{cut:?}"),
            if plan.slow_disk { "slow" } else { "fast" },
            seen.facts,
            format!(
                "{:?} -> {:?}",
                plan.model.in_flight.as_ref().map(|s| &s.call),
                seen.resolved
            ),
            seen.acks,
            started.elapsed().as_secs_f64()
        );
    }
    println!(
        "powercut {}: PASS: {} cuts ({} during the first start on an empty disk, {} SIGKILLs of qemu after N acknowledgements, {} right after a duplicate's first answer, {} sysrq resets in the guest during a call), {} acknowledged calls, {} acknowledged facts checked after the cuts, calls in flight at a cut: {} applied, {} not; {:.0} s",
        o.setup.fs,
        o.cuts,
        totals.first_start,
        totals.host_kills,
        totals.on_dup,
        totals.sysrq,
        totals.acked,
        totals.facts,
        totals.in_flight_applied,
        totals.in_flight_not,
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// What one boot showed.
struct Seen {
    acks: u64,
    facts: u64,
    resolved: Option<Outcome>,
    ready_ms: Option<u64>,
}

#[allow(clippy::too_many_arguments)]
fn boot_once(
    o: &Opts,
    guest: &Path,
    disk: &Path,
    fifo: &Path,
    lines: &mut AckLines,
    plan: &Plan,
    model: &mut Model,
    log: &mut dyn FnMut(String),
) -> Result<Seen, String> {
    // lines left from an earlier boot would be misread as this one's
    if let Some(cut_off) = lines.new_boot() {
        log(format!(
            "the last boot's line cut off by its end: {cut_off:?}"
        ));
    }
    let plan_path = o.setup.work.join("plan.json");
    std::fs::write(
        &plan_path,
        serde_json::to_vec(plan).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let pidfile = o.setup.work.join("qemu.pid");
    let _ = std::fs::remove_file(&pidfile);
    let vm_log = o.setup.work.join(format!("boot-{:03}.log", plan.boot));
    let verdict = o.setup.work.join("run.err");
    let mut child = o
        .setup
        .boot(guest, "guest", &plan_path)
        .env("VM_DISKS", disk)
        .env(
            "VM_DISK_OPTS",
            if plan.slow_disk {
                format!("throttling.iops-total={SLOW_DISK_IOPS}")
            } else {
                String::new()
            },
        )
        .env("VM_SERIAL2", fifo)
        .env("VM_PIDFILE", &pidfile)
        .env("VM_LOG", &vm_log)
        .env("MODS", modules(&o.setup.fs))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&verdict).map_err(|e| format!("{}: {e}", verdict.display()))?)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", o.setup.rig.display()))?;

    let mut b = BootState {
        seen: Seen {
            acks: 0,
            facts: 0,
            resolved: None,
            ready_ms: None,
        },
        started: None,
        killed: false,
        checked: false,
        done: false,
        finding: None,
    };
    let status = loop {
        if let Some(text) = lines.next(Duration::from_millis(5))? {
            b.handle(&text, plan, model, log, &pidfile)?;
        }
        if let (Cut::HostAfterStart { ms }, Some(at)) = (&plan.cut, b.started)
            && !b.killed
            && at.elapsed() >= Duration::from_millis(*ms)
        {
            cut_power(&pidfile)?;
            b.killed = true;
        }
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
    };
    log(format!("run.sh ended: {status}"));
    // everything the guest sent before it died is in the FIFO
    while let Some(text) = lines.next(DRAIN_QUIET)? {
        b.handle(&text, plan, model, log, &pidfile)?;
    }
    let BootState {
        seen,
        killed,
        checked,
        done,
        finding,
        ..
    } = b;
    let rc = status.code().unwrap_or(-1);
    if let Some(f) = finding {
        return Err(format!("FINDING: {f}\nVM log: {}", vm_log.display()));
    }
    let want = match plan.cut {
        Cut::HostAfterStart { .. } | Cut::HostAfterAcks { .. } | Cut::HostAfterDupAck { .. } => 7,
        Cut::GuestSysrq { .. } => 8,
        Cut::None => 0,
    };
    if rc != want || (plan.cut == Cut::None && !done) {
        return Err(format!(
            "run.sh exited {rc}, expected {want}{}: {}\nVM log: {}\n{}",
            if killed {
                " (the host cut the power)"
            } else {
                ""
            },
            std::fs::read_to_string(&verdict).unwrap_or_default().trim(),
            vm_log.display(),
            tail(&vm_log, 30)
        ));
    }
    if plan.cut != Cut::None && !matches!(plan.cut, Cut::HostAfterStart { .. }) && !checked {
        return Err(format!(
            "the boot was cut before its check (VM log: {})",
            vm_log.display()
        ));
    }
    let _ = std::fs::remove_file(&vm_log);
    Ok(seen)
}

/// One boot as the channel shows it.
struct BootState {
    seen: Seen,
    /// When the plugin was started.
    started: Option<Instant>,
    killed: bool,
    checked: bool,
    done: bool,
    finding: Option<String>,
}

impl BootState {
    /// Takes one line of the channel into the model, cutting the power if
    /// the plan says this is the moment.
    fn handle(
        &mut self,
        text: &str,
        plan: &Plan,
        model: &mut Model,
        log: &mut dyn FnMut(String),
        pidfile: &Path,
    ) -> Result<(), String> {
        let Some(line) = Line::decode(text) else {
            log(format!("noise on the channel: {text:?}"));
            return Ok(());
        };
        match &line {
            Line::Intent(step) => log(format!("  sent  {step:?}")),
            Line::Ack(outcome) => log(format!("  acked {outcome:?}")),
            other => log(format!("{other:?}")),
        }
        let mut cut_now = false;
        match line {
            Line::Started => self.started = Some(Instant::now()),
            Line::Ready(ms) => self.seen.ready_ms = Some(ms),
            Line::Checked(c) => {
                self.checked = true;
                self.seen.facts = c.facts;
                if c.in_flight.is_some() != model.in_flight.is_some() {
                    return Err(format!(
                        "the check resolved {:?} for the call in flight {:?}",
                        c.in_flight, model.in_flight
                    ));
                }
                if let Some(outcome) = &c.in_flight {
                    model.apply(outcome)?;
                    self.seen.resolved = Some(outcome.clone());
                }
            }
            Line::Intent(step) => {
                if !self.checked {
                    return Err("a call before the check".into());
                }
                model.begin(&step);
                if let Cut::HostAfterAcks {
                    acks,
                    on_intent: true,
                } = plan.cut
                {
                    cut_now = self.seen.acks == acks;
                }
            }
            Line::Ack(outcome) => {
                let dup = model.in_flight.as_ref().is_some_and(|s| s.dup);
                if let Cut::HostAfterDupAck { acks } = plan.cut {
                    cut_now = dup && self.seen.acks >= acks;
                }
                model.apply(&outcome)?;
                self.seen.acks += 1;
                if let Cut::HostAfterAcks {
                    acks,
                    on_intent: false,
                } = plan.cut
                {
                    cut_now = self.seen.acks == acks;
                }
            }
            Line::Finding(f) => self.finding = Some(f),
            Line::Done => self.done = true,
        }
        if cut_now && !self.killed {
            cut_power(pidfile)?;
            self.killed = true;
        }
        Ok(())
    }
}

/// The power cut: SIGKILL to qemu (its PID from `-pidfile`).
fn cut_power(pidfile: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(pidfile)
        .map_err(|e| format!("reading qemu's pid file {}: {e}", pidfile.display()))?;
    let pid: i32 = text
        .trim()
        .parse()
        .map_err(|e| format!("qemu's pid file says {text:?}: {e}"))?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .map_err(|e| format!("kill -9 {pid} (qemu): {e}"))
}

/// An image of `DISK_BYTES` formatted with `fs` (fails loudly without mkfs).
pub(crate) fn make_fs(fs: &str, image: &Path) -> Result<(), String> {
    let (mkfs, args): (&str, &[&str]) = match fs {
        "ext4" => ("mkfs.ext4", &["-q", "-F"]),
        "xfs" => ("mkfs.xfs", &["-q", "-f"]),
        other => return Err(format!("file system {other:?}: ext4 or xfs")),
    };
    let _ = std::fs::remove_file(image);
    let f = std::fs::File::create(image).map_err(|e| format!("{}: {e}", image.display()))?;
    f.set_len(DISK_BYTES).map_err(|e| e.to_string())?;
    drop(f);
    let out = Command::new(mkfs)
        .args(args)
        .arg(image)
        .output()
        .map_err(|e| {
            format!("{mkfs} cannot run ({e}): install e2fsprogs and xfsprogs (tests/powercut/run.sh does)")
        })?;
    if !out.status.success() {
        return Err(format!(
            "{mkfs} {} failed: {}",
            image.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

pub(crate) fn copy_sparse(from: &Path, to: &Path) -> Result<(), String> {
    let st = Command::new("cp")
        .arg("--sparse=always")
        .arg(from)
        .arg(to)
        .status()
        .map_err(|e| format!("cp: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("cp {} {} failed", from.display(), to.display()))
    }
}

/// The last `n` lines of a file, for a failure message.
pub(crate) fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
