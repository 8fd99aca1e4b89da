//! Host links (`-o host_link`) on this host's kernel, through the real
//! binary in a namespace with a veth parent (macvlan; the VM rig covers
//! ipvlan): the host link's address from the plugin's IPAM, a route per
//! joined container, the host reaching containers (each in a namespace of
//! its own, as the engine leaves them) and they the host, reconcile after a
//! kill -9 putting back exactly what the records call for, and DeleteNetwork
//! leaving nothing behind; the host link answering ARP only for its own
//! address and taking no IPv6 address, so that the LAN reaches the host as
//! before (busybox arping); in a `dhcp=on` network, the address leased from
//! a real server (dnsmasq: apt-get install dnsmasq-base), kept across a
//! kill -9 and released with the network.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod kernel_rig;

use common::ops::status;
use common::{DhcpServer, NetNs, body, client_id_text, ip};
use ipvlan_driver::{HostLinkStatus, MissingHostLink};
use kernel_rig::{EP1, EP2, NET, Rig, create_endpoint, delete_network, endpoint_call, join};
use std::collections::BTreeSet;

const POOL: &str = "local/10.70.0.0/24";
const HOST_LINK: &str = "ivh7c1f2a9e0b3d";

fn ok(r: common::Reply, what: &str) -> serde_json::Value {
    assert_eq!(r.status, 200, "{what}: {}", r.body);
    r.json()
}

/// Creates NET, `host_link=on` macvlan on hp0, as the engine does: the
/// pool 10.70.0.0/24, its gateway 10.70.0.1, then CreateNetwork.
fn create_host_link_network(p: &common::Plugin) {
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
            p,
            NET,
            r#"{"parent":"hp0","kind":"macvlan","host_link":"on"}"#,
        ),
        "CreateNetwork host_link=on",
    );
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

/// `busybox APPLET ARGS` in `ns`. Needs busybox (busybox-static, which
/// .ci/run installs); without it the test fails saying so.
fn busybox(ns: &NetNs, applet: &str, args: &[&str]) -> std::process::Output {
    let busybox = std::process::Command::new("busybox").arg("true").status();
    assert!(
        busybox.is_ok_and(|s| s.success()),
        "busybox is needed for {applet}: apt-get install busybox-static"
    );
    std::process::Command::new(common::ip_binary().unwrap())
        .args(["netns", "exec", &ns.name, "busybox", applet])
        .args(args)
        .output()
        .unwrap()
}

/// Whether `from` gets an echo reply from `to` (three tries, two seconds
/// each: the first may wait for ARP).
fn pings(from: &NetNs, to: &str) -> bool {
    busybox(from, "ping", &["-c", "3", "-W", "2", to])
        .status
        .success()
}

/// The MACs that answer ARP for `address` on `dev` in `ns`: three
/// broadcast requests, every reply counted.
fn arp_answers(ns: &NetNs, dev: &str, address: &str) -> BTreeSet<String> {
    let out = busybox(
        ns,
        "arping",
        &["-b", "-c", "3", "-w", "4", "-I", dev, address],
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("reply from"))
        .filter_map(|l| {
            let (_, rest) = l.split_once('[')?;
            Some(rest.split_once(']')?.0.to_lowercase())
        })
        .collect()
}

/// The sysctl `key` (a path below /proc/sys/net) in `ns`.
fn sysctl(ns: &NetNs, key: &str) -> String {
    let path = format!("/proc/sys/net/{key}");
    ns.run_in(|| std::fs::read_to_string(&path))
        .unwrap()
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .trim()
        .to_string()
}

/// The host, at 10.70.0.10 on the parent, and a LAN peer at 10.70.0.50 on
/// the veth's other end, in a namespace of its own.
const HOST: &str = "10.70.0.10";
const HOST_LINK_ADDRESS: &str = "10.70.0.2";

/// The MACs that answer ARP for the host's address on the LAN, after
/// checking that the LAN peer reaches the host through each of them (its
/// neighbour entry set to each in turn, the parent's first: the entry left
/// is the worst the LAN could have learned).
fn lan_reaches_host(lan: &NetNs, parent: &str) -> BTreeSet<String> {
    let answers = arp_answers(lan, "hp0p", HOST);
    assert!(!answers.is_empty(), "no ARP answer for the host's address");
    let (first, others): (Vec<&String>, Vec<&String>) =
        answers.iter().partition(|mac| *mac == parent);
    for mac in first.into_iter().chain(others) {
        ip(&[
            "-n",
            &lan.name,
            "neigh",
            "replace",
            HOST,
            "lladdr",
            mac,
            "dev",
            "hp0p",
            "nud",
            "reachable",
        ])
        .unwrap();
        assert!(
            pings(lan, HOST),
            "the LAN does not reach the host through {mac}, which answered ARP for {HOST}"
        );
    }
    answers
}

/// Issue 20's "the host's existing LAN traffic is untouched", under ARP:
/// by default Linux answers ARP for any of the host's addresses on any
/// link, so the host link answered for the parent's address too (ARP
/// flux), and a LAN neighbour entry at the host link's MAC lost the host
/// once the link was deleted. (Loose reverse-path filtering, as systemd
/// sets it: under strict filtering the link answers no ARP from the LAN.)
#[test]
fn host_link_answers_arp_only_for_itself_and_takes_no_ipv6() {
    let rig = Rig::new("ha");
    let ns = &rig.ns;
    let lan = NetNs::new("hal").unwrap();
    ip(&["-n", &ns.name, "link", "set", "hp0p", "netns", &lan.name]).unwrap();
    ip(&[
        "-n",
        &lan.name,
        "addr",
        "add",
        "10.70.0.50/24",
        "dev",
        "hp0p",
    ])
    .unwrap();
    ip(&["-n", &lan.name, "link", "set", "hp0p", "up"]).unwrap();
    ip(&["-n", &ns.name, "addr", "add", "10.70.0.10/24", "dev", "hp0"]).unwrap();
    ns.run_in(|| std::fs::write("/proc/sys/net/ipv4/conf/all/rp_filter", "2"))
        .unwrap()
        .unwrap();
    let parent = kernel_rig::mac_of(ns, "hp0");
    let only_parent = BTreeSet::from([parent.clone()]);
    assert_eq!(
        lan_reaches_host(&lan, &parent),
        only_parent,
        "before any host link"
    );

    let p = rig.start(&[]);
    create_host_link_network(&p);
    assert_eq!(
        addresses(ns, HOST_LINK),
        [format!("{HOST_LINK_ADDRESS}/32")]
    );
    let own = kernel_rig::mac_of(ns, HOST_LINK);
    assert_eq!(
        lan_reaches_host(&lan, &parent),
        only_parent,
        "the host link answers ARP for the host's own address"
    );
    // the host link answers for its own address (the parent may too: its
    // ARP settings are the host's, not ours)
    let answers = arp_answers(&lan, "hp0p", HOST_LINK_ADDRESS);
    assert!(
        answers.contains(&own) && answers.is_subset(&BTreeSet::from([own.clone(), parent.clone()])),
        "answers for the host link's address: {answers:?}, the link is {own}"
    );
    // set over rtnetlink, as /proc/sys is read-only in a managed plugin
    assert_eq!(
        sysctl(ns, &format!("ipv4/conf/{HOST_LINK}/arp_ignore")),
        "1"
    );
    assert_eq!(
        sysctl(ns, &format!("ipv4/conf/{HOST_LINK}/arp_announce")),
        "2"
    );
    // no IPv6 address of its own, not even a link-local one
    let details = ns.link_details(HOST_LINK).unwrap();
    assert!(details.contains("addrgenmode none"), "{details}");
    let v6 = ip(&["-n", &ns.name, "-6", "-o", "addr", "show", "dev", HOST_LINK]).unwrap();
    assert!(v6.trim().is_empty(), "IPv6 on the host link: {v6}");

    // a restart that finds the link without these settings (made by an
    // older version) sets them; one that finds it gone (a reboot) makes it
    // the same way
    drop(p);
    let arp_ignore = format!("/proc/sys/net/ipv4/conf/{HOST_LINK}/arp_ignore");
    ns.run_in(|| std::fs::write(&arp_ignore, "0"))
        .unwrap()
        .unwrap();
    let p = rig.start(&[]);
    assert_eq!(
        sysctl(ns, &format!("ipv4/conf/{HOST_LINK}/arp_ignore")),
        "1"
    );
    drop(p);
    ip(&["-n", &ns.name, "link", "del", HOST_LINK]).unwrap();
    let p = rig.start(&[]);
    assert_eq!(
        sysctl(ns, &format!("ipv4/conf/{HOST_LINK}/arp_ignore")),
        "1"
    );
    let v6 = ip(&["-n", &ns.name, "-6", "-o", "addr", "show", "dev", HOST_LINK]).unwrap();
    assert!(v6.trim().is_empty(), "IPv6 on the re-made host link: {v6}");
    assert_eq!(
        lan_reaches_host(&lan, &parent),
        only_parent,
        "after reconcile re-made the host link"
    );

    // network rm: the LAN's neighbour entry is the parent's, so the host
    // stays reachable without a flush
    ok(delete_network(&p, NET), "DeleteNetwork");
    assert!(ns.link_details(HOST_LINK).is_none(), "host link left");
    assert!(pings(&lan, HOST), "the LAN lost the host after network rm");
    assert_eq!(
        lan_reaches_host(&lan, &parent),
        only_parent,
        "after network rm"
    );
}

#[test]
fn macvlan_host_link_reaches_containers_and_is_restored_after_kill_9() {
    let rig = Rig::new("hl");
    let ns = &rig.ns;
    let mut p = rig.start(&[]);
    create_host_link_network(&p);
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
        lease: None,
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

/// What the null IPAM sends in CreateNetwork (`dhcp=on` networks).
const NULL_IPAM: &str = r#"[{"AddressSpace":"null","Pool":"0.0.0.0/0"}]"#;

/// Option 61 of NET's host link, as dnsmasq prints it.
fn host_link_client_id() -> String {
    let key = ipvlan_driver::host_link_lease_key(NET);
    let mut id = b"\0ipvlan-rs:".to_vec();
    id.extend(key.bytes().take(64));
    client_id_text(&id)
}

#[test]
fn dhcp_host_link_leases_its_address_keeps_it_across_kill_9_and_releases_it() {
    let rig = Rig::new("hd");
    let ns = &rig.ns;
    // T1 of seconds: the host link's lease is renewed within the test
    let mut server = DhcpServer::start(
        ns,
        "hp0p",
        "10.77.0.100",
        "10.77.0.150",
        "2m",
        &[
            "--no-ping",
            "--dhcp-option=option:T1,3",
            "--dhcp-option=option:T2,100",
        ],
    )
    .unwrap();
    let env = [("DHCP_TIMEOUT_MS", "2000")];
    let mut p = rig.start(&env);
    let create = |p: &common::Plugin, options: &str| {
        p.post(
            "/NetworkDriver.CreateNetwork",
            &body::create_network(NET, options, NULL_IPAM),
        )
    };
    // the server owns the addresses: no host_link=ADDR
    let err = create(
        &p,
        r#"{"parent":"hp0","kind":"macvlan","dhcp":"on","host_link":"10.77.0.9"}"#,
    )
    .assert_error(500);
    assert!(
        err.contains("host_link=10.77.0.9") && err.contains("dhcp=on"),
        "{err}"
    );
    const OPTIONS: &str = r#"{"parent":"hp0","kind":"macvlan","dhcp":"on","host_link":"on"}"#;
    ok(create(&p, OPTIONS), "CreateNetwork dhcp=on host_link=on");

    // a /32 from the server's range, leased under the link's own client-id
    // and MAC
    let on_link = addresses(ns, HOST_LINK);
    assert_eq!(on_link.len(), 1, "{on_link:?}");
    let host = on_link[0].strip_suffix("/32").unwrap().to_string();
    let last: u8 = host.strip_prefix("10.77.0.").unwrap().parse().unwrap();
    assert!((100..=150).contains(&last), "{host}");
    let details = ns.link_details(HOST_LINK).unwrap();
    let id = host_link_client_id();
    server
        .wait_leases("the host link's lease", |leases| {
            leases
                .iter()
                .any(|l| l.client_id == id && l.address == host && details.contains(&l.mac))
        })
        .unwrap();
    let s = status(&p);
    let shown = s.driver.networks[0].host_link.clone().unwrap();
    let lease = shown.lease.expect("no lease in /status");
    assert_eq!(lease.address.to_string(), host);
    assert_eq!(lease.client_id_hex, id);
    let table = ipvlan_rs::cli::render(&s);
    let row = table
        .lines()
        .find(|l| l.starts_with(HOST_LINK))
        .unwrap_or_else(|| panic!("no lease row of the host link:\n{table}"));
    assert!(row.contains(&host), "{row}");

    // a container joins: a route to its leased address, reached both ways
    let r = p.post(
        "/NetworkDriver.CreateEndpoint",
        &body::create_endpoint(NET, EP1, &body::interface("", "")),
    );
    let address = ok(r, "CreateEndpoint")["Interface"]["Address"]
        .as_str()
        .unwrap()
        .to_string();
    let container_ip = address.split('/').next().unwrap().to_string();
    assert_ne!(container_ip, host);
    let link = join(&p, NET, EP1);
    let c = containerize("hdc", ns, &link, &address);
    assert_eq!(routes(ns, HOST_LINK), [container_ip.as_str()]);
    assert!(
        pings(ns, &container_ip),
        "the host does not reach {address}"
    );
    assert!(pings(&c, &host), "{address} does not reach the host link");

    // kill -9: the link, its address and its lease stay, and renewals go on
    let expires = |leases: &[common::LeaseLine]| {
        leases
            .iter()
            .find(|l| l.client_id == id)
            .map(|l| (l.address.clone(), l.expires))
    };
    let (_, before) = expires(&server.leases()).unwrap();
    p.kill9();
    let p = rig.start(&env);
    assert_eq!(addresses(ns, HOST_LINK), [format!("{host}/32")]);
    assert_eq!(routes(ns, HOST_LINK), [container_ip.as_str()]);
    assert!(pings(ns, &container_ip), "not reached after the restart");
    server
        .wait_leases("the host link's lease renewed", |leases| {
            expires(leases).is_some_and(|(a, end)| a == host && end > before)
        })
        .unwrap();
    let leases = server.leases();
    assert_eq!(leases.len(), 2, "a lease was taken twice: {leases:?}");

    // DeleteNetwork: the link goes and the lease is given back
    drop(c);
    delete_endpoint(&p, EP1);
    ok(delete_network(&p, NET), "DeleteNetwork");
    assert!(ns.link_details(HOST_LINK).is_none(), "host link left");
    server
        .wait_leases("the host link's lease released", |leases| leases.is_empty())
        .unwrap();

    // a silent server: a clear error, and no link, lease or network left
    server.stop();
    let err = create(&p, OPTIONS).assert_error(500);
    assert!(err.contains("no DHCP server answered on hp0"), "{err}");
    assert!(ns.link_details(HOST_LINK).is_none(), "host link left");
    let s = status(&p);
    assert!(s.driver.networks.is_empty(), "{:?}", s.driver.networks);
}
