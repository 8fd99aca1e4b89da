//! VM case of `dhcp=on` on ipvlan l2 (this host's kernel has no ipvlan):
//! Debian's dnsmasq, put in the guest by run.sh, serves DHCP in a namespace
//! beyond a veth parent; two ipvlan endpoints (sharing the parent's MAC)
//! lease distinct addresses under their own client identifiers, reach the
//! server through their links, renew them (answers unicast to the slave
//! reach the plugin's packet socket on the parent), and give the leases
//! back when deleted. The same over an 802.1Q parent (`parent=dv0.N`, made
//! by the plugin), the server on the VLAN's end in its namespace. And a host
//! link on a DHCP network (ipvlan l2, flag bridge): its address leased under
//! its own client identifier, the host reaching a leased container through
//! it and back, both leases given back with the network. And busybox's
//! udhcpd, which keys leases by MAC alone: the second ipvlan endpoint
//! (the parent's MAC again) is refused naming the first, whose lease stays
//! good (no release was sent for it).

use crate::host_link::host_pings;
use crate::rig::{Result, Rig, endpoint_request, into_container, ip, ping_from};
use ipvlan_driver::host_link_name;
use protocol::network::{
    CreateEndpointRequest, CreateNetworkRequest, EndpointInterface, JoinRequest,
};
use serde_json::json;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const DNSMASQ: &str = "/usr/sbin/dnsmasq";
const LEASES: &str = "/tmp/dhcp.leases";
const PID: &str = "/tmp/dhcp.pid";

/// Polls `cond` every 50 ms for up to 60 s (a guard: TCG is slow).
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(60);
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}

/// The server's lease lines: (address, MAC, client identifier).
fn leases() -> Vec<(String, String, String)> {
    std::fs::read_to_string(LEASES)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((
                f.get(2)?.to_string(),
                f.get(1)?.to_string(),
                f.get(4)?.to_string(),
            ))
        })
        .collect()
}

/// When the server's lease of `address` ends (epoch seconds).
fn expiry_of(address: &str) -> Option<u64> {
    std::fs::read_to_string(LEASES)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(2) == Some(&address))
        .and_then(|f| f.first()?.parse().ok())
}

/// The LAN beyond the parent `dv0`: its veth peer in namespace `dhcps`,
/// with the server's 10.77.0.1/24 on it, or on VLAN `vlan` of it (then
/// `dv0p.VLAN`); the interface a server there serves.
fn lan(vlan: Option<u16>) -> Result<String> {
    ip("link add dv0 type veth peer name dv0p")?;
    ip("netns add dhcps")?;
    ip("link set dv0p netns dhcps")?;
    ip("-n dhcps link set dv0p up")?;
    let served = match vlan {
        Some(id) => {
            ip(&format!(
                "-n dhcps link add link dv0p name dv0p.{id} type vlan id {id}"
            ))?;
            ip(&format!("-n dhcps link set dv0p.{id} up"))?;
            format!("dv0p.{id}")
        }
        None => "dv0p".to_string(),
    };
    ip(&format!("-n dhcps addr add 10.77.0.1/24 dev {served}"))?;
    ip("link set dv0 up")?;
    Ok(served)
}

/// dnsmasq in namespace `dhcps` on the far end of the parent `dv0`, on VLAN
/// `vlan` of it when given (then its interface is `dv0p.VLAN`).
fn start_server(vlan: Option<u16>) -> Result {
    check!(
        Path::new(DNSMASQ).exists(),
        "no {DNSMASQ} in the guest: tests/vm-guest/run.sh puts the host's there (apt-get install dnsmasq-base)"
    );
    // dnsmasq looks its user and group up; the initramfs has neither file
    for (file, line) in [
        ("/etc/passwd", "root:x:0:0:root:/:/bin/sh\n"),
        ("/etc/group", "root:x:0:\n"),
    ] {
        if !Path::new(file).exists() {
            std::fs::create_dir_all("/etc").map_err(|e| e.to_string())?;
            std::fs::write(file, line).map_err(|e| format!("{file}: {e}"))?;
        }
    }
    let served = lan(vlan)?;
    let out = Command::new("/usr/local/sbin/ip")
        .args(["netns", "exec", "dhcps", DNSMASQ])
        .args([
            "--conf-file=/dev/null",
            "--port=0",
            "--user=root",
            "--group=root",
            "--bind-interfaces",
            "--dhcp-range=10.77.0.100,10.77.0.150,255.255.255.0,2m",
            "--dhcp-option=3,10.77.0.1",
            "--no-ping",
            "--dhcp-authoritative",
        ])
        .arg(format!("--interface={served}"))
        .arg(format!("--dhcp-leasefile={LEASES}"))
        .arg(format!("--pid-file={PID}"))
        .output()
        .map_err(|e| format!("starting dnsmasq: {e}"))?;
    check!(
        out.status.success(),
        "dnsmasq: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    check!(
        eventually(|| Path::new(PID).exists()),
        "dnsmasq wrote no pid file"
    );
    Ok(())
}

fn stop_server() {
    if let Ok(pid) = std::fs::read_to_string(PID) {
        let _ = Command::new("/bin/busybox")
            .args(["kill", pid.trim()])
            .status();
    }
    let _ = ip("netns del dhcps");
    let _ = ip("link del dv0");
}

/// A `dhcp=on` network of the documented form (the null IPAM's only pool)
/// with generic options `opts`; its ID.
async fn dhcp_network(rig: &mut Rig, opts: serde_json::Value) -> Result<String> {
    let nid = rig.id("n");
    let req: CreateNetworkRequest = serde_json::from_value(json!({
        "NetworkID": nid,
        "Options": {"com.docker.network.generic": opts},
        "IPv4Data": [{"AddressSpace": "null", "Pool": "0.0.0.0/0"}],
        "IPv6Data": []
    }))
    .unwrap();
    rig.driver()
        .create_network(&req)
        .await
        .map_err(|e| e.to_string())?;
    Ok(nid)
}

/// CreateEndpoint without an address, as the engine sends it under the
/// null IPAM: the leased interface, or the driver's refusal.
async fn create_leased(rig: &Rig, nid: &str, eid: &str) -> Result<EndpointInterface> {
    let req: CreateEndpointRequest = serde_json::from_value(json!({
        "NetworkID": nid, "EndpointID": eid,
        "Interface": {"Address": "", "AddressIPv6": "", "MacAddress": ""}
    }))
    .unwrap();
    rig.driver()
        .create_endpoint(&req)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "CreateEndpoint answered no interface".to_string())
}

pub(crate) async fn dhcp_ipvlan_l2(rig: &mut Rig) -> Result {
    start_server(None)?;
    let result = leases_on_ipvlan(rig, "dv0").await;
    stop_server();
    result
}

/// The same over `parent=dv0.42`: the plugin makes the 802.1Q link, the
/// server answers on VLAN 42 only (untagged frames reach no server).
pub(crate) async fn dhcp_ipvlan_l2_vlan(rig: &mut Rig) -> Result {
    start_server(Some(42))?;
    let result = leases_on_ipvlan(rig, "dv0.42").await;
    stop_server();
    result
}

async fn leases_on_ipvlan(rig: &mut Rig, parent: &str) -> Result {
    let nid = dhcp_network(rig, json!({"parent": parent, "dhcp": "on"})).await?;
    let parent_mac = rig
        .nl
        .get(parent)
        .await
        .unwrap()
        .and_then(|l| l.mac)
        .ok_or(format!("{parent} has no MAC"))?;
    let parent_mac = colon_hex(&parent_mac);
    let mut addresses = Vec::new();
    let mut eids = Vec::new();
    for i in 0..2 {
        let eid = rig.id("e");
        let interface = create_leased(rig, &nid, &eid).await?;
        let address = interface.address.ok_or("no leased address")?;
        check!(
            interface.mac_address.is_none(),
            "ipvlan endpoint answered a MAC {:?}",
            interface.mac_address
        );
        check!(
            address.to_string().starts_with("10.77.0.") && address.prefix_len() == 24,
            "leased {address}, not in 10.77.0.0/24"
        );
        let join: JoinRequest =
            serde_json::from_value(json!({"NetworkID": nid, "EndpointID": eid, "SandboxKey": ""}))
                .unwrap();
        let resp = rig.driver().join(&join).await.map_err(|e| e.to_string())?;
        check!(
            resp.gateway.map(|g| g.to_string()) == Some("10.77.0.1".into()),
            "gateway {:?}, want the router option 10.77.0.1",
            resp.gateway
        );
        let link = rig.link_of(&nid, &eid).await?;
        into_container(&link, &format!("dc{i}"), &address.to_string())?;
        ping_from(
            &format!("dc{i}"),
            "10.77.0.1",
            "ipvlan l2 to the DHCP server",
        )?;
        // a renewal: unicast to the server, whose ACK comes back unicast to
        // the container's address and the parent's MAC, which the ipvlan
        // slave takes; the plugin's socket on the parent must see it too
        let a = address.addr().to_string();
        let before = expiry_of(&a).ok_or(format!("no lease of {a}"))?;
        // the server's expiry has a resolution of a second: renew until it
        // moves (every 200 ms, a guard of 60 s)
        let end = Instant::now() + Duration::from_secs(60);
        let mut renewed = Ok(None);
        while expiry_of(&a).is_none_or(|e| e <= before) && Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(200)).await;
            renewed = rig.driver().renew_lease_now(&eid).await;
        }
        check!(
            expiry_of(&a).is_some_and(|e| e > before),
            "renewing {a} on ipvlan l2 did not move the server's expiry past {before} (last renewal: {renewed:?})"
        );
        addresses.push(a);
        eids.push(eid);
    }
    check!(
        addresses[0] != addresses[1],
        "both endpoints got {}",
        addresses[0]
    );
    let held = leases();
    for a in &addresses {
        check!(
            held.iter()
                .any(|(addr, mac, _)| addr == a && mac == &parent_mac),
            "no lease of {a} for the parent's MAC {parent_mac}: {held:?}"
        );
    }
    check!(
        held.len() == 2 && held[0].2 != held[1].2,
        "two leases with distinct client ids expected: {held:?}"
    );
    for (i, eid) in eids.iter().enumerate() {
        let _ = ip(&format!("netns del dc{i}"));
        rig.driver()
            .delete_endpoint(&endpoint_request(&nid, eid))
            .await
            .map_err(|e| e.to_string())?;
    }
    rig.driver().flush_deletions().await;
    check!(
        eventually(|| leases().is_empty()),
        "leases left after DeleteEndpoint: {:?}",
        leases()
    );
    rig.delete_network(&nid).await
}

/// Bytes as dnsmasq's lease file writes MACs and client identifiers: hex,
/// colon-separated.
fn colon_hex(id: &[u8]) -> String {
    id.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub(crate) async fn dhcp_ipvlan_l2_host_link(rig: &mut Rig) -> Result {
    start_server(None)?;
    let result = host_link_on_dhcp(rig).await;
    stop_server();
    result
}

async fn host_link_on_dhcp(rig: &mut Rig) -> Result {
    let nid = dhcp_network(
        rig,
        json!({"parent": "dv0", "dhcp": "on", "host_link": "on", "ipvlan_flag": "bridge"}),
    )
    .await?;
    // the host link's lease, under the identifier of the network's host link
    // (its name cut to 64 bytes, as every client identifier of the plugin)
    let name = format!("host-link:{nid}");
    let host_id = colon_hex(&[b"\0ipvlan-rs:".as_slice(), &name.as_bytes()[..64]].concat());
    let host_lease = leases().into_iter().find(|(_, _, id)| *id == host_id);
    let (host_addr, _, _) = host_lease.ok_or(format!(
        "no lease under the host link's client id {host_id}: {:?}",
        leases()
    ))?;
    let hl = host_link_name(&nid);
    let link = rig.nl.get(&hl).await.unwrap().ok_or(format!("no {hl}"))?;
    let want: Ipv4Addr = host_addr.parse().map_err(|e| format!("{host_addr}: {e}"))?;
    check!(
        rig.nl.has_address(link.index, want).await.unwrap_or(false),
        "{hl} does not carry its leased {host_addr}"
    );

    let eid = rig.id("e");
    let address = create_leased(rig, &nid, &eid)
        .await?
        .address
        .ok_or("no leased address")?;
    check!(
        address.addr().to_string() != host_addr,
        "the container got the host link's {host_addr}"
    );
    let join: JoinRequest =
        serde_json::from_value(json!({"NetworkID": nid, "EndpointID": eid, "SandboxKey": ""}))
            .unwrap();
    rig.driver().join(&join).await.map_err(|e| e.to_string())?;
    let link = rig.link_of(&nid, &eid).await?;
    into_container(&link, "dch", &address.to_string())?;
    let to = address.addr().to_string();
    check!(
        host_pings(&to, "10"),
        "the host cannot ping the container's leased {to} through {hl}"
    );
    ping_from("dch", &host_addr, "a leased container to the host link")?;
    check!(
        leases().len() == 2,
        "two leases (host link, container) expected: {:?}",
        leases()
    );

    let _ = ip("netns del dch");
    rig.delete_endpoint(&nid, &eid).await?;
    rig.delete_network(&nid).await?;
    check!(!rig.exists(&hl).await, "{hl} left after DeleteNetwork");
    check!(
        eventually(|| leases().is_empty()),
        "leases left after DeleteNetwork: {:?}",
        leases()
    );
    Ok(())
}

/// udhcpd in namespace `dhcps` beyond `dv0`, serving 10.77.0.100-150.
fn start_udhcpd() -> Result {
    lan(None)?;
    std::fs::write(
        "/tmp/udhcpd.conf",
        format!(
            "start 10.77.0.100\nend 10.77.0.150\ninterface dv0p\n\
             lease_file /tmp/udhcpd.leases\npidfile {PID}\n\
             option subnet 255.255.255.0\noption router 10.77.0.1\noption lease 120\n"
        ),
    )
    .map_err(|e| format!("/tmp/udhcpd.conf: {e}"))?;
    Command::new("/usr/local/sbin/ip")
        .args([
            "netns",
            "exec",
            "dhcps",
            "/bin/busybox",
            "udhcpd",
            "/tmp/udhcpd.conf",
        ])
        .status()
        .map_err(|e| format!("starting udhcpd: {e}"))?;
    check!(
        eventually(|| Path::new(PID).exists()),
        "udhcpd wrote no pid file"
    );
    Ok(())
}

pub(crate) async fn dhcp_ipvlan_mac_keyed_server(rig: &mut Rig) -> Result {
    start_udhcpd()?;
    let result = second_endpoint_refused(rig).await;
    stop_server();
    result
}

async fn second_endpoint_refused(rig: &mut Rig) -> Result {
    let nid = dhcp_network(rig, json!({"parent": "dv0", "dhcp": "on"})).await?;
    let (e1, e2) = (rig.id("e"), rig.id("e"));
    let first = create_leased(rig, &nid, &e1)
        .await
        .map_err(|e| format!("the first endpoint: {e}"))?
        .address
        .ok_or("no leased address")?;
    let err = match create_leased(rig, &nid, &e2).await {
        Ok(i) => {
            return Err(format!(
                "the second endpoint was given {:?} (the first has {first})",
                i.address
            ));
        }
        Err(e) => e,
    };
    check!(
        err.contains(&first.addr().to_string())
            && err.contains(&format!("endpoint {e1}"))
            && err.contains("kind=macvlan"),
        "the refusal does not name the address, the holder and what to do: {err}"
    );
    // the first lease was not given back: the server still renews it (its
    // answer goes to the address, which the container's link carries)
    let join: JoinRequest =
        serde_json::from_value(json!({"NetworkID": nid, "EndpointID": e1, "SandboxKey": ""}))
            .unwrap();
    rig.driver().join(&join).await.map_err(|e| e.to_string())?;
    let link = rig.link_of(&nid, &e1).await?;
    into_container(&link, "dcu", &first.to_string())?;
    let renewed = rig
        .driver()
        .renew_lease_now(&e1)
        .await
        .map_err(|e| format!("renewing the first endpoint's lease after the refusal: {e}"))?;
    check!(
        renewed.is_some(),
        "the first endpoint's lease did not renew after the refusal"
    );
    let _ = ip("netns del dcu");
    rig.delete_endpoint(&nid, &e1).await?;
    rig.delete_network(&nid).await
}
