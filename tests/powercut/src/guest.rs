//! The guest side, run as `/test` in the VM: mount the disk under test,
//! start the real plugin with its state there, check it against what the
//! host says was acknowledged before the last cut, then load it until the
//! power goes. Every line for the host goes out on `/dev/ttyS1` and is
//! drained (`tcdrain`) before the next call, so the host never knows less
//! than the plugin acknowledged.

use crate::channel::{Checked, Cut, Line, PLAN_PATH, PLUGIN_PATH, Plan};
use crate::http;
use crate::model::{
    Call, HOSTS, MAX_NETWORKS, Model, Outcome, POOL, POOL_ID, Rng, Step, endpoint_id, network_id,
};
use nix::sys::termios::{SetArg, cfmakeraw, tcdrain, tcgetattr, tcsetattr};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SOCKET: &str = "/run/powercut.sock";
const MOUNT: &str = "/mnt";
/// A guard against a plugin that never answers, not a timing assertion.
const READY_GUARD: Duration = Duration::from_secs(120);
/// Steps of one boot's load without a cut: the host missed its moment.
const MAX_STEPS: u64 = 5000;

/// The acknowledgement channel: the second serial port, raw.
struct Channel(File);

impl Channel {
    fn open() -> Result<Channel, String> {
        let tty = OpenOptions::new()
            .write(true)
            .open("/dev/ttyS1")
            .map_err(|e| format!("opening /dev/ttyS1 (the acknowledgement channel): {e}"))?;
        let mut t = tcgetattr(&tty).map_err(|e| format!("tcgetattr ttyS1: {e}"))?;
        cfmakeraw(&mut t);
        tcsetattr(&tty, SetArg::TCSANOW, &t).map_err(|e| format!("tcsetattr ttyS1: {e}"))?;
        // ends a line the last cut may have left half sent (the host reads
        // every boot's lines from one FIFO)
        (&tty)
            .write_all(b"\n")
            .map_err(|e| format!("writing ttyS1: {e}"))?;
        Ok(Channel(tty))
    }

    /// Sends `line` and returns once its bytes have left the guest.
    fn send(&self, line: &Line) -> Result<(), String> {
        let mut text = line.encode();
        text.push('\n');
        (&self.0)
            .write_all(text.as_bytes())
            .and_then(|()| tcdrain(&self.0).map_err(std::io::Error::from))
            .map_err(|e| format!("writing the acknowledgement channel: {e}"))
    }
}

/// Runs the boot; an `Err` is a finding or a broken rig (exit 1).
pub fn run() -> Result<(), String> {
    let plan: Plan = serde_json::from_slice(
        &std::fs::read(PLAN_PATH).map_err(|e| format!("reading {PLAN_PATH}: {e}"))?,
    )
    .map_err(|e| format!("parsing {PLAN_PATH}: {e}"))?;
    let channel = Channel::open()?;
    println!(
        "powercut: boot {} on {}, cut {:?}, {} acknowledged calls so far",
        plan.boot, plan.fs, plan.cut, plan.model.acked
    );
    let result = boot(&plan, &channel);
    if let Err(finding) = &result {
        println!("FINDING: {finding}");
        let _ = channel.send(&Line::Finding(finding.clone()));
    }
    result
}

fn boot(plan: &Plan, channel: &Channel) -> Result<(), String> {
    if let Cut::GuestSysrq { .. } = plan.cut {
        // announced early: the reset leaves no time to print
        println!("QK-RESET: this boot ends with sysrq b after the load's call");
    }
    mount(&plan.fs, "/dev/vda").map_err(|e| format!("after the cut, {e}"))?;
    channel.send(&Line::Started)?;
    let started = Instant::now();
    let mut plugin = start_plugin()?;
    wait_ready(&mut plugin)?;
    channel.send(&Line::Ready(started.elapsed().as_millis() as u64))?;

    let mut model = plan.model.clone();
    let checked = check(&model, plan.boot)?;
    if let Some(outcome) = &checked.in_flight {
        model.apply(outcome)?;
    }
    println!(
        "powercut: check passed: {} facts, call in flight at the cut: {:?} -> {:?}",
        checked.facts,
        plan.model.in_flight.as_ref().map(|s| &s.call),
        checked.in_flight
    );
    channel.send(&Line::Checked(checked))?;
    if plan.cut == Cut::None {
        stop_plugin(plugin)?;
        return channel.send(&Line::Done);
    }
    load(plan, model, channel, &mut plugin)
}

/// Starts the real plugin with its state in `MOUNT/state`.
pub fn start_plugin() -> Result<Child, String> {
    Command::new(PLUGIN_PATH)
        .args(["--state-dir", &format!("{MOUNT}/state"), "--socket", SOCKET])
        .args(["--log-level", "warn"])
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting {PLUGIN_PATH}: {e}"))
}

/// Stops the plugin with SIGTERM; anything but a clean exit is an `Err`.
pub fn stop_plugin(mut plugin: Child) -> Result<(), String> {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(plugin.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .map_err(|e| format!("stopping the plugin: {e}"))?;
    let status = plugin.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("the plugin stopped with {status} after SIGTERM"));
    }
    Ok(())
}

/// Runs a command of the guest (mount, umount); a failure is an `Err`
/// with what it printed.
fn run_tool(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("running {}: {e}", args[0]))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(())
}

/// Mounts `device` (file system `fs`) at `MOUNT`; a refusal is an `Err`
/// naming the kernel's complaint.
pub fn mount(fs: &str, device: &str) -> Result<(), String> {
    std::fs::create_dir_all(MOUNT).map_err(|e| e.to_string())?;
    run_tool(&["mount", "-t", fs, device, MOUNT])
        .map_err(|e| format!("the {fs} file system on {device} does not mount: {e}"))
}

/// Unmounts `MOUNT`.
pub fn umount() -> Result<(), String> {
    run_tool(&["umount", MOUNT]).map_err(|e| format!("umount {MOUNT}: {e}"))
}

/// Waits until the plugin answers on its socket; its exit first is an `Err`.
pub fn wait_ready(plugin: &mut Child) -> Result<(), String> {
    let deadline = Instant::now() + READY_GUARD;
    loop {
        if let Some(status) = plugin.try_wait().map_err(|e| e.to_string())? {
            return Err(format!(
                "the plugin exited ({status}) before serving: its state did not open (see its log above)"
            ));
        }
        if std::os::unix::net::UnixStream::connect(SOCKET).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("the plugin did not serve within {READY_GUARD:?}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The address 10.77.0.`host`.
fn address(host: u8) -> String {
    format!("10.77.0.{host}")
}

fn post(path: &str, body: &str) -> Result<(u16, String), String> {
    http::post(Path::new(SOCKET), path, body).map_err(|e| format!("{path}: {e}"))
}

fn claim(host: u8) -> Result<(u16, String), String> {
    post(
        "/IpamDriver.RequestAddress",
        &format!(
            r#"{{"PoolID":"{POOL_ID}","Address":"{}","Options":null}}"#,
            address(host)
        ),
    )
}

fn endpoint_body(net: u32, ep: u64) -> String {
    format!(
        r#"{{"NetworkID":"{}","EndpointID":"{}"}}"#,
        network_id(net),
        endpoint_id(ep)
    )
}

fn create_endpoint_body(net: u32, ep: u64) -> String {
    format!(
        r#"{{"NetworkID":"{}","EndpointID":"{}","Interface":{{"Address":"10.{}.0.{}/24","AddressIPv6":"","MacAddress":""}},"Options":{{}}}}"#,
        network_id(net),
        endpoint_id(ep),
        80 + net,
        2 + ep % 250
    )
}

/// Checks every acknowledged fact and resolves the call in flight.
pub fn check(model: &Model, boot: u64) -> Result<Checked, String> {
    let in_flight = model.in_flight.as_ref().map(|s| &s.call);
    let mut resolved = None;
    let mut facts = 0;

    // the pool, and every address of it: held exactly as acknowledged
    let mut pool = model.pool;
    if in_flight == Some(&Call::RequestPool) {
        // leasing again is harmless: the ID is the pool's
        expect_done(&perform(&Call::RequestPool)?, "leasing the pool again")?;
        resolved = Some(Outcome::Done);
        pool = true;
    }
    if pool {
        let mut in_use = std::collections::BTreeSet::new();
        for host in HOSTS {
            let (status, body) = claim(host)?;
            if status == 200 {
                let (st, b) = post(
                    "/IpamDriver.ReleaseAddress",
                    &format!(r#"{{"PoolID":"{POOL_ID}","Address":"{}"}}"#, address(host)),
                )?;
                if st != 200 {
                    return Err(format!(
                        "releasing {} after the check's claim: {st} {b}",
                        address(host)
                    ));
                }
            } else if body.contains("already in use") {
                in_use.insert(host);
            } else if body.contains("unknown pool") {
                return Err(format!(
                    "the acknowledged pool {POOL} is gone: a claim of {} says {body}",
                    address(host)
                ));
            } else {
                return Err(format!("claim of {}: {status} {body}", address(host)));
            }
            facts += 1;
        }
        let lost: Vec<u8> = model.held.difference(&in_use).copied().collect();
        let extra: Vec<u8> = in_use.difference(&model.held).copied().collect();
        match (in_flight, lost.as_slice(), extra.as_slice()) {
            (Some(Call::ReleaseAddress { host }), [h], []) if h == host => {
                resolved = Some(Outcome::Done)
            }
            (Some(Call::ReleaseAddress { host }), [], []) if model.held.contains(host) => {
                resolved = Some(Outcome::NotApplied)
            }
            (Some(Call::RequestAddress), [], [h]) => resolved = Some(Outcome::Address(*h)),
            (Some(Call::RequestAddress), [], []) => resolved = Some(Outcome::NotApplied),
            (_, [], []) => {}
            _ => {
                return Err(format!(
                    "after the cut the pool's addresses in use are {} but the acknowledged allocations are {}: {}{}(call in flight at the cut: {:?})",
                    hosts(&in_use),
                    hosts(&model.held),
                    if lost.is_empty() {
                        String::new()
                    } else {
                        format!("acknowledged allocations LOST: {}; ", hosts(&lost))
                    },
                    if extra.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "in use though released or never handed out: {}; ",
                            hosts(&extra)
                        )
                    },
                    model.in_flight
                ));
            }
        }
    }

    // networks: a probe endpoint can be created on each acknowledged one
    let probe = (1u64 << 62) + boot;
    for net in 0..MAX_NETWORKS {
        let acked = model.networks.contains(&net);
        let flying = in_flight == Some(&Call::CreateNetwork { net });
        if !acked && !flying {
            continue;
        }
        let (status, body) = post(
            "/NetworkDriver.CreateEndpoint",
            &format!(
                r#"{{"NetworkID":"{}","EndpointID":"{}","Interface":{{"Address":"10.{}.0.254/24","AddressIPv6":"","MacAddress":""}},"Options":{{}}}}"#,
                network_id(net),
                endpoint_id(probe),
                80 + net
            ),
        )?;
        let exists = status == 200;
        if exists {
            let (st, b) = post("/NetworkDriver.DeleteEndpoint", &endpoint_body(net, probe))?;
            if st != 200 {
                return Err(format!("deleting the probe endpoint: {st} {b}"));
            }
        }
        if acked && !exists {
            return Err(format!(
                "acknowledged network {net} ({}) LOST: a CreateEndpoint on it says {status} {body}",
                network_id(net)
            ));
        }
        if flying {
            resolved = Some(if exists {
                Outcome::Done
            } else {
                Outcome::NotApplied
            });
        }
        facts += 1;
    }

    // endpoints: acknowledged ones exist, acknowledged deletions stuck
    let info = |net: u32, ep: u64| -> Result<(u16, String), String> {
        post("/NetworkDriver.EndpointOperInfo", &endpoint_body(net, ep))
    };
    for (ep, net) in &model.endpoints {
        if in_flight == Some(&Call::DeleteEndpoint { net: *net, ep: *ep }) {
            continue; // either way; resolved below
        }
        let (status, body) = info(*net, *ep)?;
        if status != 200 {
            return Err(format!(
                "acknowledged endpoint {ep} ({}) of network {net} LOST: EndpointOperInfo says {status} {body}",
                endpoint_id(*ep)
            ));
        }
        facts += 1;
    }
    for (ep, net) in &model.gone {
        let (status, _) = info(*net, *ep)?;
        if status == 200 {
            return Err(format!(
                "acknowledged deletion of endpoint {ep} ({}) of network {net} LOST: it is back",
                endpoint_id(*ep)
            ));
        }
        facts += 1;
    }
    if let Some(Call::CreateEndpoint { net, ep } | Call::DeleteEndpoint { net, ep }) = in_flight {
        let (status, _) = info(*net, *ep)?;
        let there = status == 200;
        let created = matches!(in_flight, Some(Call::CreateEndpoint { .. }));
        resolved = Some(if there == created {
            Outcome::Done
        } else {
            Outcome::NotApplied
        });
    }
    if model.in_flight.is_some() && resolved.is_none() {
        return Err(format!("no check resolves {:?}", model.in_flight));
    }
    Ok(Checked {
        in_flight: resolved,
        facts,
    })
}

fn hosts(set: impl IntoIterator<Item = impl std::borrow::Borrow<u8>>) -> String {
    let v: Vec<String> = set
        .into_iter()
        .map(|h| format!(".{}", h.borrow()))
        .collect();
    format!("[{}]", v.join(" "))
}

fn expect_done(outcome: &Outcome, what: &str) -> Result<(), String> {
    match outcome {
        Outcome::Done => Ok(()),
        other => Err(format!("{what}: {other:?}")),
    }
}

/// Sends `call` once and says what it did; an unexpected answer is an `Err`.
fn perform(call: &Call) -> Result<Outcome, String> {
    let (path, body) = match call {
        Call::RequestPool => (
            "/IpamDriver.RequestPool",
            format!(
                r#"{{"AddressSpace":"local","Pool":"{POOL}","SubPool":"","Options":{{}},"V6":false}}"#
            ),
        ),
        Call::RequestAddress => (
            "/IpamDriver.RequestAddress",
            format!(r#"{{"PoolID":"{POOL_ID}","Address":"","Options":null}}"#),
        ),
        Call::ReleaseAddress { host } => (
            "/IpamDriver.ReleaseAddress",
            format!(r#"{{"PoolID":"{POOL_ID}","Address":"{}"}}"#, address(*host)),
        ),
        Call::CreateNetwork { net } => (
            "/NetworkDriver.CreateNetwork",
            format!(
                r#"{{"NetworkID":"{}","Options":{{"com.docker.network.generic":{{}}}},"IPv4Data":[{{"AddressSpace":"local","Pool":"10.{n}.0.0/24","Gateway":"10.{n}.0.1/24"}}],"IPv6Data":[]}}"#,
                network_id(*net),
                n = 80 + net
            ),
        ),
        Call::CreateEndpoint { net, ep } => (
            "/NetworkDriver.CreateEndpoint",
            create_endpoint_body(*net, *ep),
        ),
        Call::DeleteEndpoint { net, ep } => {
            ("/NetworkDriver.DeleteEndpoint", endpoint_body(*net, *ep))
        }
    };
    let (status, answer) = post(path, &body)?;
    match (call, status) {
        (Call::RequestAddress, 200) => {
            let v: serde_json::Value =
                serde_json::from_str(&answer).map_err(|e| format!("{path}: {e}: {answer}"))?;
            let host = v["Address"]
                .as_str()
                .and_then(|a| a.strip_prefix("10.77.0."))
                .and_then(|a| a.strip_suffix("/27"))
                .and_then(|h| h.parse::<u8>().ok())
                .ok_or_else(|| format!("{path}: unexpected answer {answer}"))?;
            Ok(Outcome::Address(host))
        }
        (Call::RequestPool, 200) if !answer.contains(&format!(r#""PoolID":"{POOL_ID}""#)) => {
            Err(format!("{path}: PoolID {POOL_ID} expected: {answer}"))
        }
        (Call::RequestAddress, 500) if answer.contains("no available addresses") => {
            Ok(Outcome::Exhausted)
        }
        (_, 200) => Ok(Outcome::Done),
        _ => Err(format!("{call:?}: {status} {answer}")),
    }
}

/// Sends `step` (twice at once if `dup`) and acknowledges the first answer
/// at once (`ack`); a second copy must agree before the next call.
pub fn send_step(
    step: &Step,
    ack: &dyn Fn(&Outcome) -> Result<(), String>,
) -> Result<Outcome, String> {
    if !step.dup {
        let outcome = perform(&step.call)?;
        ack(&outcome)?;
        return Ok(outcome);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        for _ in 0..2 {
            let tx = tx.clone();
            s.spawn(move || {
                let _ = tx.send(perform(&step.call));
            });
        }
        let first = rx.recv().map_err(|e| e.to_string())??;
        ack(&first)?;
        let second = rx.recv().map_err(|e| e.to_string())??;
        if second != first {
            return Err(format!(
                "the two copies of {step:?} were answered {first:?} and {second:?}"
            ));
        }
        Ok(first)
    })
}

fn load(
    plan: &Plan,
    mut model: Model,
    channel: &Channel,
    plugin: &mut Child,
) -> Result<(), String> {
    let mut rng = Rng(plan.seed);
    for acks in 0..MAX_STEPS {
        let step = model.choose(&mut rng);
        model.begin(&step);
        channel.send(&Line::Intent(step.clone()))?;
        if let Cut::GuestSysrq { acks: at, us } = plan.cut
            && acks == at
        {
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_micros(us));
                // emergency reboot, no sync: qemu (-no-reboot) exits
                let _ = std::fs::write("/proc/sysrq-trigger", "b");
            });
        }
        let outcome = send_step(&step, &|o| channel.send(&Line::Ack(o.clone())))?;
        model.apply(&outcome)?;
        if let Some(status) = plugin.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("the plugin exited ({status}) during the load"));
        }
    }
    Err(format!(
        "{MAX_STEPS} calls and no cut came (the host's cut {:?} was never made)",
        plan.cut
    ))
}
