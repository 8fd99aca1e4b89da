//! Power-cut test of ipvlan-rs (issue #18): the real plugin runs in a qemu
//! VM with its state on a virtio disk (`cache=none`: what the guest did not
//! flush dies with it), under a load of durable calls, and the power is cut
//! at random moments: qemu killed by the host after a chosen number of
//! acknowledgements, or the guest reset by sysrq without a sync, or during
//! the plugin's first start on an empty disk. The next boot checks that
//! every acknowledged change is still there (and every acknowledged
//! deletion still gone), that no address is held twice, and that the
//! plugin serves; only the one call in flight at the cut may go either way.
//!
//! One static binary, two roles: `host` (the controller, on the host) and
//! `guest` (`/test` in the VM, see tests/rig/vm).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod channel;
mod dm;
mod guest;
mod host;
mod http;
mod logwrites;
mod model;
mod replay;
mod replay_host;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: ipvlan-rs-powercut guest | replay-guest
       ipvlan-rs-powercut host --fs ext4|xfs --plugin BIN --rig RUN_SH --work DIR [--cuts N] [--per-disk N] [--seed N] [--only acks|dup|sysrq]
       ipvlan-rs-powercut replay --fs ext4|xfs --plugin BIN --rig RUN_SH --work DIR [--calls N] [--points N|all] [--seed N]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("guest") => guest::run(),
        Some("replay-guest") => replay::run(),
        Some("replay") => replay_host::opts(&args[1..], USAGE).and_then(|o| replay_host::run(&o)),
        Some("host") => host_opts(&args[1..]).and_then(|o| host::run(&o)),
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("powercut: FAIL: {e}");
            ExitCode::FAILURE
        }
    }
}

fn host_opts(args: &[String]) -> Result<host::Opts, String> {
    let mut o = host::Opts {
        fs: String::new(),
        cuts: 33,
        per_disk: 11,
        plugin: PathBuf::new(),
        work: PathBuf::new(),
        rig: PathBuf::new(),
        seed: 0x9c0f_f5ee_d000_0018,
        only: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|e| format!("{flag} {value}: {e}"))
        };
        match flag.as_str() {
            "--fs" => o.fs = value.clone(),
            "--plugin" => o.plugin = value.into(),
            "--work" => o.work = value.into(),
            "--rig" => o.rig = value.into(),
            "--cuts" => o.cuts = number()?,
            "--per-disk" => o.per_disk = number()?.max(1),
            "--seed" => o.seed = number()?,
            "--only" => {
                o.only = Some(match value.as_str() {
                    "acks" => host::CutKind::Acks,
                    "dup" => host::CutKind::Dup,
                    "sysrq" => host::CutKind::Sysrq,
                    _ => return Err(format!("--only {value}: acks, dup or sysrq")),
                })
            }
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    if o.fs.is_empty()
        || o.plugin.as_os_str().is_empty()
        || o.work.as_os_str().is_empty()
        || o.rig.as_os_str().is_empty()
    {
        return Err(USAGE.to_string());
    }
    Ok(o)
}
