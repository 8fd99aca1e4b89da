//! Host links (`-o host_link`) on this host's kernel, through the real
//! binary in a namespace with a veth parent (macvlan; the VM rig covers
//! ipvlan): the host link's address from the plugin's IPAM, a route per
//! joined container, the host reaching containers (each in a namespace of
//! its own, as the engine leaves them) and they the host, reconcile after a
//! kill -9 putting back exactly what the records call for, and DeleteNetwork
//! leaving nothing behind.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod kernel_rig;

use common::ops::status;
use common::{NetNs, body, ip};
use ipvlan_driver::{HostLinkStatus, MissingHostLink};
use kernel_rig::{EP1, EP2, NET, Rig, create_endpoint, delete_network, endpoint_call, join};

const POOL: &str = "local/10.70.0.0/24";
const HOST_LINK: &str = "ivh7c1f2a9e0b3d";

fn ok(r: common::Reply, what: &str) -> serde_json::Value {
    assert_eq!(r.status, 200, "{what}: {}", r.body);
    r.json()
}

/// DeleteEndpoint of `ep` on NET, which must succeed.
fn delete_endpoint(p: &common::Plugin, ep: &str) {
    ok(
        endpoint_call(p, "DeleteEndpoint", NET, ep),
        "DeleteEndpoint",
    );
}

/// The IPv4 addresses on `link` in `ns`, as `ip -4 -o addr` prints them.
fn addresses(ns: &NetNs, link: &str) -> Vec<String> {
    let out = ip(&["-n", &ns.name, "-4", "-o", "addr", "show", "dev", link]).unwrap();
    out.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            w.find(|x| *x == "inet").and_then(|_| w.next())
        })
        .map(str::to_string)
        .collect()
}

/// The destinations of routes through `link` in `ns` (main table).
fn routes(ns: &NetNs, link: &str) -> Vec<String> {
    let out = ip(&["-n", &ns.name, "-4", "route", "show", "dev", link]).unwrap_or_default();
    let mut r: Vec<String> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    r.sort();
    r
}

/// Moves container link `link` into a namespace of its own with `address`,
/// as the engine does at Join.
fn containerize(tag: &str, ns: &NetNs, link: &str, address: &str) -> NetNs {
    let c = NetNs::new(tag).unwrap();
    ip(&["-n", &ns.name, "link", "set", link, "netns", &c.name]).unwrap();
    ip(&["-n", &c.name, "addr", "add", address, "dev", link]).unwrap();
    ip(&["-n", &c.name, "link", "set", link, "up"]).unwrap();
    c
}

/// Whether `from` gets an echo reply from `to` (three tries, two seconds
/// each: the first may wait for ARP). Needs busybox (busybox-static, which
/// .ci/run installs); without it the test fails saying so.
fn pings(from: &NetNs, to: &str) -> bool {
    let busybox = std::process::Command::new("busybox").arg("true").status();
    assert!(
        busybox.is_ok_and(|s| s.success()),
        "busybox is needed for ping: apt-get install busybox-static"
    );
    std::process::Command::new(common::ip_binary().unwrap())
        .args(["netns", "exec", &from.name, "busybox", "ping", "-c", "3"])
        .args(["-W", "2", to])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn macvlan_host_link_reaches_containers_and_is_restored_after_kill_9() {
    let rig = Rig::new("hl");
    let ns = &rig.ns;
    let mut p = rig.start(&[]);
    // as the engine creates a network: pool, gateway, then CreateNetwork
    let pool = ok(
        p.post(
            "/IpamDriver.RequestPool",
            &body::request_pool("10.70.0.0/24", false),
        ),
        "RequestPool",
    );
    assert_eq!(pool["PoolID"], POOL);
    ok(
        p.post(
            "/IpamDriver.RequestAddress",
            &body::request_gateway(POOL, "10.70.0.1"),
        ),
        "gateway",
    );
    ok(
        kernel_rig::create_network(
            &p,
            NET,
            r#"{"parent":"hp0","kind":"macvlan","host_link":"on"}"#,
        ),
        "CreateNetwork host_link=on",
    );
    let details = ns.link_details(HOST_LINK).expect("no host link");
    assert!(
        details.contains("macvlan mode bridge") && details.contains("@hp0"),
        "{details}"
    );
    // the lowest free address of the pool, reserved like a container's, as a /32
    assert_eq!(addresses(ns, HOST_LINK), ["10.70.0.2/32"]);
    let err = p
        .post(
            "/IpamDriver.RequestAddress",
            &body::request_this_address(POOL, "10.70.0.2"),
        )
        .assert_error(500);
    assert!(
        err.contains("in use"),
        "host link address not reserved: {err}"
    );
    assert!(routes(ns, HOST_LINK).is_empty(), "routes before any Join");
    // the host's own route to the subnet through the parent is untouched
    ip(&[
        "-n",
        &ns.name,
        "addr",
        "add",
        "10.70.0.200/24",
        "dev",
        "hp0",
    ])
    .unwrap();

    let mut containers = Vec::new();
    for (ep, address) in [(EP1, "10.70.0.3/24"), (EP2, "10.70.0.4/24")] {
        assert_eq!(create_endpoint(&p, NET, ep, address, "").status, 200);
        let link = join(&p, NET, ep);
        containers.push(containerize("hc", ns, &link, address));
    }
    assert_eq!(routes(ns, HOST_LINK), ["10.70.0.3", "10.70.0.4"]);
    let own = ip(&["-n", &ns.name, "-4", "route", "show", "dev", "hp0"]).unwrap();
    assert!(
        own.contains("10.70.0.0/24"),
        "the parent's route went: {own}"
    );
    for (c, address) in containers.iter().zip(["10.70.0.3", "10.70.0.4"]) {
        assert!(pings(ns, address), "the host does not reach {address}");
        assert!(
            pings(c, "10.70.0.2"),
            "{address} does not reach the host link"
        );
    }

    // crash; meanwhile one route goes and a stray one comes
    p.kill9();
    ip(&[
        "-n",
        &ns.name,
        "route",
        "del",
        "10.70.0.3",
        "dev",
        HOST_LINK,
    ])
    .unwrap();
    ip(&[
        "-n",
        &ns.name,
        "route",
        "add",
        "10.70.0.99",
        "dev",
        HOST_LINK,
    ])
    .unwrap();
    let p = rig.start(&[]);
    assert_eq!(
        routes(ns, HOST_LINK),
        ["10.70.0.3", "10.70.0.4"],
        "reconcile did not put back exactly the recorded routes"
    );
    assert!(pings(ns, "10.70.0.3"), "not reached after the restart");

    // the operator's view shows it
    let shown = |present| HostLinkStatus {
        name: HOST_LINK.into(),
        address: "10.70.0.2".parse().unwrap(),
        range: None,
        present,
    };
    let host_link_of = |s: &ipvlan_rs::status::Status| {
        let n = s.driver.networks.iter().find(|n| n.id == NET).unwrap();
        n.host_link.clone()
    };
    let s = status(&p);
    assert_eq!(host_link_of(&s), Some(shown(true)));
    assert!(s.driver.drift.is_empty(), "{:?}", s.driver.drift);

    // the same after the host link itself went (a reboot loses every link):
    // drift until the next start puts it back
    ip(&["-n", &ns.name, "link", "del", HOST_LINK]).unwrap();
    let s = status(&p);
    assert_eq!(host_link_of(&s), Some(shown(false)));
    assert_eq!(
        s.driver.drift.missing_host_links,
        [MissingHostLink {
            network: NET.into(),
            link: HOST_LINK.into()
        }]
    );
    drop(p);
    let p = rig.start(&[]);
    let s = status(&p);
    assert_eq!(host_link_of(&s), Some(shown(true)));
    assert!(s.driver.drift.is_empty(), "{:?}", s.driver.drift);
    assert_eq!(addresses(ns, HOST_LINK), ["10.70.0.2/32"]);
    assert_eq!(routes(ns, HOST_LINK), ["10.70.0.3", "10.70.0.4"]);
    assert!(
        pings(ns, "10.70.0.4"),
        "not reached after the link came back"
    );

    // a container leaving takes its route along
    ok(endpoint_call(&p, "Leave", NET, EP2), "Leave");
    delete_endpoint(&p, EP2);
    assert_eq!(routes(ns, HOST_LINK), ["10.70.0.3"]);

    delete_endpoint(&p, EP1);
    ok(delete_network(&p, NET), "DeleteNetwork");
    assert!(ns.link_details(HOST_LINK).is_none(), "host link left");
    assert!(
        ns.links_with_prefix(ipvlan_driver::HOST_LINK_PREFIX)
            .unwrap()
            .is_empty()
    );
    // the address went back to the pool
    ok(
        p.post(
            "/IpamDriver.RequestAddress",
            &body::request_this_address(POOL, "10.70.0.2"),
        ),
        "the host link's address after DeleteNetwork",
    );
}

#[test]
fn host_link_with_an_ip_range_routes_the_range_and_a_given_address() {
    let rig = Rig::new("hr");
    let ns = &rig.ns;
    let p = rig.start(&[]);
    let pool = ok(
        p.post(
            "/IpamDriver.RequestPool",
            r#"{"AddressSpace":"local","Pool":"10.71.0.0/24","SubPool":"10.71.0.192/27","Options":{},"V6":false}"#,
        ),
        "RequestPool",
    );
    let pool = pool["PoolID"].as_str().unwrap().to_string();
    ok(
        p.post(
            "/NetworkDriver.CreateNetwork",
            &body::create_network(
                NET,
                r#"{"parent":"hp0","kind":"macvlan","host_link":"10.71.0.250"}"#,
                r#"[{"AddressSpace":"local","Pool":"10.71.0.0/24"}]"#,
            ),
        ),
        "CreateNetwork host_link=ADDR",
    );
    assert_eq!(addresses(ns, HOST_LINK), ["10.71.0.250/32"]);
    assert_eq!(
        routes(ns, HOST_LINK),
        ["10.71.0.192/27"],
        "one route to the range"
    );
    let err = p
        .post(
            "/IpamDriver.RequestAddress",
            &body::request_this_address(&pool, "10.71.0.250"),
        )
        .assert_error(500);
    assert!(err.contains("in use"), "given address not reserved: {err}");
    assert_eq!(
        create_endpoint(&p, NET, EP1, "10.71.0.193/24", "").status,
        200
    );
    let link = join(&p, NET, EP1);
    assert_eq!(
        routes(ns, HOST_LINK),
        ["10.71.0.192/27"],
        "no per-container route"
    );
    let c = containerize("hrc", ns, &link, "10.71.0.193/24");
    assert!(pings(ns, "10.71.0.193"));
    assert!(pings(&c, "10.71.0.250"));
    // an address pinned outside the range (--ip) gets a route of its own
    assert_eq!(
        create_endpoint(&p, NET, EP2, "10.71.0.50/24", "").status,
        200
    );
    let pinned = join(&p, NET, EP2);
    assert_eq!(routes(ns, HOST_LINK), ["10.71.0.192/27", "10.71.0.50"]);
    let _pinned_ns = containerize("hrp", ns, &pinned, "10.71.0.50/24");
    assert!(pings(ns, "10.71.0.50"));
    delete_endpoint(&p, EP2);
    assert_eq!(routes(ns, HOST_LINK), ["10.71.0.192/27"]);
    delete_endpoint(&p, EP1);
    assert_eq!(routes(ns, HOST_LINK), ["10.71.0.192/27"], "the range stays");
    ok(delete_network(&p, NET), "DeleteNetwork");
    assert!(ns.link_details(HOST_LINK).is_none(), "host link left");
    ok(
        p.post(
            "/IpamDriver.RequestAddress",
            &body::request_this_address(&pool, "10.71.0.250"),
        ),
        "the given address after DeleteNetwork",
    );
}
