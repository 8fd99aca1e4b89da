//! Crash safety of the IPAM through the real binary: concurrent clients
//! allocate and release while the plugin is killed with SIGKILL at random
//! moments, then restarted on the same state dir. No address acknowledged
//! before a kill may be handed out again, and every acknowledged one must
//! still be held (and releasable) at the end.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Plugin, request};
use std::collections::HashSet;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

#[test]
fn no_acknowledged_address_is_reissued_across_kill_9() {
    common::require_root();
    std::panic::set_hook(Box::new(|_| {})); // dead-socket panics in clients are expected
    let dir = tempfile::tempdir().unwrap();
    let (socket, state) = (dir.path().join("p.sock"), dir.path().join("state"));
    let mut plugin = Plugin::start_with(None, &socket, &state, &[]);
    let serial = plugin
        .post(
            "/IpamDriver.RequestPool",
            r#"{"AddressSpace":"local","Pool":"10.0.0.0/8"}"#,
        )
        .json();
    let first_free = plugin
        .post(
            "/IpamDriver.RequestPool",
            r#"{"AddressSpace":"local","Pool":"172.20.0.0/16","Options":{"com.docker.network.ipam.serial":"false"}}"#,
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
    let rounds = 6;
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
                                let body =
                                    format!(r#"{{"PoolID":"{}","Address":"{}"}}"#, pools[p], v.1);
                                if try_post(&socket, "/IpamDriver.ReleaseAddress", &body).is_none()
                                {
                                    return;
                                }
                            }
                            continue;
                        }
                        let Some((status, v)) = try_post(
                            &socket,
                            "/IpamDriver.RequestAddress",
                            &format!(r#"{{"PoolID":"{}"}}"#, pools[p]),
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
        std::thread::sleep(Duration::from_millis(30 + rng.next(250)));
        plugin.kill9();
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            let _ = c.join();
        }
        plugin = Plugin::start_with(None, &socket, &state, &[]);
    }
    let _ = std::panic::take_hook();
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
            &format!(r#"{{"PoolID":"{}","Address":"{addr}"}}"#, pools[*p]),
        );
        assert_eq!(
            claim.status, 500,
            "{addr} was acknowledged but is free after the crashes"
        );
        let rel = plugin.post(
            "/IpamDriver.ReleaseAddress",
            &format!(r#"{{"PoolID":"{}","Address":"{addr}"}}"#, pools[*p]),
        );
        assert_eq!(rel.status, 200);
        let again = plugin.post(
            "/IpamDriver.RequestAddress",
            &format!(r#"{{"PoolID":"{}","Address":"{addr}"}}"#, pools[*p]),
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
