//! The rig the VM cases run on: the driver under test, its captured log, and helpers for
//! requests, `ip` and ping.

use ipvlan_driver::{Driver, DriverConfig, Netlink};
use protocol::network::{
    CreateEndpointRequest, CreateNetworkRequest, EndpointRequest, JoinRequest, JoinResponse,
    NetworkRequest,
};
use serde_json::json;
use std::process::Command;

pub(crate) type Result<T = ()> = std::result::Result<T, String>;

macro_rules! check {
    ($cond:expr, $($fmt:tt)*) => { if !$cond { return Err(format!($($fmt)*)); } };
}

/// The driver's log lines, kept for cases that check what it said.
#[derive(Clone, Default)]
pub(crate) struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    pub(crate) fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    pub(crate) fn since(&self, mark: usize) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()[mark..]).into_owned()
    }
}

pub(crate) struct Rig {
    pub(crate) nl: Netlink,
    pub(crate) log: Captured,
    pub(crate) state: std::path::PathBuf,
    pub(crate) driver: Option<Driver>,
    pub(crate) next: u32,
}

impl Rig {
    pub(crate) fn driver(&self) -> &Driver {
        self.driver.as_ref().unwrap()
    }

    pub(crate) fn reopen(&mut self) {
        if let Some(d) = self.driver.take() {
            d.close();
        }
        self.driver = Some(Driver::open(&self.state, DriverConfig::default()).unwrap());
    }

    pub(crate) fn id(&mut self, tag: &str) -> String {
        // random-looking like the engine's IDs: distinct from the first character
        self.next += 1;
        format!(
            "{:08x}{tag}{:0>55}",
            self.next.wrapping_mul(0x9e37_79b9),
            self.next
        )
    }

    pub(crate) async fn dummy(&self, name: &str) -> Result {
        self.nl
            .create_dummy(name, "test-parent", 0, None)
            .await
            .map_err(|e| e.to_string())
    }

    pub(crate) async fn network(
        &self,
        id: &str,
        opts: serde_json::Value,
        subnet: &str,
        gw: Option<&str>,
    ) -> Result {
        let mut v4 = json!({"AddressSpace": "local", "Pool": subnet});
        if let Some(g) = gw {
            v4["Gateway"] = json!(g);
        }
        let req: CreateNetworkRequest = serde_json::from_value(json!({
            "NetworkID": id, "Options": {"com.docker.network.generic": opts}, "IPv4Data": [v4], "IPv6Data": []
        }))
        .unwrap();
        self.driver()
            .create_network(&req)
            .await
            .map_err(|e| e.to_string())
    }

    /// A new ipvlan network in `mode` on a new dummy parent `parent`.
    pub(crate) async fn mode_network(
        &mut self,
        parent: &str,
        mode: &str,
        subnet: &str,
    ) -> Result<String> {
        self.dummy(parent).await?;
        let nid = self.id("n");
        self.network(
            &nid,
            json!({"parent": parent, "ipvlan_mode": mode}),
            subnet,
            None,
        )
        .await?;
        Ok(nid)
    }

    pub(crate) async fn endpoint(&self, nid: &str, eid: &str, addr: &str) -> Result<JoinResponse> {
        let req: CreateEndpointRequest = serde_json::from_value(json!({
            "NetworkID": nid, "EndpointID": eid, "Interface": {"Address": addr, "AddressIPv6": "", "MacAddress": ""}
        }))
        .unwrap();
        self.driver()
            .create_endpoint(&req)
            .await
            .map_err(|e| e.to_string())?;
        let join: JoinRequest =
            serde_json::from_value(json!({"NetworkID": nid, "EndpointID": eid, "SandboxKey": ""}))
                .unwrap();
        self.driver().join(&join).await.map_err(|e| e.to_string())
    }

    /// The host-side link name of an endpoint (EndpointOperInfo).
    pub(crate) async fn link_of(&self, nid: &str, eid: &str) -> Result<String> {
        let info = self
            .driver()
            .endpoint_info(&endpoint_request(nid, eid))
            .await
            .map_err(|e| e.to_string())?;
        Ok(info["link"].as_str().unwrap_or_default().to_string())
    }

    /// The driver's operator view (`GET /status`'s driver part).
    pub(crate) async fn status(&self) -> Result<ipvlan_driver::DriverStatus> {
        self.driver().status().await.map_err(|e| e.to_string())
    }

    pub(crate) async fn exists(&self, name: &str) -> bool {
        self.nl.get(name).await.unwrap().is_some()
    }

    /// DeleteEndpoint, then the reaper's deletion of the link (DeleteEndpoint
    /// answers before it).
    pub(crate) async fn delete_endpoint(&self, nid: &str, eid: &str) -> Result {
        self.driver()
            .delete_endpoint(&endpoint_request(nid, eid))
            .await
            .map_err(|e| e.to_string())?;
        self.driver().flush_deletions().await;
        Ok(())
    }

    pub(crate) async fn delete_network(&self, nid: &str) -> Result {
        self.driver()
            .delete_network(&network_request(nid))
            .await
            .map_err(|e| e.to_string())
    }
}

/// A request naming endpoint `eid` of network `nid` (EndpointOperInfo,
/// DeleteEndpoint).
pub(crate) fn endpoint_request(nid: &str, eid: &str) -> EndpointRequest {
    serde_json::from_value(json!({"NetworkID": nid, "EndpointID": eid})).unwrap()
}

/// A request naming network `nid` (DeleteNetwork).
pub(crate) fn network_request(nid: &str) -> NetworkRequest {
    serde_json::from_value(json!({"NetworkID": nid})).unwrap()
}

pub(crate) fn ip(args: &str) -> Result {
    let out = Command::new("/usr/local/sbin/ip")
        .args(args.split_whitespace())
        .output()
        .map_err(|e| e.to_string())?;
    check!(
        out.status.success(),
        "ip {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Moves `link` into a new namespace `ns` as eth0 with `addr`, up, as the
/// engine does for a container.
pub(crate) fn into_container(link: &str, ns: &str, addr: &str) -> Result {
    ip(&format!("netns add {ns}"))?;
    ip(&format!("link set {link} netns {ns}"))?;
    ip(&format!("-n {ns} link set {link} name eth0"))?;
    ip(&format!("-n {ns} addr add {addr} dev eth0"))?;
    ip(&format!("-n {ns} link set eth0 up"))
}

/// One ping from namespace `ns` to `to` answers (`over` names the path).
/// `-W 10` only guards against a lost reply (the first needs neighbour
/// resolution, and under TCG on a loaded host each step is slow): the time
/// it takes is no part of the outcome.
pub(crate) fn ping_from(ns: &str, to: &str, over: &str) -> Result {
    let out = Command::new("/usr/local/sbin/ip")
        .args(["netns", "exec", ns, "ping", "-c", "1", "-W", "10", to])
        .output()
        .map_err(|e| e.to_string())?;
    check!(
        out.status.success(),
        "ping over {over}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
