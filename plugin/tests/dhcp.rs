//! `dhcp=on` networks through the real binary, against a real DHCP server:
//! dnsmasq in a namespace at the far end of the parent's veth. macvlan
//! here (this host has no ipvlan). Leases taken at CreateEndpoint, the
//! router as Join's gateway, renewals going on across a kill -9, release
//! at DeleteEndpoint, a silent server failing within the bound, many
//! endpoints at once, and the leases and exchanges as `/status` and
//! `/metrics` show them. Needs root and dnsmasq (apt-get install dnsmasq-base).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod kernel_rig;

use common::ops::{metrics, status, value};
use common::{
    DhcpServer, LeaseLine, NetNs, Plugin, ROUTER, SERVER_ADDRESS, body, client_id_text, docker_id,
    ip,
};
use kernel_rig::{NET, Rig, endpoint_call, join};
use std::collections::HashSet;
use std::net::Ipv4Addr;

/// What the null IPAM sends in CreateNetwork.
const NULL_IPAM: &str = r#"[{"AddressSpace":"null","Pool":"0.0.0.0/0"}]"#;
const DHCP_MACVLAN: &str = r#"{"parent":"hp0","kind":"macvlan","dhcp":"on"}"#;

/// Option 61 as the driver sends it for endpoint `eid`.
fn client_id(eid: &str) -> String {
    let mut id = vec![0u8];
    id.extend_from_slice(b"ipvlan-rs:");
    id.extend_from_slice(eid.as_bytes());
    client_id_text(&id)
}

fn lan(tag: &str, first: &str, last: &str) -> (Rig, DhcpServer) {
    let rig = Rig::new(tag);
    // T1 and T2 of seconds, so that renewals happen within a test; the
    // lease itself is dnsmasq's minimum
    let server = DhcpServer::start(
        &rig.ns,
        "hp0p",
        first,
        last,
        "2m",
        &[
            "--no-ping",
            "--dhcp-option=option:T1,3",
            "--dhcp-option=option:T2,100",
        ],
    )
    .unwrap();
    (rig, server)
}

fn create_dhcp_network(p: &Plugin) {
    let r = p.post(
        "/NetworkDriver.CreateNetwork",
        &body::create_network(NET, DHCP_MACVLAN, NULL_IPAM),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

/// CreateEndpoint without an address; the answer's address and MAC.
fn leased_endpoint(p: &Plugin, ep: &str) -> (String, String) {
    let r = p.post(
        "/NetworkDriver.CreateEndpoint",
        &body::create_endpoint(NET, ep, &body::interface("", "")),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    let address = v["Interface"]["Address"].as_str().unwrap().to_string();
    let mac = v["Interface"]["MacAddress"].as_str().unwrap().to_string();
    (address, mac)
}

/// A container's namespace holding `link` (from the rig's namespace) up,
/// with `address`, as the engine sets it up after Join.
fn container(rig: &Rig, link: &str, address: &str) -> NetNs {
    let c = NetNs::new("kdc").unwrap();
    ip(&["-n", &rig.ns.name, "link", "set", link, "netns", &c.name]).unwrap();
    ip(&["-n", &c.name, "addr", "add", address, "dev", link]).unwrap();
    ip(&["-n", &c.name, "link", "set", link, "up"]).unwrap();
    c
}

fn in_range(address: &str, first: u8, last: u8) -> bool {
    let Some((ip, len)) = address.split_once('/') else {
        return false;
    };
    let ip: Ipv4Addr = ip.parse().unwrap();
    let o = ip.octets();
    len == "24" && o[..3] == [10, 77, 0] && (first..=last).contains(&o[3])
}

fn line_of<'a>(leases: &'a [LeaseLine], eid: &str) -> Option<&'a LeaseLine> {
    leases.iter().find(|l| l.client_id == client_id(eid))
}

#[test]
fn dhcp_endpoints_lease_renew_across_kill_9_and_release() {
    let (rig, mut server) = lan("kdh", "10.77.0.100", "10.77.0.150");
    let mut p = rig.start(&[("DHCP_TIMEOUT_MS", "2000")]);

    // the documented form only: null IPAM, and not on routed ipvlan
    let r = p.post(
        "/NetworkDriver.CreateNetwork",
        &body::create_network(
            NET,
            DHCP_MACVLAN,
            &body::ipv4_data("10.70.0.0/24", "10.70.0.1/24"),
        ),
    );
    let err = r.assert_error(500);
    for needle in ["--ipam-driver null", "--subnet", "10.70.0.0/24"] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
    let r = p.post(
        "/NetworkDriver.CreateNetwork",
        &body::create_network(
            NET,
            r#"{"parent":"hp0","dhcp":"on","ipvlan_mode":"l3"}"#,
            NULL_IPAM,
        ),
    );
    assert!(r.assert_error(500).contains("ipvlan_mode=l3"));
    create_dhcp_network(&p);

    let (ep1, ep2) = (docker_id(1), docker_id(2));
    let (a1, mac1) = leased_endpoint(&p, &ep1);
    let (a2, mac2) = leased_endpoint(&p, &ep2);
    assert!(
        in_range(&a1, 100, 150) && in_range(&a2, 100, 150),
        "{a1} {a2}"
    );
    assert_ne!(a1, a2);
    assert_ne!(mac1, mac2);
    // the server holds both, under distinct client ids, for the MACs the
    // engine was told
    server
        .wait_leases("both endpoints' leases", |leases| {
            [(&ep1, &a1, &mac1), (&ep2, &a2, &mac2)]
                .iter()
                .all(|(ep, a, mac)| {
                    line_of(leases, ep).is_some_and(|l| {
                        a.starts_with(&format!("{}/", l.address)) && &&l.mac == mac
                    })
                })
        })
        .unwrap();
    // a repeated create answers the same lease, taking no second one
    assert_eq!(leased_endpoint(&p, &ep1), (a1.clone(), mac1.clone()));

    let j = p.post("/NetworkDriver.Join", &body::join(NET, &ep1));
    assert_eq!(j.status, 200, "{}", j.body);
    assert_eq!(
        j.json()["Gateway"],
        ROUTER,
        "the router option is the default route"
    );
    let link = j.json()["InterfaceName"]["SrcName"]
        .as_str()
        .unwrap()
        .to_string();
    let details = rig.ns.link_details(&link).unwrap();
    assert!(
        details.contains(&mac1),
        "link lacks the leased MAC {mac1}: {details}"
    );
    // what the engine does next: the link into the container, with its
    // address (the server answers renewals there, so it must answer ARP)
    let c1 = container(&rig, &link, &a1);
    let c2 = container(&rig, &join(&p, NET, &ep2), &a2);

    // kill -9 mid-lease; the next plugin reloads the leases and renews them
    let expiry_before = line_of(&server.leases(), &ep2).unwrap().expires;
    p.kill9();
    let p = rig.start(&[("DHCP_TIMEOUT_MS", "2000")]);
    common::eventually(common::GUARD, || {
        p.log_text().matches("DHCP lease extended").count() >= 4
    });
    let log = p.log_text();
    assert!(log.matches("DHCP lease extended").count() >= 4, "{log}");
    let leases = server.leases();
    assert_eq!(leases.len(), 2, "a lease was taken twice: {leases:?}");
    assert!(
        line_of(&leases, &ep2).unwrap().expires > expiry_before,
        "{leases:?}"
    );

    // DeleteEndpoint gives the lease back
    drop(c1);
    assert_eq!(endpoint_call(&p, "DeleteEndpoint", NET, &ep1).status, 200);
    server
        .wait_leases("endpoint 1's lease released", |leases| {
            line_of(leases, &ep1).is_none() && line_of(leases, &ep2).is_some()
        })
        .unwrap();

    // a silent LAN: a clear error within the bound, nothing left allocated
    server.stop();
    let ep3 = docker_id(3);
    let r = p.post(
        "/NetworkDriver.CreateEndpoint",
        &body::create_endpoint(NET, &ep3, &body::interface("", "")),
    );
    let err = r.assert_error(500);
    assert!(err.contains("no DHCP server answered on hp0"), "{err}");
    assert_ne!(endpoint_call(&p, "EndpointOperInfo", NET, &ep3).status, 200);

    // DeleteNetwork releases what is left
    server.resume().unwrap();
    drop(c2);
    let r = p.post("/NetworkDriver.DeleteNetwork", &body::network(NET));
    assert_eq!(r.status, 200, "{}", r.body);
    server
        .wait_leases("every lease released", |leases| leases.is_empty())
        .unwrap();
}

#[test]
fn twenty_dhcp_endpoints_at_once_get_distinct_leases() {
    let (rig, server) = lan("kdm", "10.77.0.10", "10.77.0.99");
    let p = rig.start(&[]);
    create_dhcp_network(&p);
    let ids: Vec<String> = (10..30).map(docker_id).collect();
    let addresses: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = ids
            .iter()
            .map(|ep| {
                let p = &p;
                s.spawn(move || leased_endpoint(p, ep).0)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let distinct: HashSet<&String> = addresses.iter().collect();
    assert_eq!(distinct.len(), 20, "{addresses:?}");
    assert!(
        addresses.iter().all(|a| in_range(a, 10, 99)),
        "{addresses:?}"
    );
    server
        .wait_leases("20 leases by distinct client ids", |leases| {
            ids.iter().all(|ep| line_of(leases, ep).is_some())
        })
        .unwrap();
}

/// What [`changed_while_down`] leaves: the rig, the server, the new
/// plugin, the endpoint, its leased address (no prefix) and its container.
struct AfterDowntime {
    _rig: Rig,
    server: DhcpServer,
    p: Plugin,
    ep: String,
    ip: String,
    _container: NetNs,
}

/// A leased endpoint (the `n`th) joined into a container; then, with the
/// plugin killed and the server stopped, `meanwhile` changes the server;
/// then the server and a new plugin start.
fn changed_while_down(tag: &str, n: u64, meanwhile: impl FnOnce(&mut DhcpServer)) -> AfterDowntime {
    let (rig, mut server) = lan(tag, "10.77.0.100", "10.77.0.150");
    let mut p = rig.start(&[("DHCP_TIMEOUT_MS", "2000")]);
    create_dhcp_network(&p);
    let ep = docker_id(n);
    let (address, _) = leased_endpoint(&p, &ep);
    let link = join(&p, NET, &ep);
    let container = container(&rig, &link, &address);
    p.kill9();
    server.stop();
    meanwhile(&mut server);
    server.resume().unwrap();
    let p = rig.start(&[("DHCP_TIMEOUT_MS", "2000")]);
    let ip = address.split('/').next().unwrap().to_string();
    AfterDowntime {
        _rig: rig,
        server,
        p,
        ep,
        ip,
        _container: container,
    }
}

/// The first log line of `p` containing `wanted`, waited for.
fn log_line(p: &Plugin, wanted: &str) -> String {
    common::eventually(common::GUARD, || p.log_text().contains(wanted));
    let log = p.log_text();
    log.lines()
        .find(|l| l.contains(wanted))
        .unwrap_or_else(|| panic!("no line {wanted:?} in\n{log}"))
        .to_string()
}

#[test]
fn a_lease_the_server_refused_while_the_plugin_was_down_is_logged_naming_it() {
    // the server forgets its leases and now serves another range, so it
    // refuses the renewal, and offers no longer the address
    let down = changed_while_down("kdn", 40, |server| {
        server.forget_and_serve("10.77.0.200", "10.77.0.210", "2m");
    });
    let (p, ep, ip) = (&down.p, &down.ep, &down.ip);
    let wanted = format!("refused to extend the lease of endpoint {ep} ({ip})");
    let line = log_line(p, &wanted);
    assert!(line.contains("ERROR"), "{line}");
    // refused once: no more renewals of it
    let log = p.log_text();
    let refusals = log.matches(&wanted).count();
    assert_eq!(refusals, 1, "{log}");
}

#[test]
fn a_lease_a_non_authoritative_server_forgot_while_the_plugin_was_down_is_regained() {
    // the server loses its lease file and comes back not authoritative
    // (ISC dhcpd's default): it NAKs the unicast renewal of a client it
    // does not know, and would ignore its INIT-REBOOT
    let down = changed_while_down("kdr", 45, |server| {
        server.forget_and_serve("10.77.0.100", "10.77.0.150", "2m");
        server.set_authoritative(false);
    });
    let (p, ep, ip) = (&down.p, &down.ep, &down.ip);
    let wanted = format!("granted endpoint {ep} its address {ip} again");
    let line = log_line(p, &wanted);
    assert!(line.contains("INFO"), "{line}");
    let log = p.log_text();
    assert!(!log.contains("refused to extend"), "{log}");
    // the server holds it again, for this endpoint, and renewals go on
    down.server
        .wait_leases("the regained lease", |leases| {
            line_of(leases, ep).is_some_and(|l| &l.address == ip)
        })
        .unwrap();
    let regained_at = log.find(&wanted).unwrap();
    common::eventually(common::GUARD, || {
        p.log_text()[regained_at..].contains("DHCP lease extended")
    });
    let log = p.log_text();
    assert!(log[regained_at..].contains("DHCP lease extended"), "{log}");
    let s = status(p);
    let e = s.driver.endpoints.iter().find(|e| &e.id == ep).unwrap();
    let lease = e.lease.as_ref().unwrap();
    assert!(!lease.lost, "{lease:?}");
    assert_eq!(&lease.address.to_string(), ip);
}

#[test]
fn status_shows_the_lease_the_server_holds_and_metrics_count_the_exchanges() {
    let (rig, server) = lan("kds", "10.77.0.160", "10.77.0.180");
    let p = rig.start(&[("DHCP_TIMEOUT_MS", "2000")]);
    create_dhcp_network(&p);
    let exchanges = |s: &common::ops::Scrape, kind: &str, outcome: &str| {
        value(
            s,
            "ipvlan_rs_dhcp_exchanges_total",
            &[("kind", kind), ("outcome", outcome)],
        )
    };
    let before = metrics(&p);
    assert_eq!(value(&before, "ipvlan_rs_dhcp_leases", &[]), 0.0);

    let ep = docker_id(50);
    let (address, _) = leased_endpoint(&p, &ep);
    server
        .wait_leases("the endpoint's lease", |leases| {
            line_of(leases, &ep).is_some()
        })
        .unwrap();
    let line = line_of(&server.leases(), &ep).unwrap().clone();
    let s = status(&p);
    assert!(s.driver.networks.iter().all(|n| n.dhcp), "{:?}", s.driver);
    let e = s.driver.endpoints.iter().find(|e| e.id == ep).unwrap();
    let lease = e
        .lease
        .as_ref()
        .unwrap_or_else(|| panic!("no lease: {e:?}"));
    assert_eq!(lease.address.to_string(), line.address);
    assert!(
        address.starts_with(&format!("{}/", line.address)),
        "{address}"
    );
    assert_eq!(lease.client_id_hex, line.client_id);
    assert_eq!(lease.client_id, format!("ipvlan-rs:{ep}"));
    assert_eq!(lease.server.to_string(), SERVER_ADDRESS);
    assert!(lease.expires_at.is_some() && !lease.lost, "{lease:?}");
    let table = ipvlan_rs::cli::render(&s);
    assert!(table.contains("DHCP LEASES"), "{table}");
    assert!(table.contains(&format!("ipvlan-rs:{}", &ep)), "{table}");

    let held = metrics(&p);
    assert_eq!(
        exchanges(&held, "acquire", "ok") - exchanges(&before, "acquire", "ok"),
        1.0
    );
    assert_eq!(value(&held, "ipvlan_rs_dhcp_leases", &[]), 1.0);

    // DeleteEndpoint answers after the release went out
    assert_eq!(endpoint_call(&p, "DeleteEndpoint", NET, &ep).status, 200);
    let s = status(&p);
    assert!(
        s.driver.endpoints.iter().all(|e| e.lease.is_none()),
        "{:?}",
        s.driver.endpoints
    );
    let gone = metrics(&p);
    assert_eq!(
        exchanges(&gone, "release", "ok") - exchanges(&before, "release", "ok"),
        1.0
    );
    assert_eq!(value(&gone, "ipvlan_rs_dhcp_leases", &[]), 0.0);
    server
        .wait_leases("the lease released", |leases| {
            line_of(leases, &ep).is_none()
        })
        .unwrap();
}
