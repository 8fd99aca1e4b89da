//! Crash safety of the driver through the real binary: networks and endpoints under kill -9
//! storms, on real macvlan links in a network namespace.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::storm::{Lcg, kill_after, kills, quiet_dead_socket_panics, try_post};
use common::{PluginDir, body};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What a client knows of one object after its last call about it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Known {
    Present,
    Absent,
    /// A call about it was in flight when the plugin died: either outcome
    /// is right, and the restarted plugin says which.
    InFlight,
}

struct Endpoint {
    id: String,
    addr: String,
    known: Known,
    joined: bool,
}

/// Driver state under kill -9: concurrent clients create and delete
/// networks, create, join and delete endpoints (real macvlan links on a veth
/// parent) while the plugin is killed at random moments, five times (or
/// `CRASH_KILLS`, see `make soak`) on one
/// state dir. After each restart every acknowledged network and endpoint is
/// there, every acknowledged deletion stuck, and every container link on
/// the host belongs to a live endpoint (reconcile removed the rest).
#[test]
fn networks_and_endpoints_survive_kill_9_and_no_link_is_orphaned() {
    common::require_root();
    quiet_dead_socket_panics();
    let ns = common::NetNs::new("cs").unwrap();
    ns.add_veth_parent("hp0").unwrap();
    let dir = PluginDir::new().unwrap();
    let socket = dir.socket.clone();
    let mut plugin = common::start_at(Some(&ns.name), &dir, &[]);
    const CLIENTS: usize = 4;
    // per client: its network (known state) and its endpoints
    type Client = (String, Known, Vec<Endpoint>);
    let clients: Arc<Mutex<Vec<Client>>> = Arc::new(Mutex::new(
        (0..CLIENTS)
            .map(|c| {
                (
                    format!("{c:02x}{}", "a".repeat(62)),
                    Known::Absent,
                    Vec::new(),
                )
            })
            .collect(),
    ));
    let acked = Arc::new(AtomicUsize::new(0));
    let mut rng = Lcg(0xc0ffee);
    let mut next_ep = 0u64;
    let rounds = kills(5);
    for round in 0..rounds {
        let stop = Arc::new(AtomicBool::new(false));
        let handles: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (socket, clients, acked, stop) =
                    (socket.clone(), clients.clone(), acked.clone(), stop.clone());
                let first_ep = next_ep + (c as u64) * 100_000;
                std::thread::spawn(move || {
                    let mut rng = Lcg(round * 31 + c as u64);
                    let mut ep_n = first_ep;
                    let call = |path: &str, b: &str| try_post(&socket, path, b);
                    while !stop.load(Ordering::Relaxed) {
                        let (net, net_known, live) = {
                            let g = clients.lock().unwrap();
                            let live = g[c].2.iter().filter(|e| e.known == Known::Present).count();
                            (g[c].0.clone(), g[c].1, live)
                        };
                        let set = |f: &dyn Fn(&mut Client)| f(&mut clients.lock().unwrap()[c]);
                        if net_known == Known::Absent {
                            set(&|cl| cl.1 = Known::InFlight);
                            let ipv4 = body::ipv4_data(
                                &format!("10.{}.0.0/16", 100 + c),
                                &format!("10.{}.0.1/16", 100 + c),
                            );
                            let b = body::create_network(
                                &net,
                                r#"{"parent":"hp0","kind":"macvlan"}"#,
                                &ipv4,
                            );
                            let Some((st, _)) = call("/NetworkDriver.CreateNetwork", &b) else {
                                return;
                            };
                            assert_eq!(st, 200);
                            set(&|cl| cl.1 = Known::Present);
                        } else if live == 0 && rng.next(6) == 0 {
                            // endpoints must be gone first, as the engine ensures
                            if clients.lock().unwrap()[c]
                                .2
                                .iter()
                                .any(|e| e.known != Known::Absent)
                            {
                                continue;
                            }
                            set(&|cl| cl.1 = Known::InFlight);
                            let Some((st, _)) =
                                call("/NetworkDriver.DeleteNetwork", &body::network(&net))
                            else {
                                return;
                            };
                            assert_eq!(st, 200);
                            set(&|cl| {
                                cl.1 = Known::Absent;
                                cl.2.clear();
                            });
                        } else if live < 6 && rng.next(2) == 0 {
                            ep_n += 1;
                            let id = format!("{ep_n:012x}{}", "e".repeat(52));
                            let addr =
                                format!("10.{}.{}.{}/16", 100 + c, (ep_n >> 8) & 0xff, ep_n & 0xff);
                            clients.lock().unwrap()[c].2.push(Endpoint {
                                id: id.clone(),
                                addr: addr.clone(),
                                known: Known::InFlight,
                                joined: false,
                            });
                            let b = body::create_endpoint(&net, &id, &body::interface(&addr, ""));
                            let Some((st, v)) = call("/NetworkDriver.CreateEndpoint", &b) else {
                                return;
                            };
                            assert_eq!(st, 200, "{v}");
                            acked.fetch_add(1, Ordering::Relaxed);
                            set(&|cl| {
                                if let Some(e) = cl.2.iter_mut().find(|e| e.id == id) {
                                    e.known = Known::Present
                                }
                            });
                        } else {
                            let pick = {
                                let g = clients.lock().unwrap();
                                let present: Vec<_> = g[c]
                                    .2
                                    .iter()
                                    .filter(|e| e.known == Known::Present)
                                    .map(|e| (e.id.clone(), e.joined))
                                    .collect();
                                if present.is_empty() {
                                    continue;
                                }
                                present[rng.next(present.len() as u64) as usize].clone()
                            };
                            let (id, joined) = pick;
                            if !joined && rng.next(2) == 0 {
                                let Some((st, v)) =
                                    call("/NetworkDriver.Join", &body::join(&net, &id))
                                else {
                                    return;
                                };
                                assert_eq!(st, 200, "{v}");
                                set(&|cl| {
                                    if let Some(e) = cl.2.iter_mut().find(|e| e.id == id) {
                                        e.joined = true
                                    }
                                });
                            } else {
                                set(&|cl| {
                                    if let Some(e) = cl.2.iter_mut().find(|e| e.id == id) {
                                        e.known = Known::InFlight
                                    }
                                });
                                let Some((st, _)) = call(
                                    "/NetworkDriver.DeleteEndpoint",
                                    &body::endpoint(&net, &id),
                                ) else {
                                    return;
                                };
                                assert_eq!(st, 200);
                                acked.fetch_add(1, Ordering::Relaxed);
                                set(&|cl| {
                                    if let Some(e) = cl.2.iter_mut().find(|e| e.id == id) {
                                        e.known = Known::Absent
                                    }
                                });
                            }
                        }
                    }
                })
            })
            .collect();
        next_ep += 1_000_000;
        kill_after(&mut plugin, &acked, 12 + rng.next(20) as usize, round);
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            assert!(
                h.join().is_ok(),
                "a client saw a wrong answer (round {round})"
            );
        }
        plugin = common::start_at(Some(&ns.name), &dir, &[]);

        // the restarted plugin against what was acknowledged
        let mut g = clients.lock().unwrap();
        let mut live_links = HashSet::new();
        for (c, (net, net_known, eps)) in g.iter_mut().enumerate() {
            // a probe endpoint (with an address of the client's subnet)
            // tells whether the network is known
            let probe = format!("ff{}", "f".repeat(62));
            let addr = format!("10.{}.255.254/16", 100 + c);
            let b = body::create_endpoint(net, &probe, &body::interface(&addr, ""));
            let r = plugin.post("/NetworkDriver.CreateEndpoint", &b);
            let exists = r.status == 200;
            if exists {
                assert_eq!(
                    plugin
                        .post(
                            "/NetworkDriver.DeleteEndpoint",
                            &body::endpoint(net, &probe)
                        )
                        .status,
                    200
                );
            }
            match *net_known {
                Known::Present => assert!(exists, "acknowledged network {net} lost: {}", r.body),
                Known::Absent => assert!(!exists, "deleted network {net} came back"),
                Known::InFlight => {
                    *net_known = if exists {
                        Known::Present
                    } else {
                        Known::Absent
                    }
                }
            }
            if !exists {
                eps.clear();
                continue;
            }
            for e in eps.iter_mut() {
                let r = plugin.post(
                    "/NetworkDriver.EndpointOperInfo",
                    &body::endpoint(net, &e.id),
                );
                let there = r.status == 200;
                match e.known {
                    Known::Present => {
                        assert!(there, "acknowledged endpoint {} lost: {}", e.id, r.body)
                    }
                    Known::Absent => assert!(!there, "deleted endpoint {} came back", e.id),
                    Known::InFlight => e.known = if there { Known::Present } else { Known::Absent },
                }
                if there {
                    live_links.insert(r.json()["Value"]["link"].as_str().unwrap().to_string());
                    let _ = &e.addr;
                }
            }
            eps.retain(|e| e.known == Known::Present);
        }
        let orphans: Vec<String> = common::container_links(&ns)
            .into_iter()
            .filter(|l| !live_links.contains(l))
            .collect();
        assert!(
            orphans.is_empty(),
            "round {round}: links of no endpoint after reconcile: {orphans:?}"
        );
    }
    let total = acked.load(Ordering::Relaxed);
    assert!(
        total > 50,
        "only {total} acknowledged endpoint changes: the storm did not run"
    );
    println!("{total} acknowledged endpoint creates/deletes across {rounds} kills");
}
