//! 64 concurrent clients on keep-alive connections against the real binary
//! in a network namespace with a veth parent, mixing the whole engine
//! lifecycle: RequestAddress/ReleaseAddress on shared pools,
//! RequestPool/ReleasePool of a shared (ref-counted) pool and of pools of
//! their own, CreateNetwork/DeleteNetwork, and
//! CreateEndpoint/Join/Leave/DeleteEndpoint with real macvlan links.
//!
//! Checked: no call fails; no address is held by two clients at once; at the
//! end every address is free again (a full pool is handed out exactly once
//! more), no released pool still had addresses, no `ivr*` link is left; and
//! the whole thing finishes within a watchdog's limit instead of hanging.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Conn, NetNs, body};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CLIENTS: usize = 64;
/// Rounds per client of each role (see `client`).
const IPAM_ROUNDS: usize = 100;
const ENDPOINT_ROUNDS: usize = 24;
const NETWORK_ROUNDS: usize = 8;
/// The whole concurrent phase must end within this; a deadlock fails the
/// test here instead of hanging it. A guard only: the phase takes seconds,
/// so no machine's speed crosses it.
const WATCHDOG: Duration = Duration::from_secs(300);
/// One request must be answered within this (a guard, like WATCHDOG).
const REQUEST_TIMEOUT: Duration = common::GUARD;

/// Shared pools: serial (the default) and lowest-free allocation.
const POOL_A: &str = "local/10.90.0.0/24";
const POOL_B: &str = "local/10.91.0.0/24";
/// The pool of the shared network [`NETC`]; its gateway is .1.
const POOL_C: &str = "local/10.92.0.0/24";
/// A pool every network client leases and releases (ref-counted).
const POOL_S: &str = "local/10.93.0.0/24";
const NETC: &str = "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0";

/// POST on `conn` with a deadline (a guard, like WATCHDOG): the JSON
/// answer, or an error naming the call.
async fn post(conn: &mut Conn, path: &str, body: String) -> Result<Value, String> {
    match tokio::time::timeout(REQUEST_TIMEOUT, conn.post(path, body.clone())).await {
        Ok(r) => r.map_err(|e| format!("{path} {body}: {e}")),
        Err(_) => Err(format!("{path} {body}: no answer in {REQUEST_TIMEOUT:?}")),
    }
}

/// What the clients share.
#[derive(Default)]
struct Shared {
    /// Addresses held right now by some client.
    held: Mutex<HashSet<String>>,
    /// Every address ever handed out.
    seen: Mutex<HashSet<String>>,
    errors: Mutex<Vec<String>>,
    requests: AtomicUsize,
    duplicates: Mutex<Vec<String>>,
}

/// A client: its connection and the shared ledger.
struct Client {
    conn: Conn,
    shared: Arc<Shared>,
}

impl Client {
    async fn call(&mut self, path: &str, body: String) -> Option<Value> {
        self.shared.requests.fetch_add(1, Ordering::Relaxed);
        match post(&mut self.conn, path, body).await {
            Ok(v) => Some(v),
            Err(e) => {
                self.shared.errors.lock().unwrap().push(e);
                None
            }
        }
    }

    /// RequestAddress (`request`, of `pool`); the address (without prefix) is recorded as held
    /// and must not be held by anyone else.
    async fn take(&mut self, pool: &str, request: String) -> Option<(String, String)> {
        let v = self.call("/IpamDriver.RequestAddress", request).await?;
        let cidr = v["Address"].as_str().unwrap_or_default().to_string();
        let addr = cidr.split('/').next().unwrap_or_default().to_string();
        if !self.shared.held.lock().unwrap().insert(addr.clone()) {
            self.shared
                .duplicates
                .lock()
                .unwrap()
                .push(format!("{addr} handed out while held (pool {pool})"));
        }
        self.shared.seen.lock().unwrap().insert(addr.clone());
        Some((addr, cidr))
    }

    /// Forget the address first (someone may get it as soon as the release
    /// is applied), then ReleaseAddress.
    async fn give_back(&mut self, pool: &str, addr: &str) {
        self.shared.held.lock().unwrap().remove(addr);
        self.call(
            "/IpamDriver.ReleaseAddress",
            body::release_address(pool, addr),
        )
        .await;
    }
}

fn endpoint_id(client: usize, round: usize) -> String {
    // the first 12 characters name the link: unique per endpoint
    format!("{client:04x}{round:08x}{}", "e".repeat(52))
}

fn network_id(client: usize, round: usize) -> String {
    format!("{client:04x}{round:08x}{}", "a".repeat(52))
}

/// A macvlan network on hp0 over `pool` with `gateway` (CIDRs).
fn create_network(id: &str, pool: &str, gateway: &str) -> String {
    body::create_network(
        id,
        r#"{"parent":"hp0","kind":"macvlan"}"#,
        &body::ipv4_data(pool, gateway),
    )
}

/// CreateEndpoint, Join (a real link), Leave, DeleteEndpoint.
async fn endpoint_lifecycle(c: &mut Client, net: &str, ep: &str, cidr: &str, gateway: &str) {
    c.call(
        "/NetworkDriver.CreateEndpoint",
        body::create_endpoint(net, ep, &body::interface(cidr, "")),
    )
    .await;
    if let Some(j) = c.call("/NetworkDriver.Join", body::join(net, ep)).await
        && (j["Gateway"] != gateway || j["InterfaceName"]["SrcName"].as_str().is_none())
    {
        c.shared
            .errors
            .lock()
            .unwrap()
            .push(format!("Join of {ep}: {j}"));
    }
    c.call("/NetworkDriver.Leave", body::endpoint(net, ep))
        .await;
    c.call("/NetworkDriver.DeleteEndpoint", body::endpoint(net, ep))
        .await;
}

/// Client `i`: a quarter each of four roles.
async fn client(i: usize, mut c: Client) {
    match i % 4 {
        // address churn on the shared pools, up to 3 held at a time
        0 | 1 => {
            let pool = if i % 8 < 4 { POOL_A } else { POOL_B };
            let mut mine = std::collections::VecDeque::new();
            for round in 0..IPAM_ROUNDS {
                if let Some((addr, _)) = c.take(pool, body::request_address(pool)).await {
                    mine.push_back(addr);
                }
                if mine.len() > 2 || round % 5 == 4 {
                    let addr = mine.pop_front().unwrap();
                    c.give_back(pool, &addr).await;
                }
            }
            while let Some(addr) = mine.pop_front() {
                c.give_back(pool, &addr).await;
            }
        }
        // containers on the shared network
        2 => {
            for round in 0..ENDPOINT_ROUNDS {
                let Some((addr, cidr)) = c
                    .take(
                        POOL_C,
                        format!(
                            r#"{{"PoolID":"{POOL_C}","Address":"","Options":{{"com.docker.network.endpoint.name":"c"}}}}"#
                        ),
                    )
                    .await
                else {
                    continue;
                };
                endpoint_lifecycle(&mut c, NETC, &endpoint_id(i, round), &cidr, "10.92.0.1").await;
                c.give_back(POOL_C, &addr).await;
            }
        }
        // whole networks: pool, gateway, network, one container, teardown
        _ => {
            let subnet = format!("10.{}.0.0/24", 100 + i / 4);
            let pool = format!("local/{subnet}");
            let gateway_ip = format!("10.{}.0.1", 100 + i / 4);
            for round in 0..NETWORK_ROUNDS {
                if round % 2 == 0 {
                    let _ = c
                        .call("/NetworkDriver.GetCapabilities", String::new())
                        .await;
                }
                c.call(
                    "/IpamDriver.RequestPool",
                    body::request_pool("10.93.0.0/24", true),
                )
                .await;
                let lease = c
                    .call("/IpamDriver.RequestPool", body::request_pool(&subnet, true))
                    .await;
                if lease.is_none_or(|l| l["PoolID"] != pool.as_str()) {
                    continue;
                }
                let gw = c
                    .take(&pool, body::request_gateway(&pool, &gateway_ip))
                    .await;
                let net = network_id(i, round);
                let gw_cidr = gw.as_ref().map(|g| g.1.clone()).unwrap_or_default();
                c.call(
                    "/NetworkDriver.CreateNetwork",
                    create_network(&net, &subnet, &gw_cidr),
                )
                .await;
                if let Some((addr, cidr)) = c.take(&pool, body::request_address(&pool)).await {
                    endpoint_lifecycle(&mut c, &net, &endpoint_id(i, round), &cidr, &gateway_ip)
                        .await;
                    c.give_back(&pool, &addr).await;
                }
                c.call("/NetworkDriver.DeleteNetwork", body::network(&net))
                    .await;
                if let Some((addr, _)) = gw {
                    c.give_back(&pool, &addr).await;
                }
                c.call("/IpamDriver.ReleasePool", body::release_pool(&pool))
                    .await;
                c.call("/IpamDriver.ReleasePool", body::release_pool(POOL_S))
                    .await;
            }
        }
    }
}

/// Hands out addresses of `pool` until it is exhausted: how many it had.
async fn drain(conn: &mut Conn, pool: &str) -> usize {
    let mut n = 0;
    loop {
        match post(
            conn,
            "/IpamDriver.RequestAddress",
            body::request_address(pool),
        )
        .await
        {
            Ok(_) => n += 1,
            Err(e) if e.contains("no available addresses") => return n,
            Err(e) => panic!("draining {pool}: {e}"),
        }
        assert!(n <= 256, "{pool} hands out more than a /24 holds");
    }
}

#[test]
fn sixty_four_clients_mix_every_call_without_error_or_duplicate() {
    let ns = NetNs::new("cc").unwrap();
    ns.add_veth_parent("hp0").unwrap();
    let p = common::start(Some(&ns.name), &[]);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let shared = Arc::new(Shared::default());
    let socket = p.socket.clone();

    let (elapsed, requests) = rt.block_on(async {
        let mut setup = Conn::open(&socket).await.unwrap();
        for (pool, serial) in [
            ("10.90.0.0/24", true),
            ("10.91.0.0/24", false),
            ("10.92.0.0/24", true),
            ("10.93.0.0/24", true),
        ] {
            let lease = body::request_pool(pool, serial);
            post(&mut setup, "/IpamDriver.RequestPool", lease)
                .await
                .unwrap();
        }
        let gateway = body::request_gateway(POOL_C, "10.92.0.1");
        post(&mut setup, "/IpamDriver.RequestAddress", gateway)
            .await
            .unwrap();
        let network = create_network(NETC, "10.92.0.0/24", "10.92.0.1/24");
        post(&mut setup, "/NetworkDriver.CreateNetwork", network)
            .await
            .unwrap();

        // every client connects first, then all start at once
        let mut clients = Vec::new();
        for _ in 0..CLIENTS {
            clients.push(Client {
                conn: Conn::open(&socket).await.unwrap(),
                shared: shared.clone(),
            });
        }
        let start = Instant::now();
        let tasks: Vec<_> = clients
            .into_iter()
            .enumerate()
            .map(|(i, c)| tokio::spawn(client(i, c)))
            .collect();
        let all = futures_join(tasks);
        if tokio::time::timeout(WATCHDOG, all).await.is_err() {
            panic!(
                "watchdog: the clients did not finish within {WATCHDOG:?} ({} requests sent): deadlock?\nplugin log tail:\n{}",
                shared.requests.load(Ordering::Relaxed),
                tail(&p.log_text(), 40)
            );
        }
        let elapsed = start.elapsed();
        (elapsed, shared.requests.load(Ordering::Relaxed))
    });

    let errors = shared.errors.lock().unwrap().clone();
    assert!(
        errors.is_empty(),
        "{} of {requests} requests failed; first ones:\n{}",
        errors.len(),
        errors
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    let duplicates = shared.duplicates.lock().unwrap().clone();
    assert!(duplicates.is_empty(), "duplicate addresses: {duplicates:?}");
    assert!(
        shared.held.lock().unwrap().is_empty(),
        "addresses still held"
    );
    let seen = shared.seen.lock().unwrap().len();

    rt.block_on(async {
        let mut conn = Conn::open(&socket).await.unwrap();
        // every address is free again: a full pool hands out all of its
        // usable addresses exactly once more (.1 of POOL_C is the gateway)
        assert_eq!(drain(&mut conn, POOL_A).await, 254, "{POOL_A}");
        assert_eq!(drain(&mut conn, POOL_B).await, 254, "{POOL_B}");
        assert_eq!(drain(&mut conn, POOL_C).await, 253, "{POOL_C}");
        // the shared pool's setup lease outlived every client's lease and
        // release; the pools of the network clients are gone
        assert_eq!(drain(&mut conn, POOL_S).await, 254, "{POOL_S}");
        for i in (3..CLIENTS).step_by(4) {
            let pool = format!("local/10.{}.0.0/24", 100 + i / 4);
            let err = post(
                &mut conn,
                "/IpamDriver.RequestAddress",
                body::request_address(&pool),
            )
            .await
            .unwrap_err();
            assert!(err.contains("unknown pool"), "{pool}: {err}");
        }
        post(
            &mut conn,
            "/NetworkDriver.DeleteNetwork",
            body::network(NETC),
        )
        .await
        .unwrap();
    });
    // DeleteNetwork waits for the reaper; the poll covers a slow kernel
    common::eventually(common::GUARD, || common::container_links(&ns).is_empty());
    assert_eq!(
        common::container_links(&ns),
        Vec::<String>::new(),
        "container links left"
    );
    let log = p.log_text();
    assert!(!log.contains("panicked"), "a handler panicked:\n{log}");
    assert!(
        !log.contains("address left in a released pool freed"),
        "a pool was released with addresses still allocated:\n{}",
        tail(&log, 40)
    );
    eprintln!(
        "concurrency: {CLIENTS} clients, {requests} requests in {elapsed:.2?} ({:.0}/s), {seen} distinct addresses, 0 errors, 0 duplicates",
        requests as f64 / elapsed.as_secs_f64()
    );
    assert!(requests >= 5000, "only {requests} requests");
}

/// Awaits every task; a panicking task is a failure.
async fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        t.await.expect("a client task panicked");
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
