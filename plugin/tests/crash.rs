//! Crash safety of the IPAM through the real binary: concurrent clients
//! allocate and release while the plugin is killed with SIGKILL at random
//! moments, then restarted on the same state dir. No address acknowledged
//! before a kill may be handed out again, and every acknowledged one must
//! still be held (and releasable) at the end.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Plugin, PluginDir, body, request};
use std::collections::HashSet;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Alive while the plugin answers; a refused connection ends a client.
fn try_post(socket: &Path, path: &str, body: &str) -> Option<(u16, serde_json::Value)> {
    let socket = socket.to_path_buf();
    let (path, body) = (path.to_string(), body.to_string());
    // request() panics on a dead socket; catch that as "plugin gone"
    std::panic::catch_unwind(move || {
        let r = request(&socket, "POST", &path, body.as_bytes());
        (
            r.status,
            serde_json::from_str(&r.body).unwrap_or(serde_json::Value::Null),
        )
    })
    .ok()
    .filter(|(status, _)| *status != 0)
}

/// Clients see the plugin die mid-request: `request` panics then ("connect
/// ...", "no HTTP reply"), which `try_post` catches. Those panics are not
/// printed; every other panic (an assertion) is, by the default hook. Set
/// once for the test binary: tests run in parallel and share the hook.
fn quiet_dead_socket_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or("");
            if !(msg.starts_with("connect ") || msg.starts_with("no HTTP reply")) {
                default(info);
            }
        }));
    });
}

/// How many times a storm kills the plugin: `default`, or `CRASH_KILLS`
/// (`make soak` runs hundreds).
fn kills(default: u64) -> u64 {
    std::env::var("CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Waits until `acked` has grown by `more` since this round began, so that
/// each kill lands after a chosen amount of acknowledged work, whatever the
/// machine's speed (a kill after a fixed time would find a slow machine
/// with too little done), and fails if the clients stop making progress.
fn kill_after(plugin: &mut Plugin, acked: &AtomicUsize, more: usize, round: u64) {
    let target = acked.load(Ordering::Relaxed) + more;
    assert!(
        common::eventually(common::GUARD, || acked.load(Ordering::Relaxed) >= target),
        "round {round}: the clients acknowledged fewer than {more} changes within {:?}",
        common::GUARD
    );
    plugin.kill9();
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

/// The simplest case: addresses acknowledged before one kill -9 are still
/// held after the restart.
#[test]
fn acknowledged_ipam_state_survives_kill_9() {
    common::require_root();
    let dir = PluginDir::new().unwrap();
    let mut p = common::start_at(None, &dir, &[]);
    let pool = p
        .post(
            "/IpamDriver.RequestPool",
            &body::request_pool("10.61.0.0/24", true),
        )
        .json();
    let id = pool["PoolID"].as_str().unwrap().to_string();
    let mut got = Vec::new();
    for _ in 0..20 {
        let r = p.post("/IpamDriver.RequestAddress", &body::request_address(&id));
        got.push(r.json()["Address"].as_str().unwrap().to_string());
    }
    p.kill9();
    let p = common::start_at(None, &dir, &[]);
    let next = p
        .post("/IpamDriver.RequestAddress", &body::request_address(&id))
        .json();
    let next = next["Address"].as_str().unwrap().to_string();
    assert!(
        !got.contains(&next),
        "{next} handed out again after kill -9"
    );
    for a in &got {
        let taken = p.post(
            "/IpamDriver.RequestAddress",
            &body::request_this_address(&id, a.split('/').next().unwrap()),
        );
        taken.assert_error(500);
    }
}

#[test]
fn no_acknowledged_address_is_reissued_across_kill_9() {
    common::require_root();
    quiet_dead_socket_panics();
    let dir = PluginDir::new().unwrap();
    let socket = dir.socket.clone();
    let mut plugin = common::start_at(None, &dir, &[]);
    let serial = plugin
        .post(
            "/IpamDriver.RequestPool",
            &body::request_pool("10.0.0.0/8", true),
        )
        .json();
    let first_free = plugin
        .post(
            "/IpamDriver.RequestPool",
            &body::request_pool("172.20.0.0/16", false),
        )
        .json();
    let pools = [
        serial["PoolID"].as_str().unwrap().to_string(),
        first_free["PoolID"].as_str().unwrap().to_string(),
    ];
    // addresses acknowledged as allocated and not (being) released: pool index, address
    let held: Arc<Mutex<HashSet<(usize, IpAddr)>>> = Arc::default();
    let duplicates = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(AtomicUsize::new(0));
    let mut rng = Lcg(0x5eed);
    let rounds = kills(6);
    for round in 0..rounds {
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..6)
            .map(|c| {
                let (socket, pools, held, dup, acked, stop) = (
                    socket.clone(),
                    pools.clone(),
                    held.clone(),
                    duplicates.clone(),
                    acked.clone(),
                    stop.clone(),
                );
                std::thread::spawn(move || {
                    let mut rng = Lcg(round * 100 + c);
                    while !stop.load(Ordering::Relaxed) {
                        let p = rng.next(2) as usize;
                        if rng.next(4) == 0 {
                            let victim = held
                                .lock()
                                .unwrap()
                                .iter()
                                .find(|(pi, _)| *pi == p)
                                .copied();
                            if let Some(v) = victim {
                                held.lock().unwrap().remove(&v);
                                let release = body::release_address(&pools[p], &v.1.to_string());
                                if try_post(&socket, "/IpamDriver.ReleaseAddress", &release)
                                    .is_none()
                                {
                                    return;
                                }
                            }
                            continue;
                        }
                        let Some((status, v)) = try_post(
                            &socket,
                            "/IpamDriver.RequestAddress",
                            &body::request_address(&pools[p]),
                        ) else {
                            return;
                        };
                        if status != 200 {
                            continue; // failed calls are not acknowledgements
                        }
                        let net: ipnet::IpNet = v["Address"].as_str().unwrap().parse().unwrap();
                        acked.fetch_add(1, Ordering::Relaxed);
                        if !held.lock().unwrap().insert((p, net.addr())) {
                            dup.fetch_add(1, Ordering::Relaxed);
                            eprintln!("DUPLICATE {net}");
                        }
                    }
                })
            })
            .collect();
        kill_after(&mut plugin, &acked, 40 + rng.next(60) as usize, round);
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            let _ = c.join();
        }
        plugin = common::start_at(None, &dir, &[]);
    }
    let total = acked.load(Ordering::Relaxed);
    assert!(
        total > 200,
        "only {total} acknowledged allocations: the test did not load the plugin"
    );
    assert_eq!(
        duplicates.load(Ordering::Relaxed),
        0,
        "an acknowledged address was handed out twice"
    );
    // every held address is still allocated (a claim is refused) and releasable
    let held = held.lock().unwrap().clone();
    let start = Instant::now();
    for (p, addr) in &held {
        let claim = plugin.post(
            "/IpamDriver.RequestAddress",
            &body::request_this_address(&pools[*p], &addr.to_string()),
        );
        assert_eq!(
            claim.status, 500,
            "{addr} was acknowledged but is free after the crashes"
        );
        let rel = plugin.post(
            "/IpamDriver.ReleaseAddress",
            &body::release_address(&pools[*p], &addr.to_string()),
        );
        assert_eq!(rel.status, 200);
        let again = plugin.post(
            "/IpamDriver.RequestAddress",
            &body::request_this_address(&pools[*p], &addr.to_string()),
        );
        assert_eq!(
            again.status, 200,
            "{addr} not free after its release: {}",
            again.body
        );
    }
    println!(
        "{rounds} kills, {total} acknowledged allocations, {} held at the end, checked in {:?}",
        held.len(),
        start.elapsed()
    );
}

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
