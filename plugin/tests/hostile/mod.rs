//! The rig of the hostile-input tests (`hostile_network.rs`,
//! `hostile_endpoint.rs`, `hostile_ipam.rs`, `transport.rs`): the real
//! binary in a network namespace with veth parents, holding a known state
//! (a joined macvlan endpoint, a second network, a probe pool and a full
//! /30), and a table runner that sends each case through the real socket
//! and checks that every refusal is a 500 whose `Err` and `Error` name the
//! bad value, changes nothing (no address allocated or freed, no link
//! created, no network or endpoint recorded), and leaves the server
//! serving. Calls that succeed by design on unknown IDs (Leave, Delete*,
//! Release*) are checked to change nothing either.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use crate::common::{NetNs, Plugin, Reply, body, request};

/// The probe pool: lowest-free allocation, so its next address stays the
/// same as long as nothing is allocated or freed in it.
pub const POOL: &str = "local/10.80.0.0/24";
/// A /30 whose two addresses are taken.
pub const SMALL: &str = "local/10.81.0.0/30";
/// The next free address of [`POOL`].
pub const NEXT: &str = "10.80.0.3/24";
/// A macvlan network on hp0 over [`POOL`], with endpoint [`EP1`] joined.
pub const NET: &str = "7c1f2a9e0b3d4c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6";
pub const EP1: &str = "e1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f80";
/// A second network, on hp1: ipvlan where the kernel makes ipvlan links,
/// macvlan elsewhere (this CI host; a kernel without ipvlan refuses ipvlan
/// networks at CreateNetwork, and the VM suite covers the ipvlan cases).
pub const NETI: &str = "1d2e3f405162738495a6b7c8d9eaf0b1c2d3e4f5061728394a5b6c7d8e9fa0b1";

/// A network ID no case shares with another.
pub fn nid(n: u32) -> String {
    format!("bad{n:05x}{}", "0".repeat(56))
}

/// An endpoint ID no case shares with another.
pub fn eid(n: u32) -> String {
    format!("eee{n:05x}{}", "0".repeat(56))
}

/// The `IPv4Data` of [`NET`]: [`POOL`] with its gateway.
pub const V4: &str = r#"[{"AddressSpace":"local","Gateway":"10.80.0.1/24","Pool":"10.80.0.0/24"}]"#;

/// The plugin in its namespace, and what must not change.
pub struct Rig {
    pub ns: NetNs,
    pub p: Plugin,
    links: Vec<String>,
    pub ep1_link: String,
}

impl Rig {
    pub fn start() -> Rig {
        let ns = NetNs::new("ho").unwrap();
        ns.add_veth_parent("hp0").unwrap();
        ns.add_veth_parent("hp1").unwrap();
        let p = crate::common::start(Some(&ns.name), &[]);
        let ok = |r: Reply| {
            assert_eq!(r.status, 200, "setup: {}", r.body);
            r.json()
        };
        let pool = ok(p.post(
            "/IpamDriver.RequestPool",
            &body::request_pool("10.80.0.0/24", false),
        ));
        assert_eq!(pool["PoolID"], POOL);
        ok(p.post(
            "/IpamDriver.RequestAddress",
            &body::request_gateway(POOL, "10.80.0.1"),
        ));
        ok(p.post(
            "/NetworkDriver.CreateNetwork",
            &body::create_network(NET, r#"{"parent":"hp0","kind":"macvlan"}"#, V4),
        ));
        let a = ok(p.post("/IpamDriver.RequestAddress", &body::request_address(POOL)));
        assert_eq!(a["Address"], "10.80.0.2/24");
        ok(p.post(
            "/NetworkDriver.CreateEndpoint",
            &body::create_endpoint(NET, EP1, &body::interface("10.80.0.2/24", "")),
        ));
        let j = ok(p.post("/NetworkDriver.Join", &body::join(NET, EP1)));
        let ep1_link = j["InterfaceName"]["SrcName"].as_str().unwrap().to_string();
        ok(p.post(
            "/NetworkDriver.CreateNetwork",
            &body::create_network(
                NETI,
                if crate::common::kernel_has_ipvlan() {
                    r#"{"parent":"hp1"}"#
                } else {
                    r#"{"parent":"hp1","kind":"macvlan"}"#
                },
                r#"[{"AddressSpace":"local","Pool":"10.85.0.0/24"}]"#,
            ),
        ));
        ok(p.post(
            "/IpamDriver.RequestPool",
            &body::request_pool("10.81.0.0/30", true),
        ));
        for _ in 0..2 {
            ok(p.post("/IpamDriver.RequestAddress", &body::request_address(SMALL)));
        }
        let mut links = ns.links().unwrap();
        links.sort();
        assert!(links.contains(&ep1_link), "{links:?}");
        let rig = Rig {
            ns,
            p,
            links,
            ep1_link,
        };
        rig.assert_unchanged("setup");
        rig
    }

    pub fn post(&self, path: &str, body: &str) -> Reply {
        self.p.post(path, body)
    }

    /// Nothing of the state built in `start` changed, and the server serves.
    pub fn assert_unchanged(&self, what: &str) {
        let r = self.post("/NetworkDriver.GetCapabilities", "");
        assert_eq!(r.status, 200, "{what}: server stopped serving: {}", r.body);
        assert_eq!(r.json()["Scope"], "local", "{what}");
        let mut links = self.ns.links().unwrap();
        links.sort();
        assert_eq!(links, self.links, "{what}: links changed");
        // no address allocated or freed in the probe pool
        let r = self.post("/IpamDriver.RequestAddress", &body::request_address(POOL));
        assert_eq!(r.status, 200, "{what}: probe: {}", r.body);
        assert_eq!(r.json()["Address"], NEXT, "{what}: the probe pool changed");
        let r = self.post(
            "/IpamDriver.ReleaseAddress",
            &body::release_address(POOL, &NEXT[..9]),
        );
        assert_eq!(r.status, 200, "{what}: {}", r.body);
        // the /30 is still full
        let err = self
            .post("/IpamDriver.RequestAddress", &body::request_address(SMALL))
            .assert_error(500);
        assert!(err.contains("no available addresses"), "{what}: {err}");
        // the endpoint and its network are as they were
        let info = self.post("/NetworkDriver.EndpointOperInfo", &body::endpoint(NET, EP1));
        assert_eq!(info.status, 200, "{what}: {}", info.body);
        let v = info.json();
        assert_eq!(v["Value"]["link"], self.ep1_link.as_str(), "{what}");
        assert_eq!(v["Value"]["kind"], "macvlan bridge", "{what}");
        assert_eq!(v["Value"]["parent"], "hp0", "{what}");
        let log = self.p.log_text();
        assert!(
            !log.contains("panicked"),
            "{what}: a handler panicked:\n{log}"
        );
    }

    /// A network that failed to create is unknown to CreateEndpoint.
    pub fn assert_no_network(&self, id: &str) {
        let err = self
            .post(
                "/NetworkDriver.CreateEndpoint",
                &body::create_endpoint(id, &eid(0xfffff), r#"{"Address":"10.80.0.50/24"}"#),
            )
            .assert_error(500);
        assert!(
            err.contains(&format!("network {id} not found")),
            "network {id} was recorded: {err}"
        );
    }

    /// An endpoint that failed to create is unknown.
    pub fn assert_no_endpoint(&self, net: &str, ep: &str) {
        let err = self
            .post("/NetworkDriver.EndpointOperInfo", &body::endpoint(net, ep))
            .assert_error(500);
        assert!(err.contains(ep), "endpoint {ep} was recorded: {err}");
    }

    /// A pool that failed to lease is unknown.
    pub fn assert_no_pool(&self, id: &str) {
        let err = self
            .post("/IpamDriver.RequestAddress", &body::request_address(id))
            .assert_error(500);
        assert!(err.contains("unknown pool"), "pool {id} was leased: {err}");
    }
}

pub type Then = Box<dyn Fn(&Rig)>;

pub struct Case {
    what: String,
    method: &'static str,
    path: String,
    body: Vec<u8>,
    /// `None`: a success by design (200 and a JSON object).
    status: Option<u16>,
    needles: Vec<String>,
    then: Option<Then>,
}

impl Case {
    pub fn then(mut self, f: impl Fn(&Rig) + 'static) -> Case {
        self.then = Some(Box::new(f));
        self
    }

    pub fn status(mut self, status: u16) -> Case {
        self.status = Some(status);
        self
    }

    pub fn method(mut self, method: &'static str) -> Case {
        self.method = method;
        self
    }
}

/// A call that must fail with a message containing every needle.
pub fn err(what: &str, path: &str, body: impl Into<Vec<u8>>, needles: &[&str]) -> Case {
    Case {
        what: what.to_string(),
        method: "POST",
        path: path.to_string(),
        body: body.into(),
        status: Some(500),
        needles: needles.iter().map(|s| s.to_string()).collect(),
        then: None,
    }
}

/// A call that succeeds by design and must change nothing.
pub fn ok(what: &str, path: &str, body: impl Into<Vec<u8>>) -> Case {
    Case {
        status: None,
        ..err(what, path, body, &[])
    }
}

pub const CN: &str = "/NetworkDriver.CreateNetwork";
pub const CE: &str = "/NetworkDriver.CreateEndpoint";
pub const RA: &str = "/IpamDriver.RequestAddress";
pub const RP: &str = "/IpamDriver.RequestPool";

/// Sends every case to the rig's plugin and checks its answer (the status,
/// the error naming every needle) and that it changed nothing; at least
/// `min_refused` of them must be refusals (500), so that a table cannot
/// shrink to nothing unnoticed.
pub fn run(rig: &Rig, topic: &str, cases: &[Case], min_refused: usize) {
    let (mut refused, mut by_design) = (0, 0);
    for case in cases {
        let r = request(&rig.p.socket, case.method, &case.path, &case.body);
        let what = &case.what;
        match case.status {
            Some(status) => {
                let err = r.assert_error(status);
                for needle in &case.needles {
                    assert!(
                        err.contains(needle.as_str()),
                        "{what}: the error does not name {needle:?}: {err}"
                    );
                }
                if status == 500 {
                    refused += 1;
                }
            }
            None => {
                assert_eq!(r.status, 200, "{what}: {}", r.body);
                assert!(r.json().is_object(), "{what}: {}", r.body);
                by_design += 1;
            }
        }
        if let Some(then) = &case.then {
            then(rig);
        }
        rig.assert_unchanged(what);
    }
    assert!(refused >= min_refused, "only {refused} refused cases");
    eprintln!(
        "hostile {topic}: {refused} refused with 500, {} other statuses, {by_design} successes by design, all changing nothing",
        cases.len() - refused - by_design
    );
}
