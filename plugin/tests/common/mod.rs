//! Shared rig for system tests of the real `ipvlan-rs` binary: a private
//! network namespace, the plugin process, and a plain HTTP/1.1 client that
//! speaks to the socket the way the engine does (POST, no Content-Type).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a test waits for an event (a socket served, a link deleted by
/// the reaper) before it fails. Only a guard: every wait polls for its
/// event and returns as soon as it happens, so a slow or loaded machine
/// makes a test slower, never red.
pub const GUARD: Duration = Duration::from_secs(60);

/// Run a command, panicking with its output if it fails.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Tests here need root (network namespaces, links). Fail loudly otherwise.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "system tests need root (network namespaces and links); run as root"
    );
}

/// A network namespace deleted on drop, with veth parents inside.
pub struct NetNs {
    pub name: String,
}

impl NetNs {
    pub fn new(tag: &str) -> NetNs {
        require_root();
        sweep_stale_namespaces();
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("ivrs-{tag}{n}-{}", std::process::id());
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        sh(&["ip", "netns", "add", &name]);
        sh(&["ip", "-n", &name, "link", "set", "lo", "up"]);
        NetNs { name }
    }

    /// A veth pair `name` / `name`p, both up, as a parent interface.
    pub fn add_veth_parent(&self, name: &str) {
        let peer = format!("{name}p");
        sh(&[
            "ip", "-n", &self.name, "link", "add", name, "type", "veth", "peer", "name", &peer,
        ]);
        sh(&["ip", "-n", &self.name, "link", "set", name, "up"]);
        sh(&["ip", "-n", &self.name, "link", "set", &peer, "up"]);
    }

    /// Names of the links in the namespace.
    pub fn links(&self) -> Vec<String> {
        let out = sh(&["ip", "-n", &self.name, "-o", "link", "show"]);
        out.lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .collect()
    }

    /// Container links (`ivr*`) in the namespace.
    pub fn container_links(&self) -> Vec<String> {
        self.links()
            .into_iter()
            .filter(|l| l.starts_with(ipvlan_driver::SLAVE_PREFIX))
            .collect()
    }

    /// Whether the link `name` is gone within `within` (DeleteEndpoint
    /// answers before the reaper thread has deleted the link).
    pub fn link_gone_within(&self, name: &str, within: Duration) -> bool {
        eventually(within, || self.link_details(name).is_none())
    }

    /// The ifindex of the link `name`, or None.
    pub fn link_index(&self, name: &str) -> Option<String> {
        let details = self.link_details(name)?;
        details.split(':').next().map(|i| i.trim().to_string())
    }

    /// `ip -d link show` of one link, or None.
    pub fn link_details(&self, name: &str) -> Option<String> {
        let out = Command::new("ip")
            .args(["-n", &self.name, "-d", "link", "show", "dev", name])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Remove namespaces left by killed runs (their PID is gone).
fn sweep_stale_namespaces() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        if let Some(pid) = name
            .strip_prefix("ivrs-")
            .and_then(|r| r.rsplit('-').next())
            && let Ok(pid) = pid.parse::<u32>()
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// The plugin binary, running in a namespace, killed on drop.
pub struct Plugin {
    pub child: Child,
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    pub log: PathBuf,
    pub netns: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_ipvlan-rs")
}

impl Plugin {
    /// Start in `netns` with a fresh temp state dir.
    pub fn start(netns: Option<&str>, env: &[(&str, &str)]) -> Plugin {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("p.sock");
        let state = dir.path().join("state");
        let mut p = Plugin::start_with(netns, &socket, &state, env);
        p._dir = Some(dir);
        p
    }

    /// Start on a given socket and state dir.
    pub fn start_with(
        netns: Option<&str>,
        socket: &Path,
        state_dir: &Path,
        env: &[(&str, &str)],
    ) -> Plugin {
        let log = state_dir.with_extension("log");
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, binary()]);
                c
            }
            None => Command::new(binary()),
        };
        cmd.arg("--socket")
            .arg(socket)
            .arg("--state-dir")
            .arg(state_dir)
            .arg("--log-level")
            .arg("debug");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let logfile = std::fs::File::create(&log).unwrap();
        cmd.stdout(Stdio::null()).stderr(logfile);
        let child = cmd.spawn().unwrap();
        let p = Plugin {
            child,
            socket: socket.to_path_buf(),
            state_dir: state_dir.to_path_buf(),
            log,
            netns: netns.map(String::from),
            _dir: None,
        };
        p.wait_ready();
        p
    }

    fn wait_ready(&self) {
        if !eventually(GUARD, || UnixStream::connect(&self.socket).is_ok()) {
            panic!(
                "plugin did not serve {} within {GUARD:?}; log:\n{}",
                self.socket.display(),
                self.log_text()
            );
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn post(&self, path: &str, body: &str) -> Reply {
        request(&self.socket, "POST", path, body.as_bytes())
    }

    /// SIGKILL, as a crash.
    pub fn kill9(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::SIGKILL,
        );
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::SIGTERM,
        );
        self.child.wait().unwrap()
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A reply: status and parsed JSON body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("reply is not JSON ({e}): {:?}", self.body))
    }

    /// A failure in the documented shape: both fields, same non-empty text.
    pub fn assert_error(&self, status: u16) -> String {
        assert_eq!(self.status, status, "{}", self.body);
        let v = self.json();
        let err = v["Err"].as_str().unwrap_or_default().to_string();
        assert!(!err.is_empty(), "no Err in {}", self.body);
        assert_eq!(
            v["Error"].as_str(),
            Some(err.as_str()),
            "Err and Error differ: {}",
            self.body
        );
        err
    }
}

/// One HTTP/1.1 request the way the engine sends it: `Accept` only, no
/// `Content-Type`, `Content-Length` always.
pub fn request(socket: &Path, method: &str, path: &str, body: &[u8]) -> Reply {
    let mut s =
        UnixStream::connect(socket).unwrap_or_else(|e| panic!("connect {}: {e}", socket.display()));
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: plugin.moby.localhost\r\nAccept: application/vnd.docker.plugins.v1.2+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    // a server may answer (and close) before reading a body it refuses
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP reply: {text:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Reply { status, body }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// The captured requests of a fixture file: (scenario, path, raw body).
pub fn fixture(name: &str) -> Vec<(String, String, String)> {
    let path = format!("{}/../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            (s("scenario"), s("path"), s("raw"))
        })
        .collect()
}

/// Whether this kernel can make ipvlan links (this CI host cannot).
pub fn kernel_has_ipvlan() -> bool {
    let ns = format!("ivrs-probe-{}", std::process::id());
    let _ = Command::new("ip").args(["netns", "add", &ns]).status();
    let ok = Command::new("ip")
        .args([
            "-n", &ns, "link", "add", "p0", "type", "veth", "peer", "name", "p1",
        ])
        .status()
        .is_ok_and(|s| s.success())
        && Command::new("ip")
            .args([
                "-n", &ns, "link", "add", "iv0", "link", "p0", "type", "ipvlan", "mode", "l2",
            ])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    ok
}

/// Polls `cond` every 5 ms until it holds (true) or `within` has passed.
pub fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
