//! Crash safety of the IPAM through the real binary: concurrent clients
//! allocate and release while the plugin is killed with SIGKILL at random
//! moments, then restarted on the same state dir. No address acknowledged
//! before a kill may be handed out again, and every acknowledged one must
//! still be held (and releasable) at the end.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::storm::{Lcg, kill_after, kills, quiet_dead_socket_panics, try_post};
use common::{PluginDir, body};
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

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

/// A Swarm manager's plugin across leader changes, killed with SIGKILL
/// after each step: the manager that leads again leases the pool a second
/// time and calls AllocateNetwork for a network its copy knows; that lease
/// is taken back durably (one ReleasePool ends the pool), and an address
/// another leader freed meanwhile (not re-claimed) is free again after the
/// first new allocation, for good.
#[test]
fn a_swarm_restore_counts_one_lease_and_frees_what_others_freed_across_kill_9() {
    common::require_root();
    let dir = PluginDir::new().unwrap();
    let pool_req =
        r#"{"AddressSpace":"global","Pool":"10.62.0.0/24","SubPool":"","Options":{},"V6":false}"#;
    let allocate = r#"{"NetworkID":"swnet1","Options":{},"IPv4Data":[{"AddressSpace":"global","Gateway":"10.62.0.1/24","Pool":"10.62.0.0/24"}],"IPv6Data":null}"#;
    let ok = |r: common::Reply, what: &str| {
        assert_eq!(r.status, 200, "{what}: {}", r.body);
        r.json()
    };
    // the manager allocates the network and two tasks
    // RequestPool, the gateway, AllocateNetwork: a network's allocation, or
    // a new leader's restore of it
    let allocate_network = |p: &common::Plugin| {
        let id = ok(p.post("/IpamDriver.RequestPool", pool_req), "RequestPool")["PoolID"]
            .as_str()
            .unwrap()
            .to_string();
        ok(
            p.post(
                "/IpamDriver.RequestAddress",
                &body::request_gateway(&id, "10.62.0.1"),
            ),
            "gateway",
        );
        ok(
            p.post("/NetworkDriver.AllocateNetwork", allocate),
            "AllocateNetwork",
        );
        id
    };
    let mut p = common::start_at(None, &dir, &[]);
    let id = allocate_network(&p);
    let task = |p: &common::Plugin| {
        ok(
            p.post("/IpamDriver.RequestAddress", &body::request_address(&id)),
            "task",
        )["Address"]
            .as_str()
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string()
    };
    let (kept, freed) = (task(&p), task(&p));
    p.kill9();
    // another manager led and freed `freed`; this one leads again
    let mut p = common::start_at(None, &dir, &[]);
    assert_eq!(allocate_network(&p), id);
    ok(
        p.post(
            "/IpamDriver.RequestAddress",
            &body::request_this_address(&id, &kept),
        ),
        "task re-claim",
    );
    let new = task(&p);
    assert_ne!(new, kept);
    p.kill9();
    let p = common::start_at(None, &dir, &[]);
    let again = p.post(
        "/IpamDriver.RequestAddress",
        &body::request_this_address(&id, &freed),
    );
    assert_eq!(
        again.status, 200,
        "{freed}, freed while another manager led, is still held after the restore: {}",
        again.body
    );
    p.post(
        "/IpamDriver.RequestAddress",
        &body::request_this_address(&id, &kept),
    )
    .assert_error(500);
    ok(
        p.post("/IpamDriver.ReleasePool", &body::release_pool(&id)),
        "ReleasePool",
    );
    let err = p
        .post("/IpamDriver.RequestAddress", &body::request_address(&id))
        .assert_error(500);
    assert!(
        err.contains("unknown pool"),
        "the pool outlived its network's one ReleasePool (a restore's lease was kept): {err}"
    );
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
