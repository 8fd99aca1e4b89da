//! Network namespaces with veth parents, and the `ip` command that builds
//! and reads them.

use crate::{Error, Result, eventually};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Prefix of every namespace this kit creates; the rest is a tag, a
/// counter and the creating process's PID.
const PREFIX: &str = "ivrs-";

/// The `ip` binary (iproute2), wherever this system keeps it.
pub fn ip_binary() -> Result<&'static str> {
    [
        "/usr/sbin/ip",
        "/sbin/ip",
        "/usr/bin/ip",
        "/bin/ip",
        "/usr/local/sbin/ip",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .ok_or_else(|| Error::new("no ip binary (apt-get install iproute2)"))
}

/// Runs `ip ARGS` and returns its output; an error carries its stderr.
pub fn ip(args: &[&str]) -> Result<String> {
    let out = Command::new(ip_binary()?)
        .args(args)
        .output()
        .map_err(|e| Error::with(format!("ip {}", args.join(" ")), e))?;
    if !out.status.success() {
        return Err(Error::with(
            format!("ip {}", args.join(" ")),
            String::from_utf8_lossy(&out.stderr).trim(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Namespaces and links need root: say so instead of failing obscurely.
pub fn require_root() -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(Error::new(
            "system tests need root (network namespaces and links); run as root",
        ))
    }
}

/// A network namespace of its own, deleted (with everything in it) on drop.
pub struct NetNs {
    /// `ip netns` name.
    pub name: String,
}

impl NetNs {
    /// Creates the namespace `ivrs-<tag><n>-<pid>` with its loopback up,
    /// after removing those that killed runs left (their PID is gone).
    pub fn new(tag: &str) -> Result<NetNs> {
        require_root()?;
        sweep_stale_namespaces();
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("{PREFIX}{tag}{n}-{}", std::process::id());
        let _ = Command::new(ip_binary()?)
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        ip(&["netns", "add", &name])?;
        let ns = NetNs { name };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// A veth pair `name` / `name`p, both up, as a parent interface.
    pub fn add_veth_parent(&self, name: &str) -> Result<()> {
        let peer = format!("{name}p");
        ip(&[
            "-n", &self.name, "link", "add", name, "type", "veth", "peer", "name", &peer,
        ])?;
        ip(&["-n", &self.name, "link", "set", name, "up"])?;
        ip(&["-n", &self.name, "link", "set", &peer, "up"])?;
        Ok(())
    }

    /// Names of the links in the namespace.
    pub fn links(&self) -> Result<Vec<String>> {
        let out = ip(&["-n", &self.name, "-o", "link", "show"])?;
        Ok(out
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .collect())
    }

    /// Names of the links in the namespace starting with `prefix`.
    pub fn links_with_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self
            .links()?
            .into_iter()
            .filter(|l| l.starts_with(prefix))
            .collect())
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

    /// Runs `f` on a thread of its own inside the namespace (to reach a
    /// TCP listener there, for instance) and returns what it returns.
    pub fn run_in<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let ns = std::fs::File::open(&path)
                        .map_err(|e| Error::with(format!("opening {path}"), e))?;
                    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
                        .map_err(|e| Error::with(format!("entering {path}"), e))?;
                    Ok(f())
                })
                .join()
                .map_err(|_| Error::new(format!("the thread in {path} panicked")))?
        })
    }

    /// Runs the future `f` to its end on a runtime of its own whose thread
    /// is inside the namespace (packet sockets open in the namespace of the
    /// thread that opens them).
    pub fn block_on<F: std::future::Future + Send>(&self, f: F) -> Result<F::Output>
    where
        F::Output: Send,
    {
        self.run_in(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| rt.block_on(f))
                .map_err(|e| Error::with("starting a runtime".to_string(), e))
        })?
    }

    /// The MAC address `ip link` shows for the Ethernet link `name`
    /// (`aa:bb:cc:dd:ee:ff`), or None.
    pub fn link_mac(&self, name: &str) -> Option<String> {
        let details = self.link_details(name)?;
        let mut words = details.split_whitespace();
        words
            .find(|w| *w == "link/ether")
            .and_then(|_| words.next())
            .map(str::to_string)
    }

    /// The ifindex and MAC address of the Ethernet link `name`, or None.
    pub fn link_index_and_mac(&self, name: &str) -> Option<(u32, [u8; 6])> {
        let index = self.link_index(name)?.parse().ok()?;
        let bytes: Vec<u8> = self
            .link_mac(name)?
            .split(':')
            .map(|b| u8::from_str_radix(b, 16))
            .collect::<std::result::Result<_, _>>()
            .ok()?;
        Some((index, bytes.try_into().ok()?))
    }

    /// `ip -d link show` of one link, or None.
    pub fn link_details(&self, name: &str) -> Option<String> {
        ip(&["-n", &self.name, "-d", "link", "show", "dev", name]).ok()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// Removes namespaces left by killed runs (their PID is gone).
fn sweep_stale_namespaces() {
    let Ok(out) = ip(&["netns", "list"]) else {
        return;
    };
    for line in out.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        if let Some(pid) = name.strip_prefix(PREFIX).and_then(|r| r.rsplit('-').next())
            && let Ok(pid) = pid.parse::<u32>()
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

/// Whether this kernel can make ipvlan links (this CI host cannot).
pub fn kernel_has_ipvlan() -> bool {
    let ns = format!("{PREFIX}probe-{}", std::process::id());
    let _ = ip(&["netns", "add", &ns]);
    let ok = ip(&[
        "-n", &ns, "link", "add", "p0", "type", "veth", "peer", "name", "p1",
    ])
    .is_ok()
        && ip(&[
            "-n", &ns, "link", "add", "iv0", "link", "p0", "type", "ipvlan", "mode", "l2",
        ])
        .is_ok();
    let _ = ip(&["netns", "del", &ns]);
    ok
}
