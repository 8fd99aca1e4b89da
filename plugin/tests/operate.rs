//! The operator's view through the real binary, in a network namespace
//! with veth parents: `GET /status` (and `ipvlan-rs status`) after a
//! scripted scenario, drift made behind the plugin's back (a joined
//! endpoint's link, in a container namespace, lost with its parent
//! included) and what a restart clears of it, a parent up without a
//! carrier, `/metrics` parsed as Prometheus text with counters that move
//! by the calls made (every call's series there from the start), and
//! `METRICS_ADDR` (no TCP listener unless set; set, only `/metrics` is
//! served there).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod kernel_rig;

use common::ops::{has, metrics, scrape, status, value};
use common::{Plugin, Reply, body, ip};
use ipvlan_driver::{
    Drift, EndpointOnLostParent, EndpointStatus, MissingLink, MissingParent, NetworkStatus,
    OrphanLink, Subnet,
};
use ipvlan_rs::status::Status;
use kernel_rig::{
    EP1, EP2, NET, Rig, create_endpoint, create_network, endpoint_call, join, link_of,
};

const NET2: &str = "8d2e3b0f1c4e5d6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7";
const EP3: &str = "a3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2";
const EP4: &str = "b4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3";
const EP5: &str = "c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4";

/// The ifindex of `link` in the rig's namespace.
fn index_of(rig: &Rig, link: &str) -> u32 {
    rig.ns.link_index(link).unwrap().parse().unwrap()
}

/// Moves `link` from the rig's namespace into `container`'s, as the
/// engine does with a joined endpoint's link.
fn into_container(rig: &Rig, container: &common::NetNs, link: &str) {
    ip(&[
        "-n",
        &rig.ns.name,
        "link",
        "set",
        link,
        "netns",
        &container.name,
    ])
    .unwrap();
}

/// `GET /status` once the parents' operational states are `want` (in
/// network order): the kernel's link watcher sets a state after the
/// carrier changes, not with it.
fn status_once_parents_are(p: &Plugin, want: &[&str]) -> Status {
    let mut last = status(p);
    let states = |s: &Status| -> Vec<Option<String>> {
        s.driver
            .networks
            .iter()
            .map(|n| n.parent_oper_state.clone())
            .collect()
    };
    let want: Vec<Option<String>> = want.iter().map(|w| Some(w.to_string())).collect();
    let settled = common::eventually(common::GUARD, || {
        last = status(p);
        states(&last) == want
    });
    assert!(
        settled,
        "parents' states {:?}, want {want:?}",
        states(&last)
    );
    last
}

/// `ipvlan-rs status` (the tables) on `p`'s socket.
fn status_text(p: &Plugin) -> String {
    let out = std::process::Command::new(common::binary())
        .args(["status", "--socket"])
        .arg(&p.socket)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The MAC `ip link` shows for `link`.
fn mac_of(rig: &Rig, link: &str) -> String {
    kernel_rig::mac_of(&rig.ns, link)
}

/// RequestPool of `cidr` (lowest-free allocation); its PoolID.
fn request_pool(p: &Plugin, cidr: &str) -> String {
    let r = p.post("/IpamDriver.RequestPool", &body::request_pool(cidr, false));
    ok(r)["PoolID"].as_str().unwrap().to_string()
}

fn ok(r: Reply) -> serde_json::Value {
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

#[test]
fn status_shows_what_exists_drift_behind_the_plugins_back_and_what_a_restart_clears() {
    let rig = Rig::new("os");
    rig.ns.add_veth_parent("hp1").unwrap();
    let mut p = rig.start(&[]);

    // the IPAM side, as the engine asks before CreateNetwork
    let pool = request_pool(&p, "10.70.0.0/24");
    ok(p.post(
        "/IpamDriver.RequestAddress",
        &body::request_gateway(&pool, "10.70.0.1"),
    ));
    for _ in 0..2 {
        ok(p.post("/IpamDriver.RequestAddress", &body::request_address(&pool)));
    }
    // a macvlan network per parent (this kernel has no ipvlan, 802.1Q or
    // dummy links; the VM suite covers those kinds)
    ok(create_network(
        &p,
        NET,
        r#"{"parent":"hp0","kind":"macvlan","macvlan_mode":"bridge"}"#,
    ));
    ok(p.post(
        "/NetworkDriver.CreateNetwork",
        &body::create_network(
            NET2,
            r#"{"parent":"hp1","kind":"macvlan","macvlan_mode":"private"}"#,
            &body::ipv4_data("10.71.0.0/24", "10.71.0.1/24"),
        ),
    ));
    // joined, not joined, and left (the engine moved its link back)
    ok(create_endpoint(&p, NET, EP1, "10.70.0.2/24", ""));
    let l1 = join(&p, NET, EP1);
    ok(create_endpoint(&p, NET, EP2, "10.70.0.3/24", ""));
    ok(create_endpoint(&p, NET2, EP3, "10.71.0.2/24", ""));
    let l3 = join(&p, NET2, EP3);
    ok(endpoint_call(&p, "Leave", NET2, EP3));
    // and joined into a container: its link leaves the host namespace
    let container = common::NetNs::new("oc").unwrap();
    ok(create_endpoint(&p, NET2, EP4, "10.71.0.3/24", ""));
    let l4 = join(&p, NET2, EP4);
    into_container(&rig, &container, &l4);
    let hp1_then = index_of(&rig, "hp1");

    let s = status_once_parents_are(&p, &["up", "up"]);
    let subnet = |pool: &str, gateway: &str| Subnet {
        pool: pool.parse().unwrap(),
        gateway: Some(gateway.parse().unwrap()),
    };
    let network = |id: &str, mode: &str, parent: &str, ipv4: Subnet, endpoints| NetworkStatus {
        id: id.into(),
        kind: "macvlan".into(),
        mode: mode.into(),
        parent: parent.into(),
        parent_up: Some(true),
        parent_carrier: Some(true),
        parent_oper_state: Some("up".into()),
        created_parent: None,
        internal: false,
        mtu: None,
        ipv4: vec![ipv4],
        ipv6: vec![],
        endpoints,
        spares: vec![],
        dhcp: false,
        host_link: None,
    };
    assert_eq!(
        s.driver.networks,
        [
            network(NET, "bridge", "hp0", subnet("10.70.0.0/24", "10.70.0.1"), 2),
            network(
                NET2,
                "private",
                "hp1",
                subnet("10.71.0.0/24", "10.71.0.1"),
                2
            ),
        ]
    );
    let endpoint =
        |id: &str, net: &str, link: &str, ipv4: &str, mac, joined, link_in_host| EndpointStatus {
            id: id.into(),
            network: net.into(),
            link: link.into(),
            ipv4: Some(ipv4.parse().unwrap()),
            ipv6: None,
            mac,
            joined,
            link_in_host,
            lease: None,
        };
    let l2 = link_of(&p, NET, EP2);
    assert_eq!(
        s.driver.endpoints,
        [
            // no engine here to move a joined link into a container
            endpoint(
                EP1,
                NET,
                &l1,
                "10.70.0.2/24",
                Some(mac_of(&rig, &l1)),
                Some(true),
                true
            ),
            endpoint(EP2, NET, &l2, "10.70.0.3/24", None, Some(false), false),
            endpoint(
                EP3,
                NET2,
                &l3,
                "10.71.0.2/24",
                Some(mac_of(&rig, &l3)),
                Some(false),
                true
            ),
            // a macvlan link's MAC is its own, out of sight in the container
            endpoint(EP4, NET2, &l4, "10.71.0.3/24", None, Some(true), false),
        ]
    );
    let pools: Vec<_> = s
        .ipam
        .pools
        .iter()
        .map(|p| (p.id.as_str(), p.space.as_str(), p.allocated, p.free))
        .collect();
    // .1-.254 usable, three taken
    assert_eq!(pools, [(pool.as_str(), "local", 3, 251)]);
    assert!(s.driver.drift.is_empty(), "{:?}", s.driver.drift);

    // a parent up with no carrier: its veth peer is down
    ip(&["-n", &rig.ns.name, "link", "set", "hp1p", "down"]).unwrap();
    let s = status_once_parents_are(&p, &["up", "lowerlayerdown"]);
    let hp1 = &s.driver.networks[1];
    assert_eq!(
        (
            hp1.parent_up,
            hp1.parent_carrier,
            hp1.parent_oper_state.as_deref()
        ),
        (Some(true), Some(false), Some("lowerlayerdown")),
        "{hp1:?}"
    );
    let text = status_text(&p);
    let row: Vec<&str> = text
        .lines()
        .find(|l| l.starts_with(&NET2[..12]))
        .unwrap()
        .split_whitespace()
        .collect();
    assert!(
        row.windows(4)
            .any(|w| w == ["hp1", "up", "NO", "lowerlayerdown"]),
        "{text}"
    );
    ip(&["-n", &rig.ns.name, "link", "set", "hp1p", "up"]).unwrap();

    // behind the plugin's back: a left endpoint's link and a parent go
    // (the kernel deletes the parent's links with it, the one in the
    // container too), a link of the plugin's group appears
    ip(&["-n", &rig.ns.name, "link", "del", &l3]).unwrap();
    ip(&["-n", &rig.ns.name, "link", "del", "hp1"]).unwrap();
    assert!(
        !ip(&["-n", &container.name, "-o", "link", "show"])
            .unwrap()
            .contains(&l4),
        "{l4} outlived its parent"
    );
    let group = s.driver.link_group.to_string();
    ip(&[
        "-n",
        &rig.ns.name,
        "link",
        "add",
        "ivr0000deadbeef",
        "link",
        "hp0",
        "group",
        &group,
        "type",
        "macvlan",
        "mode",
        "bridge",
    ])
    .unwrap();
    let stray_index: u32 = rig
        .ns
        .link_index("ivr0000deadbeef")
        .unwrap()
        .parse()
        .unwrap();
    let s = status(&p);
    assert_eq!(
        s.driver.drift.orphan_links,
        [OrphanLink {
            name: "ivr0000deadbeef".into(),
            index: stray_index,
            what: "container link".into()
        }]
    );
    assert_eq!(
        s.driver.drift.missing_links,
        [MissingLink {
            endpoint: EP3.into(),
            network: NET2.into(),
            link: l3.clone()
        }]
    );
    assert_eq!(
        s.driver.drift.missing_parents,
        [MissingParent {
            network: NET2.into(),
            parent: "hp1".into(),
            created: false
        }]
    );
    let lost = |endpoint: &str, index_now| EndpointOnLostParent {
        endpoint: endpoint.into(),
        network: NET2.into(),
        parent: "hp1".into(),
        index_then: hp1_then,
        index_now,
    };
    // the joined endpoint's link is out of the plugin's sight, but went
    // with its parent
    assert_eq!(
        s.driver.drift.endpoints_on_a_lost_parent,
        [lost(EP3, None), lost(EP4, None)]
    );
    assert_eq!(s.driver.networks[1].parent_up, None);

    // the same through the subcommand's tables
    let text = status_text(&p);
    for expected in [
        "orphan container link ivr0000deadbeef",
        &format!("missing link {l3} of endpoint {}", &EP3[..12]),
        &format!("missing parent hp1 of network {}", &NET2[..12]),
        &format!(
            "lost link of endpoint {} (network {}): its parent hp1 (index {hp1_then}, gone)",
            &EP4[..12],
            &NET2[..12]
        ),
        &format!("{}  macvlan  bridge", &NET[..12]),
        &pool,
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
    let json = std::process::Command::new(common::binary())
        .args(["status", "--json", "--socket"])
        .arg(&p.socket)
        .output()
        .unwrap();
    let shown: Status = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(shown.driver.drift, s.driver.drift);

    // the user brings their interface back (a new one: another index);
    // the links that went with the old one stay lost, and a new endpoint
    // joins on the new one
    rig.ns.add_veth_parent("hp1").unwrap();
    let hp1_now = index_of(&rig, "hp1");
    assert_ne!(hp1_now, hp1_then);
    ok(create_endpoint(&p, NET2, EP5, "10.71.0.4/24", ""));
    let l5 = join(&p, NET2, EP5);
    into_container(&rig, &container, &l5);
    let s = status(&p);
    assert_eq!(
        s.driver.drift.endpoints_on_a_lost_parent,
        [lost(EP3, Some(hp1_now)), lost(EP4, Some(hp1_now))]
    );
    let text = status_text(&p);
    let expected = format!(
        "lost link of endpoint {} (network {}): its parent hp1 (re-created, index {hp1_then} now {hp1_now})",
        &EP4[..12],
        &NET2[..12]
    );
    assert!(text.contains(&expected), "no {expected:?} in:\n{text}");

    // a restart reconciles the rest; what the lost links' endpoints
    // recorded survives it
    p.stop().unwrap();
    let p = rig.start(&[]);
    let s = status(&p);
    assert_eq!(
        s.driver.drift,
        Drift {
            endpoints_on_a_lost_parent: vec![lost(EP3, Some(hp1_now)), lost(EP4, Some(hp1_now))],
            ..Drift::default()
        }
    );
    assert!(rig.ns.link_details("ivr0000deadbeef").is_none());
    // joins are kept in memory only: after a restart an endpoint is known
    // not joined when its link is in the host, unknown otherwise
    let joined: Vec<_> = s
        .driver
        .endpoints
        .iter()
        .map(|e| (e.id.as_str(), e.joined, e.link_in_host))
        .collect();
    assert_eq!(
        joined,
        [
            (EP1, Some(false), true),
            (EP2, None, false),
            (EP3, None, false),
            (EP4, None, false),
            (EP5, None, false),
        ]
    );
    assert_eq!(s.ipam.pools[0].allocated, 3);
    // the engine deletes the endpoints of the containers that lost their
    // links (when they stop or restart): then nothing is lost
    for ep in [EP3, EP4] {
        ok(endpoint_call(&p, "DeleteEndpoint", NET2, ep));
    }
    let s = status(&p);
    assert!(s.driver.drift.is_empty(), "{:?}", s.driver.drift);
}

#[test]
fn metrics_parse_as_prometheus_text_and_move_by_the_calls_made() {
    let rig = Rig::new("om");
    let p = rig.start(&[("LINK_REUSE_MS", "0")]);
    let before = metrics(&p);
    // before any call: every call of both APIs, each outcome, at zero
    for call in protocol::Call::ALL {
        let call = call.path().trim_start_matches('/');
        for outcome in ["ok", "error"] {
            let labels = [("call", call), ("outcome", outcome)];
            assert!(
                has(&before, "ipvlan_rs_calls_total", &labels),
                "no {labels:?} before the first call"
            );
            assert_eq!(value(&before, "ipvlan_rs_calls_total", &labels), 0.0);
        }
    }
    let pool = request_pool(&p, "10.70.0.0/24");
    for _ in 0..2 {
        ok(p.post("/IpamDriver.RequestAddress", &body::request_address(&pool)));
    }
    let refused = p.post(
        "/IpamDriver.RequestAddress",
        &body::request_address("local/10.99.0.0/24"),
    );
    assert_eq!(refused.status, 500, "{}", refused.body);
    ok(create_network(
        &p,
        NET,
        r#"{"parent":"hp0","kind":"macvlan"}"#,
    ));
    ok(create_endpoint(&p, NET, EP1, "10.70.0.2/24", ""));
    ok(create_endpoint(&p, NET, EP2, "10.70.0.3/24", ""));
    join(&p, NET, EP1);
    join(&p, NET, EP2);
    let unknown = p.post("/NetworkDriver.Join", &body::join(NET, EP3));
    assert_eq!(unknown.status, 500, "{}", unknown.body);

    let after = metrics(&p);
    let moved = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    let calls = "ipvlan_rs_calls_total";
    let address = ("call", "IpamDriver.RequestAddress");
    let join_call = ("call", "NetworkDriver.Join");
    assert_eq!(moved(calls, &[address, ("outcome", "ok")]), 2.0);
    assert_eq!(moved(calls, &[address, ("outcome", "error")]), 1.0);
    assert_eq!(moved(calls, &[join_call, ("outcome", "ok")]), 2.0);
    assert_eq!(moved(calls, &[join_call, ("outcome", "error")]), 1.0);
    assert_eq!(
        moved(
            calls,
            &[("call", "NetworkDriver.CreateEndpoint"), ("outcome", "ok")]
        ),
        2.0
    );
    assert_eq!(
        moved("ipvlan_rs_call_duration_seconds_count", &[join_call]),
        3.0
    );
    assert_eq!(moved("ipvlan_rs_container_links_created_total", &[]), 2.0);
    // the network and two endpoints; each durable write timed once
    let driver = ("store", "driver");
    assert_eq!(moved("ipvlan_rs_store_changes_total", &[driver]), 3.0);
    let commits = moved("ipvlan_rs_store_commits_total", &[driver]);
    assert!((1.0..=3.0).contains(&commits), "{commits}");
    assert_eq!(
        moved("ipvlan_rs_store_commit_duration_seconds_count", &[driver]),
        commits
    );
    assert!(moved("ipvlan_rs_store_commits_total", &[("store", "ipam")]) >= 1.0);
    assert_eq!(
        value(
            &after,
            "ipvlan_rs_pool_allocated_addresses",
            &[("pool", &pool)]
        ),
        2.0
    );
    assert_eq!(
        value(&after, "ipvlan_rs_pool_free_addresses", &[("pool", &pool)]),
        252.0
    );

    // the reaper deletes off the request path: the counter catches up
    for ep in [EP1, EP2] {
        ok(endpoint_call(&p, "DeleteEndpoint", NET, ep));
    }
    let deleted = |s: &common::ops::Scrape| {
        value(s, "ipvlan_rs_container_links_deleted_total", &[])
            - value(&before, "ipvlan_rs_container_links_deleted_total", &[])
    };
    let mut last = metrics(&p);
    let caught_up = common::eventually(common::GUARD, || {
        last = metrics(&p);
        deleted(&last) == 2.0
    });
    assert!(caught_up, "links deleted: {}", deleted(&last));
    assert_eq!(value(&last, "ipvlan_rs_reaper_queue", &[]), 0.0);
}

/// `ss -ltnpH` in the namespace: TCP listeners of the process `pid`.
fn tcp_listeners(rig: &Rig, pid: u32) -> Vec<String> {
    let out = std::process::Command::new(common::ip_binary().unwrap())
        .args(["netns", "exec", &rig.ns.name, "ss", "-ltnpH"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!("pid={pid},")))
        .map(String::from)
        .collect()
}

#[test]
fn metrics_addr_empty_opens_no_tcp_listener_and_set_serves_metrics_alone() {
    let rig = Rig::new("oa");
    let mut p = rig.start(&[("MAX_BODY", "64")]);
    assert_eq!(tcp_listeners(&rig, p.pid()), Vec::<String>::new());
    // the socket's limits hold for the operator's GETs too
    let big = common::request(&p.socket, "GET", "/status", &[b'x'; 100]);
    assert_eq!(big.status, 413, "{}", big.body);
    let post = common::request(&p.socket, "POST", "/metrics", b"");
    assert_eq!(post.status, 405, "{}", post.body);
    p.stop().unwrap();

    let p = rig.start(&[("METRICS_ADDR", "127.0.0.1:9323")]);
    let listeners = tcp_listeners(&rig, p.pid());
    assert!(
        listeners.len() == 1 && listeners[0].contains("127.0.0.1:9323"),
        "{listeners:?}"
    );
    let addr = "127.0.0.1:9323".parse().unwrap();
    let (scraped, status, call, post) = rig
        .ns
        .run_in(|| {
            (
                common::request_tcp(addr, "GET", "/metrics", b""),
                common::request_tcp(addr, "GET", "/status", b""),
                common::request_tcp(addr, "POST", "/Plugin.Activate", b""),
                common::request_tcp(addr, "POST", "/metrics", b""),
            )
        })
        .unwrap();
    assert_eq!(scraped.status, 200, "{}", scraped.body);
    let s = scrape(&scraped.body);
    assert!(
        s.parsed
            .samples
            .iter()
            .any(|x| x.metric == "ipvlan_rs_reaper_queue"),
        "{}",
        scraped.body
    );
    assert_eq!(status.status, 404, "{}", status.body);
    assert_eq!(call.status, 404, "{}", call.body);
    assert_eq!(post.status, 405, "{}", post.body);
}

#[test]
fn the_subcommand_finds_the_one_managed_plugin_socket_or_says_why_not() {
    use ipvlan_rs::cli::{CliError, SOCKET_NAME, find_socket};
    use std::os::unix::net::UnixListener;
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        find_socket(dir.path()),
        Err(CliError::NoSocket { .. })
    ));
    // a socket file nobody answers on (a crashed engine's) is no candidate
    let stale = dir.path().join("89abcdef");
    std::fs::create_dir(&stale).unwrap();
    drop(UnixListener::bind(stale.join(SOCKET_NAME)).unwrap());
    assert!(stale.join(SOCKET_NAME).exists());
    assert!(matches!(
        find_socket(dir.path()),
        Err(CliError::NoSocket { .. })
    ));
    let plugin = dir.path().join("0123abcd");
    std::fs::create_dir(&plugin).unwrap();
    let _live = UnixListener::bind(plugin.join(SOCKET_NAME)).unwrap();
    // another plugin's directory without our socket is not a candidate
    std::fs::create_dir(dir.path().join("other")).unwrap();
    assert_eq!(find_socket(dir.path()).unwrap(), plugin.join(SOCKET_NAME));
    let second = dir.path().join("4567ef01");
    std::fs::create_dir(&second).unwrap();
    let _also = UnixListener::bind(second.join(SOCKET_NAME)).unwrap();
    let err = find_socket(dir.path()).unwrap_err();
    assert!(
        matches!(err, CliError::SeveralSockets(ref s) if s.len() == 2),
        "{err}"
    );
}
