#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The client against a real server: dnsmasq in a namespace at the far
//! end of a veth whose near end is the parent. Needs root and dnsmasq
//! (apt-get install dnsmasq-base); fails loudly without them.

use ipvlan_rs_dhcp::{self as dhcp, ClientId, DhcpError, Lease, Parent, Settings};
use std::collections::HashSet;
use std::future::Future;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use testkit::{DhcpServer, NetNs, ROUTER, client_id_text, ip};

/// The parent namespace, its veth and the server beyond it.
struct Lan {
    near: NetNs,
    parent: Parent,
    server: DhcpServer,
}

fn lan(first: &str, last: &str, extra: &[&str]) -> Lan {
    let near = NetNs::new("dhcpc").unwrap();
    near.add_veth_parent("dp0").unwrap();
    let server = DhcpServer::start(&near, "dp0p", first, last, "2m", extra).unwrap();
    let (index, mac) = near.link_index_and_mac("dp0").unwrap();
    Lan {
        parent: Parent {
            name: "dp0".into(),
            index,
            mac,
            mtu: None,
        },
        near,
        server,
    }
}

/// Runs `f` on a runtime whose thread lives in `ns`.
fn block_on<T: Send>(ns: &NetNs, f: impl Future<Output = T> + Send) -> T {
    ns.block_on(f).unwrap()
}

/// Endpoint `n`'s identity: its own MAC (macvlan) or the parent's (ipvlan).
fn endpoint(n: u8, hardware: [u8; 6]) -> ClientId {
    ClientId {
        client_id: format!("\0endpoint-{n}").into_bytes(),
        hardware,
        hostname: Some(format!("web-{n}")),
    }
}

fn in_range(lease: &Lease, first: u8, last: u8) -> bool {
    let o = lease.address.octets();
    o[..3] == [10, 77, 0] && (first..=last).contains(&o[3])
}

#[test]
fn leases_are_taken_renewed_rebound_and_released() {
    let lan = lan("10.77.0.100", "10.77.0.150", &["--no-ping"]);
    let parent = lan.parent.clone();
    // two ipvlan endpoints (the parent's MAC) and one macvlan endpoint
    let clients = vec![
        endpoint(1, parent.mac),
        endpoint(2, parent.mac),
        endpoint(3, [0x02, 0x42, 0xac, 0, 0, 3]),
    ];
    let settings = Settings::default();
    let first = block_on(&lan.near, {
        let (parent, clients) = (parent.clone(), clients.clone());
        async move {
            let mut first = Vec::new();
            for c in &clients {
                first.push(dhcp::acquire(&parent, c, &settings).await.unwrap());
            }
            first
        }
    });
    // what the containers' links would do: answer ARP for their addresses
    // (the server sends renewals' answers to the address)
    for lease in &first {
        let address = format!("{}/32", lease.address);
        ip(&["-n", &lan.near.name, "addr", "add", &address, "dev", "dp0"]).unwrap();
    }
    let (renewed, rebound) = block_on(&lan.near, {
        let (parent, clients, first) = (parent.clone(), clients.clone(), first.clone());
        async move {
            // a second apart, so that the server's expiry moves
            tokio::time::sleep(Duration::from_millis(1100)).await;
            let renewed = dhcp::renew(&parent, &clients[0], &first[0], &settings)
                .await
                .unwrap();
            let rebound = dhcp::rebind(&parent, &clients[2], &first[2], &settings)
                .await
                .unwrap();
            (renewed, rebound)
        }
    });
    let addresses: HashSet<Ipv4Addr> = first.iter().map(|l| l.address).collect();
    assert_eq!(addresses.len(), 3, "{first:?}");
    for lease in &first {
        assert!(in_range(lease, 100, 150), "{lease:?}");
        assert_eq!(lease.prefix_len, 24);
        assert_eq!(lease.router, Some(ROUTER.parse().unwrap()));
        assert_eq!(lease.server, Ipv4Addr::new(10, 77, 0, 1));
        assert_eq!(lease.lease_secs, 120);
    }
    assert_eq!(renewed.address, first[0].address);
    assert_eq!(rebound.address, first[2].address);
    assert!(renewed.granted_at > first[0].granted_at);
    // the server wrote each one down under its client identifier
    let ids: Vec<String> = clients
        .iter()
        .map(|c| client_id_text(&c.client_id))
        .collect();
    lan.server
        .wait_leases("three leases by client id", |leases| {
            ids.iter().zip(&first).all(|(id, lease)| {
                leases
                    .iter()
                    .any(|l| &l.client_id == id && l.address == lease.address.to_string())
            })
        })
        .unwrap();
    let before = lan.server.leases();
    let expiry = |leases: &[testkit::LeaseLine], id: &str| {
        leases.iter().find(|l| l.client_id == id).map(|l| l.expires)
    };
    assert!(
        expiry(&before, &ids[0]) >= Some(renewed.granted_at + 120),
        "{before:?}"
    );
    // release: gone from the server's file
    block_on(&lan.near, {
        let (parent, client) = (parent.clone(), clients[1].clone());
        let lease = first[1].clone();
        async move {
            dhcp::release(&parent, &client, &lease, &settings)
                .await
                .unwrap()
        }
    });
    lan.server
        .wait_leases("endpoint 2's lease released", |leases| {
            leases.iter().all(|l| l.client_id != ids[1]) && leases.len() == 2
        })
        .unwrap();
}

/// The xids of the server's log lines of `what` (`DHCPDISCOVER`...) from
/// `mac` (dnsmasq's --log-dhcp puts the xid, in decimal, before the kind).
fn logged_xids(log: &str, what: &str, mac: [u8; 6]) -> Vec<u32> {
    let mac = client_id_text(&mac);
    log.lines()
        .filter(|l| l.contains(&format!(" {what}(")) && l.contains(&mac))
        .filter_map(|l| {
            let before = l.split(&format!(" {what}(")).next()?;
            before.split_whitespace().last()?.parse().ok()
        })
        .collect()
}

#[test]
fn the_request_answering_an_offer_keeps_its_xid() {
    let lan = lan("10.77.0.100", "10.77.0.150", &["--no-ping"]);
    let parent = lan.parent.clone();
    let client = endpoint(7, [0x02, 0x42, 0xac, 0, 0, 7]);
    let hardware = client.hardware;
    block_on(&lan.near, async move {
        dhcp::acquire(&parent, &client, &Settings::default())
            .await
            .unwrap()
    });
    let log = lan.server.log();
    let discovers = logged_xids(&log, "DHCPDISCOVER", hardware);
    let requests = logged_xids(&log, "DHCPREQUEST", hardware);
    assert!(!discovers.is_empty() && !requests.is_empty(), "{log}");
    assert!(
        requests.iter().all(|x| discovers.contains(x)),
        "REQUEST xids {requests:?}, DISCOVER xids {discovers:?}\n{log}"
    );
}

#[test]
fn a_non_authoritative_server_that_forgot_a_lease_offers_its_address_again() {
    let mut lan = lan("10.77.0.100", "10.77.0.150", &["--no-ping"]);
    let parent = lan.parent.clone();
    let client = endpoint(8, [0x02, 0x42, 0xac, 0, 0, 8]);
    let settings = Settings {
        timeout: Duration::from_secs(2),
        ..Settings::default()
    };
    let first = block_on(&lan.near, {
        let (parent, client) = (parent.clone(), client.clone());
        async move { dhcp::acquire(&parent, &client, &settings).await.unwrap() }
    });
    // the server restarts without its lease file, not authoritative
    lan.server.stop();
    lan.server
        .forget_and_serve("10.77.0.100", "10.77.0.150", "2m");
    lan.server.set_authoritative(false);
    lan.server.resume().unwrap();
    let (rebooted, reclaimed) = block_on(&lan.near, {
        let (parent, client, first) = (parent.clone(), client.clone(), first.clone());
        async move {
            let rebooted = dhcp::reboot(&parent, &client, &first, &settings).await;
            let reclaimed = dhcp::reclaim(&parent, &client, &first, &settings).await;
            (rebooted, reclaimed)
        }
    });
    // INIT-REBOOT of a client it does not know: silence
    assert!(
        matches!(rebooted, Err(DhcpError::NoServer { .. })),
        "{rebooted:?}"
    );
    // a DISCOVER naming the address gets it back
    let reclaimed = reclaimed.unwrap();
    assert_eq!(reclaimed.address, first.address);
    assert_eq!(reclaimed.prefix_len, 24);
    assert!(reclaimed.granted_at >= first.granted_at);
    let id = client_id_text(&client.client_id);
    lan.server
        .wait_leases("the reclaimed lease", |leases| {
            leases
                .iter()
                .any(|l| l.client_id == id && l.address == first.address.to_string())
        })
        .unwrap();

    // a server that now serves other addresses offers one of those:
    // refused, and said so
    lan.server.stop();
    lan.server
        .forget_and_serve("10.77.0.200", "10.77.0.210", "2m");
    lan.server.resume().unwrap();
    let err = block_on(&lan.near, async move {
        dhcp::reclaim(&parent, &client, &first, &settings)
            .await
            .unwrap_err()
    });
    assert!(matches!(err, DhcpError::NotOffered { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&reclaimed.address.to_string()), "{text}");
}

#[test]
fn a_server_that_pings_an_address_before_offering_it_offers_another() {
    // dnsmasq pings unless --no-ping, even the address a DISCOVER asks for
    let mut lan = lan("10.77.0.100", "10.77.0.150", &[]);
    let parent = lan.parent.clone();
    let client = endpoint(9, [0x02, 0x42, 0xac, 0, 0, 9]);
    // the server waits for its ping's answer before offering
    let settings = Settings {
        timeout: Duration::from_secs(10),
        ..Settings::default()
    };
    let first = block_on(&lan.near, {
        let (parent, client) = (parent.clone(), client.clone());
        async move { dhcp::acquire(&parent, &client, &settings).await.unwrap() }
    });
    // the container keeps answering for its address (pings too: its
    // prefix routes the answer); the server forgets it
    let address = format!("{}/24", first.address);
    ip(&["-n", &lan.near.name, "addr", "add", &address, "dev", "dp0"]).unwrap();
    lan.server.stop();
    lan.server
        .forget_and_serve("10.77.0.100", "10.77.0.150", "2m");
    lan.server.resume().unwrap();
    let err = block_on(&lan.near, {
        let first = first.clone();
        async move {
            dhcp::reclaim(&parent, &client, &first, &settings)
                .await
                .unwrap_err()
        }
    });
    let DhcpError::NotOffered { offered, .. } = &err else {
        panic!("{err:?}\n{}", lan.server.log())
    };
    assert_ne!(*offered, first.address);
    let text = err.to_string();
    assert!(
        text.contains(&first.address.to_string()) && text.contains("pings"),
        "{text}"
    );
}

#[test]
fn a_silent_server_is_an_error_naming_the_parent_within_the_bound() {
    let mut lan = lan("10.77.0.100", "10.77.0.150", &["--no-ping"]);
    lan.server.stop();
    let parent = lan.parent.clone();
    let settings = Settings {
        timeout: Duration::from_secs(2),
        ..Settings::default()
    };
    let started = Instant::now();
    let err = block_on(&lan.near, async move {
        dhcp::acquire(&parent, &endpoint(1, parent.mac), &settings)
            .await
            .unwrap_err()
    });
    let took = started.elapsed();
    assert!(matches!(err, DhcpError::NoServer { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("dp0") && text.contains("no DHCP server answered"),
        "{text}"
    );
    // the bound is the contract: not before it, and not unboundedly after
    assert!(took >= settings.timeout, "{took:?}");
    assert!(took < settings.timeout + testkit::GUARD, "{took:?}");
}

#[test]
fn a_server_naks_an_address_of_another_network() {
    let lan = lan("10.77.0.100", "10.77.0.150", &["--no-ping"]);
    let parent = lan.parent.clone();
    let stale = Lease {
        address: Ipv4Addr::new(192, 168, 99, 7),
        prefix_len: 24,
        router: None,
        server: Ipv4Addr::new(192, 168, 99, 1),
        server_mac: [0xff; 6],
        lease_secs: 120,
        renew_secs: 60,
        rebind_secs: 105,
        granted_at: 0,
    };
    let err = block_on(&lan.near, async move {
        dhcp::reboot(
            &parent,
            &endpoint(1, parent.mac),
            &stale,
            &Settings::default(),
        )
        .await
        .unwrap_err()
    });
    assert!(matches!(err, DhcpError::Nak { .. }), "{err:?}");
    assert!(err.to_string().contains("192.168.99.7"), "{err}");
}

#[test]
fn an_address_another_host_answers_arp_for_is_declined() {
    // one address to give, and the server's own interface holds it too
    let lan = lan("10.77.0.200", "10.77.0.200", &["--no-ping"]);
    ip(&[
        "-n",
        &lan.server.ns.name,
        "addr",
        "add",
        "10.77.0.200/32",
        "dev",
        "dp0p",
    ])
    .unwrap();
    let parent = lan.parent.clone();
    let settings = Settings {
        timeout: Duration::from_secs(3),
        ..Settings::default()
    };
    let err = block_on(&lan.near, async move {
        dhcp::acquire(&parent, &endpoint(1, parent.mac), &settings)
            .await
            .unwrap_err()
    });
    assert!(matches!(err, DhcpError::AddressInUse { .. }), "{err:?}");
    assert!(err.to_string().contains("10.77.0.200"), "{err}");
    // the server heard the DECLINE
    let log = lan.server.log();
    assert!(log.contains("DHCPDECLINE"), "{log}");
}

#[test]
fn twenty_five_exchanges_at_once_get_distinct_leases() {
    let lan = lan("10.77.0.10", "10.77.0.99", &["--no-ping"]);
    let parent = lan.parent.clone();
    let leases = block_on(&lan.near, async move {
        let settings = Settings {
            timeout: Duration::from_secs(20),
            ..Settings::default()
        };
        let tasks: Vec<_> = (0..25u8)
            .map(|n| {
                let parent = parent.clone();
                let client = if n % 2 == 0 {
                    endpoint(n, parent.mac)
                } else {
                    endpoint(n, [0x02, 0x42, 0xac, 1, 0, n])
                };
                tokio::spawn(async move { dhcp::acquire(&parent, &client, &settings).await })
            })
            .collect();
        let mut leases = Vec::new();
        for t in tasks {
            leases.push(t.await.unwrap().unwrap());
        }
        leases
    });
    let distinct: HashSet<Ipv4Addr> = leases.iter().map(|l| l.address).collect();
    assert_eq!(distinct.len(), 25);
    assert!(leases.iter().all(|l| in_range(l, 10, 99)));
    lan.server
        .wait_leases("25 leases", |l| l.len() == 25)
        .unwrap();
}
