//! The replay check, run as `/test replay-guest` in the VM (issue #18, as
//! xfstests' generic/482 does it): instead of cutting the power at moments
//! chance picks, record every write of one run and open the store at every
//! state a cut could have left.
//!
//! Disks: `vda` the data disk (a fresh file system), `vdb` the log, `vdc`
//! a second copy of the fresh file system (the replay target), `vdd`
//! scratch for snapshots.
//!
//! 1. Record: `vda` behind a `log-writes` device logging to `vdb`; the real
//!    plugin runs its load on it, and the guest marks the log before each
//!    call (`i<k>`) and the moment its first answer arrives (`a<k>`).
//! 2. Replay: the log is read back and `vdc` brought forward to every state
//!    a cut could leave (`logwrites::points`: after each flush and FUA
//!    write, at each mark). At each, a throwaway snapshot of `vdc` (so the
//!    journal recovery and the check write nowhere that matters) is mounted,
//!    the plugin started on it in a network namespace of its own (a fresh
//!    kernel, as after a reboot), and checked with `guest::check` against
//!    the calls whose answer was marked before that state: every one held
//!    (allocations held, deletions gone, no address held twice); the call
//!    marked as sent but not answered may have gone either way.

use crate::channel::{PLAN_PATH, ReplayPlan};
use crate::dm::{self, Device};
use crate::guest::{check, mount, send_step, start_plugin, stop_plugin, umount, wait_ready};
use crate::logwrites::{self, FLUSH, FUA, Log, MARK, Point, Replayer};
use crate::model::{Model, Outcome, Rng, Step};
use std::fs::{File, OpenOptions};
use std::time::Instant;

const DATA: &str = "vda";
const LOG: &str = "vdb";
const TARGET: &str = "vdc";
const COW: &str = "vdd";
/// The mark the target writes when it is removed: the log is complete.
const END_MARK: &str = "dm-log-writes-end";

/// Records, replays and checks; an `Err` is a finding or a broken rig.
pub fn run() -> Result<(), String> {
    let plan: ReplayPlan = serde_json::from_slice(
        &std::fs::read(PLAN_PATH).map_err(|e| format!("reading {PLAN_PATH}: {e}"))?,
    )
    .map_err(|e| format!("parsing {PLAN_PATH}: {e}"))?;
    let fs = &plan.fs;
    let t0 = Instant::now();
    let journal = record(&plan)?;
    let recorded = t0.elapsed();

    let source = File::open(format!("/dev/{LOG}")).map_err(|e| format!("/dev/{LOG}: {e}"))?;
    // the partition scan at boot cached the log device's first blocks
    // (zeros then); the target wrote past the page cache since
    nix::fcntl::posix_fadvise(
        &source,
        0,
        0,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    )
    .map_err(|e| format!("dropping the cache of /dev/{LOG}: {e}"))?;
    let log = logwrites::read(&source)?;
    complete(&log, journal.len())?;
    let all = logwrites::points(&log);
    let chosen = spread(all.len(), plan.max_points as usize);
    let syncs = log
        .entries
        .iter()
        .filter(|e| e.flags & (FLUSH | FUA) != 0)
        .count();
    println!(
        "replay {fs}: recorded {} calls in {:.1} s: {} log entries, {syncs} flush/FUA, {} states to check, checking {}",
        journal.len(),
        recorded.as_secs_f64(),
        log.entries.len(),
        all.len(),
        chosen.len()
    );

    let target = OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/dev/{TARGET}"))
        .map_err(|e| format!("/dev/{TARGET}: {e}"))?;
    let mut replayer = Replayer::new(&log, &source, &target);
    let (mut facts, mut applied, mut not_applied) = (0, 0, 0);
    let t1 = Instant::now();
    for (n, &i) in chosen.iter().enumerate() {
        let point = &all[i];
        replayer.advance_to(point.applied)?;
        let model = model_at(&log, point, &journal)?;
        let t = Instant::now();
        let where_ = describe(&log, point);
        let checked = check_state(fs, &model, n as u64).map_err(|e| {
            format!(
                "state {}/{} ({where_}; {} calls answered, in flight {:?}): {e}",
                n + 1,
                chosen.len(),
                model.acked,
                model.in_flight.as_ref().map(|s| &s.call)
            )
        })?;
        facts += checked.facts;
        match checked.in_flight {
            Some(Outcome::NotApplied) => not_applied += 1,
            Some(_) => applied += 1,
            None => {}
        }
        println!(
            "replay {fs}: state {:>3}/{} {where_:<34} {:>3} answered, in flight {:<40} {:>3} facts, {:.1} s",
            n + 1,
            chosen.len(),
            model.acked,
            format!(
                "{:?} -> {:?}",
                model.in_flight.as_ref().map(|s| &s.call),
                checked.in_flight
            ),
            checked.facts,
            t.elapsed().as_secs_f64()
        );
    }
    println!(
        "replay {fs}: PASS: {} states of {} checked ({} calls recorded, {} log entries, {syncs} flush/FUA), {facts} acknowledged facts, calls in flight: {applied} applied, {not_applied} not; record {:.1} s, checks {:.1} s",
        chosen.len(),
        all.len(),
        journal.len(),
        log.entries.len(),
        recorded.as_secs_f64(),
        t1.elapsed().as_secs_f64()
    );
    Ok(())
}

/// One run of the load on `vda` behind log-writes; returns every call and
/// the answer it got.
fn record(plan: &ReplayPlan) -> Result<Vec<(Step, Outcome)>, String> {
    let lw = Device::create(
        "pc-log",
        "log-writes",
        dm::sectors(DATA)?,
        &format!("{} {}", dm::dev_numbers(DATA)?, dm::dev_numbers(LOG)?),
    )?;
    mount(&plan.fs, &lw.node.to_string_lossy())?;
    let mut plugin = start_plugin()?;
    wait_ready(&mut plugin)?;
    let mut model = Model::default();
    let mut rng = Rng(plan.seed);
    let mut journal = Vec::new();
    for k in 0..plan.calls {
        let step = model.choose(&mut rng);
        model.begin(&step);
        lw.message(&format!("mark i{k}"))?;
        let outcome = send_step(&step, &|_| lw.message(&format!("mark a{k}")))?;
        model.apply(&outcome)?;
        journal.push((step, outcome));
    }
    stop_plugin(plugin)?;
    umount()?;
    lw.remove()?;
    Ok(journal)
}

/// The log ends with the target's own end mark (it logged to the end: a
/// full log device stops logging) and marks every call sent and answered.
fn complete(log: &Log, calls: usize) -> Result<(), String> {
    if log.entries.last().and_then(|e| e.mark.as_deref()) != Some(END_MARK) {
        return Err(format!(
            "the log does not end with the {END_MARK:?} mark: it is incomplete (log device full? the kernel log says \"Ran out of space\")"
        ));
    }
    let marks = log.entries.iter().filter(|e| e.flags & MARK != 0).count();
    if marks != 2 * calls + 1 {
        return Err(format!(
            "the log holds {marks} marks, expected {} for {calls} calls",
            2 * calls + 1
        ));
    }
    Ok(())
}

/// What was answered (and what was sent) before the first `point.applied`
/// entries: the model the state must satisfy.
fn model_at(log: &Log, point: &Point, journal: &[(Step, Outcome)]) -> Result<Model, String> {
    let (mut answered, mut sent) = (0usize, 0usize);
    for e in &log.entries[..point.applied] {
        let Some(mark) = e.mark.as_deref() else {
            continue;
        };
        let (kind, k) = mark.split_at(1.min(mark.len()));
        let Ok(k) = k.parse::<usize>() else { continue };
        let next = match kind {
            "i" => &mut sent,
            "a" => &mut answered,
            _ => continue,
        };
        if k != *next {
            return Err(format!(
                "mark {mark:?} out of order (expected {kind}{next})"
            ));
        }
        *next += 1;
    }
    let mut model = Model::default();
    for (step, outcome) in &journal[..answered] {
        model.begin(step);
        model.apply(outcome)?;
    }
    if sent > answered {
        model.begin(&journal[answered].0);
    }
    Ok(model)
}

/// Opens the replayed state through a throwaway snapshot and checks it.
fn check_state(fs: &str, model: &Model, n: u64) -> Result<crate::channel::Checked, String> {
    let snap = Device::create(
        "pc-snap",
        "snapshot",
        dm::sectors(TARGET)?,
        // N: transient, the exceptions live in memory and on vdd only
        &format!("{} {} N 8", dm::dev_numbers(TARGET)?, dm::dev_numbers(COW)?),
    )?;
    mount(fs, &snap.node.to_string_lossy())?;
    // a network namespace of its own for this start: the parents it makes
    // go with it, and the next start finds none
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("unshare(CLONE_NEWNET): {e}"))?;
    let mut plugin = start_plugin()?;
    wait_ready(&mut plugin)?;
    let checked = check(model, n)?;
    stop_plugin(plugin)?;
    umount()?;
    snap.remove()?;
    Ok(checked)
}

/// Where in the log a state is, for the report.
fn describe(log: &Log, point: &Point) -> String {
    match point.after {
        None => "before any write".to_string(),
        Some(i) => {
            let e = &log.entries[i];
            let what = if e.flags & MARK != 0 {
                format!("mark {}", e.mark.as_deref().unwrap_or(""))
            } else if e.flags & FLUSH != 0 {
                "flush".to_string()
            } else {
                "FUA write".to_string()
            };
            format!("entry {i} of {} ({what})", log.entries.len())
        }
    }
}

/// `max` indices spread evenly over `0..len`, first and last included
/// (all of them if `max` is 0 or at least `len`).
fn spread(len: usize, max: usize) -> Vec<usize> {
    if max == 0 || max >= len {
        return (0..len).collect();
    }
    if max == 1 {
        return vec![len - 1];
    }
    let mut v: Vec<usize> = (0..max).map(|i| i * (len - 1) / (max - 1)).collect();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_keeps_the_ends_and_the_count() {
        assert_eq!(spread(5, 0), vec![0, 1, 2, 3, 4]);
        assert_eq!(spread(5, 9), vec![0, 1, 2, 3, 4]);
        assert_eq!(spread(100, 3), vec![0, 49, 99]);
        assert_eq!(spread(100, 40).len(), 40);
        assert_eq!(spread(7, 1), vec![6]);
    }
}
