//! A real DHCP server for tests: Debian's `dnsmasq`, serving one subnet in
//! a network namespace at the far end of a veth whose near end is the
//! parent under test.

use crate::{Error, NetNs, Result, eventually, ip};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The `dnsmasq` binary, or an error saying how to get it.
pub fn dnsmasq_binary() -> Result<&'static str> {
    ["/usr/sbin/dnsmasq", "/sbin/dnsmasq", "/usr/bin/dnsmasq"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or_else(|| Error::new("no dnsmasq binary (apt-get install dnsmasq-base)"))
}

/// The subnet a [`DhcpServer`] serves.
pub const SERVER_ADDRESS: &str = "10.77.0.1";
/// The router option it hands out.
pub const ROUTER: &str = "10.77.0.254";

/// One line of the server's lease file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseLine {
    /// When the lease ends (seconds since the epoch).
    pub expires: u64,
    /// The client's hardware address.
    pub mac: String,
    /// The leased address.
    pub address: String,
    /// The client identifier as dnsmasq prints it (`00:65:...`).
    pub client_id: String,
}

/// dnsmasq serving DHCP in its own namespace; stopped (and the namespace
/// deleted) on drop.
pub struct DhcpServer {
    /// The server's namespace.
    pub ns: NetNs,
    child: Option<Child>,
    dir: tempfile::TempDir,
    args: Vec<String>,
}

impl DhcpServer {
    /// Moves `peer` (the far end of the parent's veth, in `near`) into a new
    /// namespace and serves DHCP there: `first`..`last` of 10.77.0.0/24,
    /// leases of `lease` (dnsmasq's minimum is 2m), router [`ROUTER`].
    /// `extra` adds dnsmasq arguments.
    pub fn start(
        near: &NetNs,
        peer: &str,
        first: &str,
        last: &str,
        lease: &str,
        extra: &[&str],
    ) -> Result<DhcpServer> {
        let bin = dnsmasq_binary()?;
        let ns = NetNs::new("dhcps")?;
        ip(&["-n", &near.name, "link", "set", peer, "netns", &ns.name])?;
        ip(&["-n", &ns.name, "link", "set", peer, "up"])?;
        ip(&[
            "-n",
            &ns.name,
            "addr",
            "add",
            &format!("{SERVER_ADDRESS}/24"),
            "dev",
            peer,
        ])?;
        let dir = tempfile::tempdir().map_err(|e| Error::with("tempdir", e))?;
        let mut args: Vec<String> = vec![
            bin.to_string(),
            "--keep-in-foreground".into(),
            "--conf-file=/dev/null".into(),
            "--port=0".into(),
            "--user=root".into(),
            "--bind-interfaces".into(),
            format!("--interface={peer}"),
            format!("--dhcp-range={first},{last},255.255.255.0,{lease}"),
            format!("--dhcp-option=3,{ROUTER}"),
            format!("--dhcp-leasefile={}", dir.path().join("leases").display()),
            format!("--pid-file={}", dir.path().join("pid").display()),
            "--dhcp-authoritative".into(),
            "--log-dhcp".into(),
            format!("--log-facility={}", dir.path().join("log").display()),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        let mut server = DhcpServer {
            ns,
            child: None,
            dir,
            args,
        };
        server.resume()?;
        Ok(server)
    }

    /// Starts the server again after [`DhcpServer::stop`] (its leases kept).
    pub fn resume(&mut self) -> Result<()> {
        let child = Command::new(crate::ip_binary()?)
            .args(["netns", "exec", &self.ns.name])
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Error::with("starting dnsmasq", e))?;
        self.child = Some(child);
        let pid = self.dir.path().join("pid");
        if !eventually(crate::GUARD, || pid.exists()) {
            return Err(Error::new(format!("dnsmasq did not start: {}", self.log())));
        }
        Ok(())
    }

    /// Serves `first`..`last` from the next [`DhcpServer::resume`] on, with
    /// its lease file emptied: a server that forgot every lease.
    pub fn forget_and_serve(&mut self, first: &str, last: &str, lease: &str) {
        for arg in &mut self.args {
            if arg.starts_with("--dhcp-range=") {
                *arg = format!("--dhcp-range={first},{last},255.255.255.0,{lease}");
            }
        }
        let _ = std::fs::write(self.lease_file(), "");
    }

    /// From the next [`DhcpServer::resume`] on, whether the server is
    /// authoritative (the default here). A non-authoritative one, like ISC
    /// dhcpd's default and dnsmasq's own, stays silent at the INIT-REBOOT
    /// of a client it has no lease for, and NAKs its unicast renewals.
    pub fn set_authoritative(&mut self, on: bool) {
        const FLAG: &str = "--dhcp-authoritative";
        self.args.retain(|a| a != FLAG);
        if on {
            self.args.push(FLAG.into());
        }
    }

    /// Stops the server (a silent LAN).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(self.dir.path().join("pid"));
    }

    /// The lease file's path.
    pub fn lease_file(&self) -> PathBuf {
        self.dir.path().join("leases")
    }

    /// The server's log (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// The leases the server has written down.
    pub fn leases(&self) -> Vec<LeaseLine> {
        let text = std::fs::read_to_string(self.lease_file()).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                Some(LeaseLine {
                    expires: f.first()?.parse().ok()?,
                    mac: f.get(1)?.to_string(),
                    address: f.get(2)?.to_string(),
                    client_id: f.get(4)?.to_string(),
                })
            })
            .collect()
    }

    /// Waits until `cond` holds for the lease file.
    pub fn wait_leases(&self, what: &str, cond: impl Fn(&[LeaseLine]) -> bool) -> Result<()> {
        if eventually(crate::GUARD, || cond(&self.leases())) {
            Ok(())
        } else {
            Err(Error::new(format!(
                "lease file never showed {what}: {:?}\nlog:\n{}",
                self.leases(),
                self.log()
            )))
        }
    }
}

/// How dnsmasq prints a client identifier: hex bytes joined by colons.
pub fn client_id_text(id: &[u8]) -> String {
    id.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl Drop for DhcpServer {
    fn drop(&mut self) {
        self.stop();
    }
}
