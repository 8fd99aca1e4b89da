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

mod ack_lines;
mod channel;
mod dm;
mod guest;
mod host;
mod http;
mod logwrites;
mod model;
mod replay;
mod replay_host;

use std::process::ExitCode;

const USAGE: &str = "usage: ipvlan-rs-powercut guest | replay-guest
       ipvlan-rs-powercut host --fs ext4|xfs --plugin BIN --rig RUN_SH --work DIR [--cuts N] [--per-disk N] [--seed N] [--only acks|dup|sysrq]
       ipvlan-rs-powercut replay --fs ext4|xfs --plugin BIN --rig RUN_SH --work DIR [--calls N] [--points N|all] [--seed N]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("guest") => guest::run(),
        Some("replay-guest") => replay::run(),
        Some("replay") => replay_opts(&args[1..]).and_then(|o| replay_host::run(&o)),
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

/// Reads `--flag value` pairs: `set` takes those of the role (and says
/// whether it knew the flag), `setup` the common ones, all four required.
fn flags(
    args: &[String],
    setup: &mut host::Setup,
    mut set: impl FnMut(&str, &str) -> Result<bool, String>,
) -> Result<(), String> {
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        if !set(flag, value)? && !setup.set(flag, value) {
            return Err(format!("unknown option {flag}\n{USAGE}"));
        }
    }
    if !setup.complete() {
        return Err(USAGE.to_string());
    }
    Ok(())
}

fn number(flag: &str, value: &str) -> Result<u64, String> {
    value
        .parse::<u64>()
        .map_err(|e| format!("{flag} {value}: {e}"))
}

fn host_opts(args: &[String]) -> Result<host::Opts, String> {
    let mut o = host::Opts {
        setup: host::Setup::default(),
        cuts: 33,
        per_disk: 11,
        seed: 0x9c0f_f5ee_d000_0018,
        only: None,
    };
    let mut setup = host::Setup::default();
    flags(args, &mut setup, |flag, value| {
        match flag {
            "--cuts" => o.cuts = number(flag, value)?,
            "--per-disk" => o.per_disk = number(flag, value)?.max(1),
            "--seed" => o.seed = number(flag, value)?,
            "--only" => {
                o.only = Some(match value {
                    "acks" => host::CutKind::Acks,
                    "dup" => host::CutKind::Dup,
                    "sysrq" => host::CutKind::Sysrq,
                    _ => return Err(format!("--only {value}: acks, dup or sysrq")),
                })
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    o.setup = setup;
    Ok(o)
}

fn replay_opts(args: &[String]) -> Result<replay_host::Opts, String> {
    let mut o = replay_host::Opts {
        setup: host::Setup::default(),
        calls: 30,
        points: 0,
        seed: 0x9c0f_f5ee_d000_0482,
    };
    let mut setup = host::Setup::default();
    flags(args, &mut setup, |flag, value| {
        match flag {
            "--calls" => o.calls = number(flag, value)?,
            "--points" if value == "all" => o.points = 0,
            "--points" => o.points = number(flag, value)?.max(1),
            "--seed" => o.seed = number(flag, value)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    o.setup = setup;
    Ok(o)
}
