//! The host side of the replay check (`replay.rs`): makes the four disks
//! (the data disk and the replay target from one mkfs, a sparse log and a
//! sparse snapshot store), boots the VM rig once with them, streams the
//! guest's report and fails with the VM log's tail if the guest did.

use crate::channel::ReplayPlan;
use crate::host::{Setup, copy_sparse, make_fs, modules, tail};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Instant;

/// The log device: every write of the run plus a block per entry (a run
/// of 60 calls logs about 20 MiB on ext4; a full log fails the run).
const LOG_BYTES: u64 = 1 << 30;
/// The snapshot store: what one check's mount and plugin write.
const COW_BYTES: u64 = 256 << 20;
/// The device-mapper targets the guest needs on top of the cut test's modules.
const DM_MODULES: &str = "dm_mod dm_log_writes dm_snapshot";

/// Settings of one replay run (one file system).
pub struct Opts {
    /// File system, plugin, rig, scratch directory.
    pub setup: Setup,
    /// Calls of the recorded run.
    pub calls: u64,
    /// States to check at most (0: every one).
    pub points: u64,
    /// Seed of the recorded load.
    pub seed: u64,
}

fn sparse(path: &std::path::Path, bytes: u64) -> Result<(), String> {
    let _ = std::fs::remove_file(path);
    std::fs::File::create(path)
        .and_then(|f| f.set_len(bytes))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Runs the replay check of one file system.
pub fn run(o: &Opts) -> Result<(), String> {
    let t0 = Instant::now();
    std::fs::create_dir_all(&o.setup.work)
        .map_err(|e| format!("{}: {e}", o.setup.work.display()))?;
    for f in [&o.setup.plugin, &o.setup.rig] {
        if !f.is_file() {
            return Err(format!("{} is missing", f.display()));
        }
    }
    let guest = std::env::current_exe().map_err(|e| e.to_string())?;
    let template = o.setup.work.join("template.img");
    make_fs(&o.setup.fs, &template)?;
    let (data, log, target, cow) = (
        o.setup.work.join("data.img"),
        o.setup.work.join("log.img"),
        o.setup.work.join("replay.img"),
        o.setup.work.join("cow.img"),
    );
    copy_sparse(&template, &data)?;
    copy_sparse(&template, &target)?;
    sparse(&log, LOG_BYTES)?;
    sparse(&cow, COW_BYTES)?;
    let plan = ReplayPlan {
        fs: o.setup.fs.clone(),
        seed: o.seed,
        calls: o.calls,
        max_points: o.points,
    };
    let plan_path = o.setup.work.join("replay.json");
    std::fs::write(
        &plan_path,
        serde_json::to_vec(&plan).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let vm_log = o.setup.work.join("replay-vm.log");
    println!(
        "replay {}: {} calls recorded, {} states checked at most, seed {}",
        o.setup.fs,
        o.calls,
        if o.points == 0 {
            "all".to_string()
        } else {
            o.points.to_string()
        },
        o.seed
    );
    let mut child = o
        .setup
        .boot(&guest, "replay-guest", &plan_path)
        .env(
            "VM_DISKS",
            format!(
                "{} {} {} {}",
                data.display(),
                log.display(),
                target.display(),
                cow.display()
            ),
        )
        .env("VM_DISK_OPTS", "")
        .env("VM_LOG", &vm_log)
        // a guard, not a measure: a state takes a few seconds under TCG
        .env("VM_TIMEOUT", (600 + 60 * o.points.max(200)).to_string())
        .env("MODS", format!("{} {DM_MODULES}", modules(&o.setup.fs)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting {}: {e}", o.setup.rig.display()))?;
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.starts_with("replay ") || line.starts_with("FINDING") {
                println!("{line}");
            }
        }
    }
    let mut verdict = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut err, &mut verdict);
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!(
            "replay {}: run.sh exited {}: {}\nVM log: {}\n{}",
            o.setup.fs,
            status.code().unwrap_or(-1),
            verdict.trim(),
            vm_log.display(),
            tail(&vm_log, 40)
        ));
    }
    for img in [&data, &log, &target, &cow, &template] {
        let _ = std::fs::remove_file(img);
    }
    println!(
        "replay {}: done in {:.0} s (VM log {})",
        o.setup.fs,
        t0.elapsed().as_secs_f64(),
        vm_log.display()
    );
    Ok(())
}
