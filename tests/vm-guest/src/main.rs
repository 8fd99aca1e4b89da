//! Kernel tests of the ipvlan-rs driver on a kernel that has ipvlan, 802.1Q
//! and dummy links: run as `/test` inside the qemu VM (tests/rig/vm).
//!
//! Each case prints `CASE <name>: PASS` or `CASE <name>: FAIL <why>`; the
//! process exits non-zero if any case failed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ipvlan_driver::options::IpvlanMode;
use ipvlan_driver::{Driver, DriverConfig, Netlink};
use protocol::network::{
    CreateEndpointRequest, CreateNetworkRequest, EndpointRequest, JoinRequest, JoinResponse,
    NetworkRequest,
};
use serde_json::json;
use std::path::Path;
use std::process::Command;

type Result<T = ()> = std::result::Result<T, String>;

macro_rules! check {
    ($cond:expr, $($fmt:tt)*) => { if !$cond { return Err(format!($($fmt)*)); } };
}

/// The driver's log lines, kept for cases that check what it said.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

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
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    fn since(&self, mark: usize) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()[mark..]).into_owned()
    }
}

struct Rig {
    nl: Netlink,
    log: Captured,
    state: std::path::PathBuf,
    driver: Option<Driver>,
    next: u32,
}

impl Rig {
    fn driver(&self) -> &Driver {
        self.driver.as_ref().unwrap()
    }

    fn reopen(&mut self) {
        if let Some(d) = self.driver.take() {
            d.close();
        }
        self.driver = Some(Driver::open(&self.state, DriverConfig::default()).unwrap());
    }

    fn id(&mut self, tag: &str) -> String {
        // random-looking like the engine's IDs: distinct from the first character
        self.next += 1;
        format!(
            "{:08x}{tag}{:0>55}",
            self.next.wrapping_mul(0x9e37_79b9),
            self.next
        )
    }

    async fn dummy(&self, name: &str) -> Result {
        self.nl
            .create_dummy(name, "test-parent", 0, None)
            .await
            .map_err(|e| e.to_string())
    }

    async fn network(
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
    async fn mode_network(&mut self, parent: &str, mode: &str, subnet: &str) -> Result<String> {
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

    async fn endpoint(&self, nid: &str, eid: &str, addr: &str) -> Result<JoinResponse> {
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
    async fn link_of(&self, nid: &str, eid: &str) -> Result<String> {
        let info = self
            .driver()
            .endpoint_info(&endpoint_request(nid, eid))
            .await
            .map_err(|e| e.to_string())?;
        Ok(info["link"].as_str().unwrap_or_default().to_string())
    }

    async fn exists(&self, name: &str) -> bool {
        self.nl.get(name).await.unwrap().is_some()
    }

    async fn delete_network(&self, nid: &str) -> Result {
        self.driver()
            .delete_network(&network_request(nid))
            .await
            .map_err(|e| e.to_string())
    }
}

/// A request naming endpoint `eid` of network `nid` (EndpointOperInfo,
/// DeleteEndpoint).
fn endpoint_request(nid: &str, eid: &str) -> EndpointRequest {
    serde_json::from_value(json!({"NetworkID": nid, "EndpointID": eid})).unwrap()
}

/// A request naming network `nid` (DeleteNetwork).
fn network_request(nid: &str) -> NetworkRequest {
    serde_json::from_value(json!({"NetworkID": nid})).unwrap()
}

fn ip(args: &str) -> Result {
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

async fn modes_and_flags(rig: &mut Rig) -> Result {
    for (mi, mode) in ["l2", "l3", "l3s"].iter().enumerate() {
        for (fi, flag) in ["bridge", "private", "vepa"].iter().enumerate() {
            let parent = format!("pm{mi}{fi}");
            rig.dummy(&parent).await?;
            let nid = rig.id("n");
            rig.network(
                &nid,
                json!({"parent": parent, "ipvlan_mode": mode, "ipvlan_flag": flag}),
                "10.50.0.0/24",
                Some("10.50.0.1/24"),
            )
            .await?;
            let eid = rig.id("e");
            let resp = rig.endpoint(&nid, &eid, "10.50.0.2/24").await?;
            let link = ipvlan_driver::slave_name(&eid);
            let got = rig
                .nl
                .get(&link)
                .await
                .unwrap()
                .ok_or(format!("{link} missing after Join"))?;
            check!(
                got.kind.as_deref() == Some("ipvlan"),
                "{link} kind {:?}",
                got.kind
            );
            let want = match *mode {
                "l2" => IpvlanMode::L2,
                "l3" => IpvlanMode::L3,
                _ => IpvlanMode::L3s,
            };
            check!(
                got.ipvlan_mode == Some(want),
                "{link} mode {:?}, want {mode}",
                got.ipvlan_mode
            );
            let parent_index = rig.nl.get(&parent).await.unwrap().unwrap().index;
            check!(got.parent == Some(parent_index), "{link} not on {parent}");
            if *mode == "l2" {
                check!(
                    resp.gateway.map(|g| g.to_string()) == Some("10.50.0.1".into()),
                    "l2 gateway {:?}",
                    resp.gateway
                );
                check!(
                    resp.static_routes.is_empty(),
                    "l2 routes {:?}",
                    resp.static_routes
                );
            } else {
                check!(resp.gateway.is_none(), "{mode} must not set a gateway");
                check!(
                    resp.static_routes.len() == 1
                        && resp.static_routes[0].destination.to_string() == "0.0.0.0/0",
                    "{mode} routes {:?}",
                    resp.static_routes
                );
            }
            check!(resp.disable_gateway_service, "gateway service not disabled");
            rig.driver()
                .delete_endpoint(&endpoint_request(&nid, &eid))
                .await
                .map_err(|e| e.to_string())?;
            // DeleteEndpoint answers before the reaper thread deletes the link
            rig.driver().flush_deletions().await;
            check!(!rig.exists(&link).await, "{link} left after DeleteEndpoint");
            rig.driver()
                .delete_network(&network_request(&nid))
                .await
                .map_err(|e| e.to_string())?;
            check!(
                rig.exists(&parent).await,
                "user parent {parent} was deleted"
            );
        }
    }
    Ok(())
}

async fn vlan_parent(rig: &mut Rig) -> Result {
    rig.dummy("vb0").await?;
    let nid = rig.id("n");
    rig.network(&nid, json!({"parent": "vb0.10"}), "10.51.0.0/24", None)
        .await?;
    let vlan = rig
        .nl
        .get("vb0.10")
        .await
        .unwrap()
        .ok_or("vb0.10 not created")?;
    check!(
        vlan.kind.as_deref() == Some("vlan"),
        "vb0.10 kind {:?}",
        vlan.kind
    );
    check!(vlan.up, "vb0.10 not up");
    let eid = rig.id("e");
    rig.endpoint(&nid, &eid, "10.51.0.2/24").await?;
    // a second network on the same created parent shares it
    let nid2 = rig.id("n");
    rig.network(&nid2, json!({"parent": "vb0.10"}), "10.52.0.0/24", None)
        .await?;
    rig.driver()
        .delete_endpoint(&endpoint_request(&nid, &eid))
        .await
        .map_err(|e| e.to_string())?;
    // DeleteEndpoint answers before the reaper thread deletes the link
    rig.driver().flush_deletions().await;
    rig.driver()
        .delete_network(&network_request(&nid))
        .await
        .map_err(|e| e.to_string())?;
    check!(
        rig.exists("vb0.10").await,
        "vb0.10 deleted while another network uses it"
    );
    rig.driver()
        .delete_network(&network_request(&nid2))
        .await
        .map_err(|e| e.to_string())?;
    check!(
        !rig.exists("vb0.10").await,
        "created vb0.10 left after its last network"
    );
    check!(rig.exists("vb0").await, "base vb0 deleted");
    // a VLAN link the user made is never deleted
    ip("link add link vb0 name vb0.20 type vlan id 20")?;
    let nid3 = rig.id("n");
    rig.network(&nid3, json!({"parent": "vb0.20"}), "10.53.0.0/24", None)
        .await?;
    rig.driver()
        .delete_network(&network_request(&nid3))
        .await
        .map_err(|e| e.to_string())?;
    check!(rig.exists("vb0.20").await, "user's vb0.20 was deleted");
    let nid4 = rig.id("n");
    let err = rig
        .network(&nid4, json!({"parent": "nobase.30"}), "10.54.0.0/24", None)
        .await
        .unwrap_err();
    check!(err.contains("nobase"), "missing base: {err}");
    Ok(())
}

/// `eth0.010`, `eth0.+10` and `eth0.10` are one VLAN of one device, so one
/// link `eth0.10` that the three networks share; a VLAN the user made under
/// another name is named in the error; after a reboot the shared parent is
/// re-created once, not once per network.
async fn vlan_ids_name_one_link(rig: &mut Rig) -> Result {
    rig.dummy("vn0").await?;
    let mut nets = Vec::new();
    for (i, parent) in ["vn0.010", "vn0.+10", "vn0.10"].into_iter().enumerate() {
        let nid = rig.id("n");
        rig.network(
            &nid,
            json!({ "parent": parent }),
            &format!("10.7{i}.0.0/24"),
            None,
        )
        .await
        .map_err(|e| format!("parent {parent}: {e}"))?;
        nets.push(nid);
    }
    check!(
        rig.exists("vn0.10").await && !rig.exists("vn0.010").await,
        "vn0.010 not created as vn0.10"
    );
    ip("link add link vn0 name uservlan type vlan id 30")?;
    let nid = rig.id("n");
    let err = rig
        .network(&nid, json!({"parent": "vn0.30"}), "10.73.0.0/24", None)
        .await
        .unwrap_err();
    check!(
        err.contains("VLAN 30") && err.contains("vn0") && err.contains("another name"),
        "a user's VLAN under another name: {err}"
    );
    check!(!rig.exists("vn0.30").await, "vn0.30 left");
    ip("link del uservlan")?;
    // the host rebooted: the created parent is gone, the records are not
    ip("link del vn0.10")?;
    let mark = rig.log.len();
    rig.reopen();
    rig.driver().reconcile().await.map_err(|e| e.to_string())?;
    let log = rig.log.since(mark);
    check!(rig.exists("vn0.10").await, "vn0.10 not re-created");
    check!(
        !log.contains("could not re-create parent")
            && log.matches("created parent missing; re-creating").count() == 1,
        "vn0.10 not re-created exactly once:\n{log}"
    );
    for nid in &nets {
        rig.delete_network(nid).await?;
    }
    check!(
        !rig.exists("vn0.10").await,
        "vn0.10 left after its networks"
    );
    ip("link del vn0")
}

/// An MTU above the parent's is refused at CreateNetwork, naming both; for
/// an 802.1Q parent still to be created, the device beneath it is the
/// limit; a network without a parent gets a dummy of its MTU.
async fn mtu_against_the_parent(rig: &mut Rig) -> Result {
    rig.dummy("mt0").await?;
    let nid = rig.id("n");
    let jumbo = |parent: Option<&str>| {
        let mut o = json!({"com.docker.network.driver.mtu": "9000"});
        if let Some(p) = parent {
            o["parent"] = json!(p);
        }
        o
    };
    let err = rig
        .network(&nid, jumbo(Some("mt0")), "10.74.0.0/24", None)
        .await
        .unwrap_err();
    check!(err.contains("mtu 9000 exceeds parent mt0's 1500"), "{err}");
    let err = rig
        .network(&nid, jumbo(Some("mt0.5")), "10.74.0.0/24", None)
        .await
        .unwrap_err();
    check!(
        err.contains("mtu 9000 exceeds parent mt0.5's device mt0's 1500"),
        "{err}"
    );
    check!(
        !rig.exists("mt0.5").await,
        "mt0.5 created for a refused network"
    );
    rig.network(&nid, jumbo(None), "10.74.0.0/24", Some("10.74.0.1/24"))
        .await?;
    let eid = rig.id("e");
    rig.endpoint(&nid, &eid, "10.74.0.2/24").await?;
    let link = rig.link_of(&nid, &eid).await?;
    let mtu = rig.nl.get(&link).await.unwrap().and_then(|l| l.mtu);
    check!(mtu == Some(9000), "{link} has MTU {mtu:?}");
    rig.driver()
        .delete_endpoint(&endpoint_request(&nid, &eid))
        .await
        .map_err(|e| e.to_string())?;
    rig.driver().flush_deletions().await;
    rig.delete_network(&nid).await?;
    ip("link del mt0")
}

async fn dummy_parent(rig: &mut Rig) -> Result {
    let nid = rig.id("d");
    rig.network(&nid, json!({}), "10.55.0.0/24", Some("10.55.0.1/24"))
        .await?;
    let dummy = ipvlan_driver::dummy_name(&nid);
    check!(
        rig.nl
            .get(&dummy)
            .await
            .unwrap()
            .and_then(|l| l.kind)
            .as_deref()
            == Some("dummy"),
        "{dummy} not a dummy link"
    );
    let eid = rig.id("e");
    let resp = rig.endpoint(&nid, &eid, "10.55.0.2/24").await?;
    check!(
        resp.gateway.is_none() && resp.static_routes.is_empty(),
        "internal network got a route: {resp:?}"
    );
    rig.driver()
        .delete_endpoint(&endpoint_request(&nid, &eid))
        .await
        .map_err(|e| e.to_string())?;
    // DeleteEndpoint answers before the reaper thread deletes the link
    rig.driver().flush_deletions().await;
    rig.driver()
        .delete_network(&network_request(&nid))
        .await
        .map_err(|e| e.to_string())?;
    check!(
        !rig.exists(&dummy).await,
        "{dummy} left after DeleteNetwork"
    );
    Ok(())
}

async fn shared_parent_conflicts(rig: &mut Rig) -> Result {
    rig.dummy("sp0").await?;
    let (a, b, c, d) = (rig.id("n"), rig.id("n"), rig.id("n"), rig.id("n"));
    rig.network(
        &a,
        json!({"parent": "sp0", "ipvlan_mode": "l2"}),
        "10.56.0.0/24",
        None,
    )
    .await?;
    let err = rig
        .network(
            &b,
            json!({"parent": "sp0", "ipvlan_mode": "l3"}),
            "10.57.0.0/24",
            None,
        )
        .await
        .unwrap_err();
    check!(
        err.contains("sp0") && err.contains("l3"),
        "mode conflict: {err}"
    );
    rig.network(
        &c,
        json!({"parent": "sp0", "ipvlan_mode": "l2"}),
        "10.58.0.0/24",
        None,
    )
    .await?;
    let err = rig
        .network(
            &d,
            json!({"parent": "sp0", "kind": "macvlan"}),
            "10.59.0.0/24",
            None,
        )
        .await
        .unwrap_err();
    check!(err.contains("macvlan"), "kind conflict: {err}");
    // the kernel agrees: macvlan beside ipvlan slaves is refused
    let eid = rig.id("e");
    rig.endpoint(&a, &eid, "10.56.0.2/24").await?;
    check!(
        ip("link add mvx link sp0 type macvlan mode bridge").is_err(),
        "kernel took macvlan beside ipvlan"
    );
    rig.driver()
        .delete_endpoint(&endpoint_request(&a, &eid))
        .await
        .map_err(|e| e.to_string())?;
    // DeleteEndpoint answers before the reaper thread deletes the link
    rig.driver().flush_deletions().await;
    for n in [&a, &c] {
        rig.driver()
            .delete_network(&network_request(n))
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Moves `link` into a new namespace `ns` as eth0 with `addr`, up, as the
/// engine does for a container.
fn into_container(link: &str, ns: &str, addr: &str) -> Result {
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
fn ping_from(ns: &str, to: &str, over: &str) -> Result {
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

/// Two endpoints of one network in two namespaces ping each other.
async fn traffic(rig: &mut Rig, mode: &str, n: u32) -> Result {
    let nid = rig
        .mode_network(&format!("tp{n}"), mode, "10.60.0.0/24")
        .await?;
    let mut links = Vec::new();
    for i in 0..2 {
        let eid = rig.id("e");
        rig.endpoint(&nid, &eid, &format!("10.60.0.{}/24", i + 2))
            .await?;
        links.push(rig.link_of(&nid, &eid).await?);
    }
    for (i, link) in links.iter().enumerate() {
        into_container(link, &format!("t{n}{i}"), &format!("10.60.0.{}/24", i + 2))?;
    }
    ping_from(&format!("t{n}0"), "10.60.0.3", &format!("ipvlan {mode}"))?;
    for i in 0..2 {
        ip(&format!("netns del t{n}{i}"))?;
    }
    Ok(())
}

/// Under churn, a released ipvlan link comes back through a container's
/// namespace and is given to the next endpoint: same link, same mode, and
/// traffic crosses it (l2 and l3). The reuse window is far longer than the
/// case (each `ip` call costs ~90 ms under TCG, more on a loaded host): the
/// machine's speed must not decide whether the link is kept.
async fn reused_links(rig: &mut Rig) -> Result {
    let state = rig.state.with_file_name("reuse.redb");
    let config = DriverConfig {
        link_reuse_window: std::time::Duration::from_secs(600),
        ..DriverConfig::default()
    };
    let driver = Driver::open(&state, config).map_err(|e| e.to_string())?;
    let saved = rig.driver.replace(driver);
    let result = reused_links_on(rig).await;
    if let Some(d) = rig.driver.take() {
        d.close();
    }
    rig.driver = saved;
    result
}

async fn reused_links_on(rig: &mut Rig) -> Result {
    for (n, (mode, expect)) in [("l2", IpvlanMode::L2), ("l3", IpvlanMode::L3)]
        .into_iter()
        .enumerate()
    {
        let parent = format!("ru{n}");
        let nid = rig.mode_network(&parent, mode, "10.62.0.0/24").await?;
        let (e0, e1, e2) = (rig.id("e"), rig.id("e"), rig.id("e"));
        rig.endpoint(&nid, &e0, "10.62.0.2/24").await?;
        rig.endpoint(&nid, &e1, "10.62.0.3/24").await?;
        let released = rig.link_of(&nid, &e0).await?;
        let fresh = rig.nl.get_with_shape(&released).await.unwrap();
        let index = fresh.as_ref().map(|(l, _)| l.index);
        // the engine's round trip: into a container as eth0 and back
        into_container(&released, "ruc", "10.62.0.2/24")?;
        ip("-n ruc link set eth0 down")?;
        ip(&format!("-n ruc link set eth0 name {released}"))?;
        ip(&format!("-n ruc link set {released} netns 1"))?;
        ip("netns del ruc")?;
        let back = rig.nl.get_with_shape(&released).await.unwrap();
        let changed = fresh
            .zip(back)
            .and_then(|((_, f), (_, b))| f.difference(&b));
        rig.driver()
            .delete_endpoint(&endpoint_request(&nid, &e0))
            .await
            .map_err(|e| e.to_string())?;
        check!(
            rig.exists(&released).await,
            "{mode}: {released} not kept (changed by the round trip: {changed:?})"
        );
        rig.endpoint(&nid, &e2, "10.62.0.4/24").await?;
        let reused = rig.link_of(&nid, &e2).await?;
        let link = rig.nl.get(&reused).await.unwrap();
        check!(
            reused == released && link.as_ref().map(|l| l.index) == index,
            "{mode}: {reused} is not the released {released}"
        );
        check!(
            link.and_then(|l| l.ipvlan_mode) == Some(expect),
            "{mode}: the reused link lost its mode"
        );
        for (i, (eid, addr)) in [(&e2, "10.62.0.4/24"), (&e1, "10.62.0.3/24")]
            .into_iter()
            .enumerate()
        {
            let link = rig.link_of(&nid, eid).await?;
            into_container(&link, &format!("ru{n}{i}"), addr)?;
        }
        ping_from(
            &format!("ru{n}0"),
            "10.62.0.3",
            &format!("a reused ipvlan {mode} link"),
        )?;
        for i in 0..2 {
            ip(&format!("netns del ru{n}{i}"))?;
        }
        rig.driver()
            .delete_network(&network_request(&nid))
            .await
            .map_err(|e| e.to_string())?;
        ip(&format!("link del {parent}"))?;
    }
    Ok(())
}

async fn reconcile_after_crash(rig: &mut Rig) -> Result {
    rig.dummy("rc0").await?;
    let nid = rig.id("n");
    rig.network(&nid, json!({"parent": "rc0.7"}), "10.61.0.0/24", None)
        .await?;
    let eid = rig.id("e");
    rig.endpoint(&nid, &eid, "10.61.0.2/24").await?;
    // a link left by a crash between link creation and reply: no endpoint owns it
    let rc = rig.nl.get("rc0.7").await.unwrap().unwrap();
    let stray = "ivr0000deadbeef";
    let kind = ipvlan_driver::LinkKind::IpVlan {
        mode: IpvlanMode::L2,
        flag: ipvlan_driver::options::IpvlanFlag::Bridge,
    };
    let group = rig.driver().link_group();
    rig.nl
        .create_slave(stray, rc.index, &kind, None, group)
        .await
        .map_err(|e| e.to_string())?;
    // the same, but made by another instance on this host: not ours
    // (on a parent of its own: deleting rc0.7 below deletes its slaves)
    let foreign = "ivr0000cafef00d";
    rig.dummy("fg0").await?;
    // and a dummy parent of a network of that other instance
    let foreign_dummy = "ivd0000cafef00d";
    rig.nl
        .create_dummy(foreign_dummy, "ipvlan-rs:other", group ^ 1, None)
        .await
        .map_err(|e| e.to_string())?;
    let fg = rig.nl.get("fg0").await.unwrap().unwrap();
    rig.nl
        .create_slave(foreign, fg.index, &kind, None, group ^ 1)
        .await
        .map_err(|e| e.to_string())?;
    // the created parent vanished while the plugin was down
    let live = rig.link_of(&nid, &eid).await?;
    ip("link del rc0.7")?;
    rig.reopen();
    rig.driver().reconcile().await.map_err(|e| e.to_string())?;
    check!(!rig.exists(stray).await, "stray {stray} survived reconcile");
    check!(
        rig.exists(foreign).await,
        "{foreign} of another instance (another link group) was deleted"
    );
    check!(
        rig.exists(foreign_dummy).await,
        "{foreign_dummy} of another instance was deleted"
    );
    ip("link del fg0")?;
    ip(&format!("link del {foreign_dummy}"))?;
    check!(
        rig.exists("rc0.7").await,
        "created parent rc0.7 not re-created"
    );
    // the endpoint is still known: Join works again after the restart
    let join: JoinRequest =
        serde_json::from_value(json!({"NetworkID": nid, "EndpointID": eid})).unwrap();
    rig.driver().join(&join).await.map_err(|e| e.to_string())?;
    check!(rig.exists(&live).await, "{live} missing after re-Join");
    rig.driver()
        .delete_endpoint(&endpoint_request(&nid, &eid))
        .await
        .map_err(|e| e.to_string())?;
    // DeleteEndpoint answers before the reaper thread deletes the link
    rig.driver().flush_deletions().await;
    rig.driver()
        .delete_network(&network_request(&nid))
        .await
        .map_err(|e| e.to_string())?;
    check!(!rig.exists("rc0.7").await, "rc0.7 left");
    Ok(())
}

async fn prefix_collision(rig: &mut Rig) -> Result {
    rig.dummy("pc0").await?;
    let nid = rig.id("n");
    rig.network(&nid, json!({"parent": "pc0"}), "10.62.0.0/24", None)
        .await?;
    let (a, b) = ("abcdef012345aaaa", "abcdef012345bbbb");
    rig.endpoint(&nid, a, "10.62.0.2/24").await?;
    rig.endpoint(&nid, b, "10.62.0.3/24").await?;
    let (la, lb) = (rig.link_of(&nid, a).await?, rig.link_of(&nid, b).await?);
    check!(la != lb, "same link {la} for two endpoints");
    for l in [&la, &lb] {
        check!(rig.exists(l).await, "{l} missing");
    }
    for e in [a, b] {
        rig.driver()
            .delete_endpoint(&endpoint_request(&nid, e))
            .await
            .map_err(|e| e.to_string())?;
    }
    // DeleteNetwork waits for the links its endpoints handed to the reaper
    rig.driver()
        .delete_network(&network_request(&nid))
        .await
        .map_err(|e| e.to_string())?;
    for l in [&la, &lb] {
        check!(!rig.exists(l).await, "{l} left after DeleteNetwork");
    }
    Ok(())
}

/// Many endpoints deleted back to back: each DeleteEndpoint answers without
/// waiting for the kernel, the reaper deletes their ipvlan links in
/// batches (link group delete), and links that are not ours stay.
async fn batched_deletes(rig: &mut Rig) -> Result {
    rig.dummy("pd0").await?;
    rig.dummy("bystander0").await?;
    let nid = rig.id("n");
    rig.network(&nid, json!({"parent": "pd0"}), "10.63.0.0/24", None)
        .await?;
    let mut endpoints = Vec::new();
    for i in 0..24 {
        let eid = rig.id("e");
        rig.endpoint(&nid, &eid, &format!("10.63.0.{}/24", i + 2))
            .await?;
        let link = rig.link_of(&nid, &eid).await?;
        check!(rig.exists(&link).await, "{link} missing after Join");
        endpoints.push((eid, link));
    }
    let start = std::time::Instant::now();
    let mut slowest = std::time::Duration::ZERO;
    for (eid, _) in &endpoints {
        let t = std::time::Instant::now();
        rig.driver()
            .delete_endpoint(&endpoint_request(&nid, eid))
            .await
            .map_err(|e| e.to_string())?;
        slowest = slowest.max(t.elapsed());
    }
    let answered = start.elapsed();
    rig.driver().flush_deletions().await;
    println!(
        "  24 DeleteEndpoint answered in {} us (slowest {} us); links gone {} us after the first",
        answered.as_micros(),
        slowest.as_micros(),
        start.elapsed().as_micros()
    );
    for (_, link) in &endpoints {
        check!(
            !rig.exists(link).await,
            "{link} left after the reaper's flush"
        );
    }
    check!(
        rig.exists("bystander0").await,
        "a link that is not ours was deleted"
    );
    check!(rig.exists("pd0").await, "the user's parent was deleted");
    rig.driver()
        .delete_network(&network_request(&nid))
        .await
        .map_err(|e| e.to_string())?;
    ip("link del pd0")?;
    ip("link del bystander0")?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let dir = Path::new("/tmp/ipvlan-rs-state");
    let _ = std::fs::remove_dir_all(dir);
    let state = dir.join("driver.redb");
    let log = Captured::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let mut rig = Rig {
        nl: Netlink::connect().unwrap(),
        log,
        driver: Some(Driver::open(&state, DriverConfig::default()).unwrap()),
        state,
        next: 0,
    };
    let mut failed = 0;
    macro_rules! case {
        ($name:literal, $e:expr) => {{
            let start = std::time::Instant::now();
            match $e.await {
                Ok(()) => println!("CASE {}: PASS ({} ms)", $name, start.elapsed().as_millis()),
                Err(why) => {
                    failed += 1;
                    println!("CASE {}: FAIL {why}", $name);
                }
            }
        }};
    }
    case!(
        "ipvlan_every_mode_and_flag_joins_on_its_parent",
        modes_and_flags(&mut rig)
    );
    case!(
        "vlan_parent_created_shared_and_deleted_only_if_created",
        vlan_parent(&mut rig)
    );
    case!(
        "vlan_ids_name_one_link_recreated_once_after_a_reboot",
        vlan_ids_name_one_link(&mut rig)
    );
    case!(
        "mtu_above_the_parent_is_refused_and_a_dummy_takes_it",
        mtu_against_the_parent(&mut rig)
    );
    case!(
        "no_parent_makes_an_internal_network_on_a_dummy",
        dummy_parent(&mut rig)
    );
    case!(
        "shared_parent_refuses_other_modes_and_kinds",
        shared_parent_conflicts(&mut rig)
    );
    case!("l2_endpoints_ping_each_other", traffic(&mut rig, "l2", 1));
    case!("l3_endpoints_ping_each_other", traffic(&mut rig, "l3", 2));
    case!(
        "endpoints_sharing_an_id_prefix_get_distinct_links",
        prefix_collision(&mut rig)
    );
    case!(
        "deleted_endpoints_links_are_reaped_in_batches",
        batched_deletes(&mut rig)
    );
    case!(
        "released_links_are_reused_with_their_mode_and_carry_traffic",
        reused_links(&mut rig)
    );
    case!(
        "reconcile_removes_strays_and_recreates_created_parents",
        reconcile_after_crash(&mut rig)
    );
    if failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
