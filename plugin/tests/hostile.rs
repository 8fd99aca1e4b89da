//! Hostile and wrong input through the real socket of the real binary, in a
//! network namespace with veth parents: every refusal is a 500 whose `Err`
//! and `Error` name the bad value, changes nothing (no address allocated or
//! freed, no link created, no network or endpoint recorded), and leaves the
//! server serving. Calls that succeed by design on unknown IDs (Leave,
//! Delete*, Release*) are checked to change nothing either.
//!
//! A second test sends mutated engine captures and checks that no input
//! makes a handler panic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{NetNs, Plugin, Reply, request};

/// The probe pool: lowest-free allocation, so its next address stays the
/// same as long as nothing is allocated or freed in it.
const POOL: &str = "local/10.80.0.0/24";
/// A /30 whose two addresses are taken.
const SMALL: &str = "local/10.81.0.0/30";
/// The next free address of [`POOL`].
const NEXT: &str = "10.80.0.3/24";
/// A macvlan network on hp0 over [`POOL`], with endpoint [`EP1`] joined.
const NET: &str = "7c1f2a9e0b3d4c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6";
const EP1: &str = "e1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f80";
/// An ipvlan network on hp1 (no link until a Join, which this kernel
/// cannot do: enough to test what is refused before).
const NETI: &str = "1d2e3f405162738495a6b7c8d9eaf0b1c2d3e4f5061728394a5b6c7d8e9fa0b1";

/// A network ID no case shares with another.
fn nid(n: u32) -> String {
    format!("bad{n:05x}{}", "0".repeat(56))
}

/// An endpoint ID no case shares with another.
fn eid(n: u32) -> String {
    format!("eee{n:05x}{}", "0".repeat(56))
}

fn create_network_body(id: &str, generic: &str, ipv4: &str) -> String {
    format!(
        r#"{{"NetworkID":"{id}","Options":{{"com.docker.network.enable_ipv4":true,"com.docker.network.enable_ipv6":false,"com.docker.network.generic":{generic}}},"IPv4Data":{ipv4},"IPv6Data":[]}}"#
    )
}

const V4: &str = r#"[{"AddressSpace":"local","Gateway":"10.80.0.1/24","Pool":"10.80.0.0/24"}]"#;

fn create_endpoint_body(net: &str, ep: &str, interface: &str) -> String {
    format!(
        r#"{{"NetworkID":"{net}","EndpointID":"{ep}","Interface":{interface},"Options":{{"com.docker.network.endpoint.exposedports":[],"com.docker.network.portmap":[]}}}}"#
    )
}

fn endpoint_body(net: &str, ep: &str) -> String {
    format!(r#"{{"NetworkID":"{net}","EndpointID":"{ep}"}}"#)
}

/// The plugin in its namespace, and what must not change.
struct Rig {
    ns: NetNs,
    p: Plugin,
    links: Vec<String>,
    ep1_link: String,
}

impl Rig {
    fn start() -> Rig {
        let ns = NetNs::new("ho");
        ns.add_veth_parent("hp0");
        ns.add_veth_parent("hp1");
        let p = Plugin::start(Some(&ns.name), &[]);
        let ok = |r: Reply| {
            assert_eq!(r.status, 200, "setup: {}", r.body);
            r.json()
        };
        let pool = ok(p.post(
            "/IpamDriver.RequestPool",
            r#"{"AddressSpace":"local","Pool":"10.80.0.0/24","SubPool":"","Options":{"com.docker.network.ipam.serial":"false"},"V6":false}"#,
        ));
        assert_eq!(pool["PoolID"], POOL);
        ok(p.post(
            "/IpamDriver.RequestAddress",
            &format!(
                r#"{{"PoolID":"{POOL}","Address":"10.80.0.1","Options":{{"RequestAddressType":"com.docker.network.gateway"}}}}"#
            ),
        ));
        ok(p.post(
            "/NetworkDriver.CreateNetwork",
            &create_network_body(NET, r#"{"parent":"hp0","kind":"macvlan"}"#, V4),
        ));
        let a = ok(p.post(
            "/IpamDriver.RequestAddress",
            &format!(r#"{{"PoolID":"{POOL}","Address":"","Options":null}}"#),
        ));
        assert_eq!(a["Address"], "10.80.0.2/24");
        ok(p.post(
            "/NetworkDriver.CreateEndpoint",
            &create_endpoint_body(
                NET,
                EP1,
                r#"{"Address":"10.80.0.2/24","AddressIPv6":"","MacAddress":""}"#,
            ),
        ));
        let j = ok(p.post(
            "/NetworkDriver.Join",
            &format!(
                r#"{{"NetworkID":"{NET}","EndpointID":"{EP1}","SandboxKey":"/var/run/docker/netns/x","Options":{{}}}}"#
            ),
        ));
        let ep1_link = j["InterfaceName"]["SrcName"].as_str().unwrap().to_string();
        ok(p.post(
            "/NetworkDriver.CreateNetwork",
            &create_network_body(
                NETI,
                r#"{"parent":"hp1"}"#,
                r#"[{"AddressSpace":"local","Pool":"10.85.0.0/24"}]"#,
            ),
        ));
        ok(p.post(
            "/IpamDriver.RequestPool",
            r#"{"AddressSpace":"local","Pool":"10.81.0.0/30","V6":false}"#,
        ));
        for _ in 0..2 {
            ok(p.post(
                "/IpamDriver.RequestAddress",
                &format!(r#"{{"PoolID":"{SMALL}"}}"#),
            ));
        }
        let mut links = ns.links();
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

    fn post(&self, path: &str, body: &str) -> Reply {
        self.p.post(path, body)
    }

    /// Nothing of the state built in `start` changed, and the server serves.
    fn assert_unchanged(&self, what: &str) {
        let r = self.post("/NetworkDriver.GetCapabilities", "");
        assert_eq!(r.status, 200, "{what}: server stopped serving: {}", r.body);
        assert_eq!(r.json()["Scope"], "local", "{what}");
        let mut links = self.ns.links();
        links.sort();
        assert_eq!(links, self.links, "{what}: links changed");
        // no address allocated or freed in the probe pool
        let r = self.post(
            "/IpamDriver.RequestAddress",
            &format!(r#"{{"PoolID":"{POOL}","Address":"","Options":null}}"#),
        );
        assert_eq!(r.status, 200, "{what}: probe: {}", r.body);
        assert_eq!(r.json()["Address"], NEXT, "{what}: the probe pool changed");
        let r = self.post(
            "/IpamDriver.ReleaseAddress",
            &format!(r#"{{"PoolID":"{POOL}","Address":"{}"}}"#, &NEXT[..9]),
        );
        assert_eq!(r.status, 200, "{what}: {}", r.body);
        // the /30 is still full
        let err = self
            .post(
                "/IpamDriver.RequestAddress",
                &format!(r#"{{"PoolID":"{SMALL}"}}"#),
            )
            .assert_error(500);
        assert!(err.contains("no available addresses"), "{what}: {err}");
        // the endpoint and its network are as they were
        let info = self.post("/NetworkDriver.EndpointOperInfo", &endpoint_body(NET, EP1));
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
    fn assert_no_network(&self, id: &str) {
        let err = self
            .post(
                "/NetworkDriver.CreateEndpoint",
                &create_endpoint_body(id, &eid(0xfffff), r#"{"Address":"10.80.0.50/24"}"#),
            )
            .assert_error(500);
        assert!(
            err.contains(&format!("network {id} not found")),
            "network {id} was recorded: {err}"
        );
    }

    /// An endpoint that failed to create is unknown.
    fn assert_no_endpoint(&self, net: &str, ep: &str) {
        let err = self
            .post("/NetworkDriver.EndpointOperInfo", &endpoint_body(net, ep))
            .assert_error(500);
        assert!(err.contains(ep), "endpoint {ep} was recorded: {err}");
    }

    /// A pool that failed to lease is unknown.
    fn assert_no_pool(&self, id: &str) {
        let err = self
            .post(
                "/IpamDriver.RequestAddress",
                &format!(r#"{{"PoolID":"{id}"}}"#),
            )
            .assert_error(500);
        assert!(err.contains("unknown pool"), "pool {id} was leased: {err}");
    }
}

type Then = Box<dyn Fn(&Rig)>;

struct Case {
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
    fn then(mut self, f: impl Fn(&Rig) + 'static) -> Case {
        self.then = Some(Box::new(f));
        self
    }

    fn status(mut self, status: u16) -> Case {
        self.status = Some(status);
        self
    }

    fn method(mut self, method: &'static str) -> Case {
        self.method = method;
        self
    }
}

/// A call that must fail with a message containing every needle.
fn err(what: &str, path: &str, body: impl Into<Vec<u8>>, needles: &[&str]) -> Case {
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
fn ok(what: &str, path: &str, body: impl Into<Vec<u8>>) -> Case {
    Case {
        status: None,
        ..err(what, path, body, &[])
    }
}

const CN: &str = "/NetworkDriver.CreateNetwork";
const CE: &str = "/NetworkDriver.CreateEndpoint";
const RA: &str = "/IpamDriver.RequestAddress";
const RP: &str = "/IpamDriver.RequestPool";

/// A CreateNetwork with these generic options that must fail naming
/// `needles`, and leave no network behind.
fn bad_network(n: u32, what: &str, generic: &str, ipv4: &str, needles: &[&str]) -> Case {
    let id = nid(n);
    err(what, CN, create_network_body(&id, generic, ipv4), needles)
        .then(move |rig| rig.assert_no_network(&id))
}

fn cases() -> Vec<Case> {
    let long_id = "a".repeat(129);
    let deep = "[".repeat(100_000);
    let deep_option = format!(
        r#"{{"NetworkID":"{}","Options":{{"x":{}}}}}"#,
        nid(99),
        "[".repeat(100_000)
    );
    // valid JSON, just too big: over the 1 MiB default of --max-body
    let huge = create_network_body(
        &nid(98),
        &format!(r#"{{"parent":"hp0","x":"{}"}}"#, "a".repeat(1_100_000)),
        V4,
    );
    let mut cases = vec![
        // ---- network options: refused before anything touches the kernel
        bad_network(
            1,
            "parent does not exist",
            r#"{"parent":"nosuch0"}"#,
            V4,
            &["nosuch0"],
        ),
        bad_network(
            2,
            "parent is loopback",
            r#"{"parent":"lo","kind":"macvlan"}"#,
            V4,
            &["interface lo "],
        ),
        bad_network(
            3,
            "parent longer than 15 bytes",
            r#"{"parent":"abcdefghijklmnop"}"#,
            V4,
            &["abcdefghijklmnop", "15 bytes"],
        ),
        bad_network(
            4,
            "parent with a slash",
            r#"{"parent":"hp0/../x"}"#,
            V4,
            &["hp0/../x"],
        ),
        bad_network(
            5,
            "parent with a colon",
            r#"{"parent":"hp0:1"}"#,
            V4,
            &["hp0:1"],
        ),
        bad_network(
            6,
            "802.1Q parent on a missing base",
            r#"{"parent":"nosuch.10"}"#,
            V4,
            &["nosuch.10", "nosuch "],
        ),
        bad_network(
            7,
            "bad ipvlan_mode",
            r#"{"parent":"hp1","ipvlan_mode":"l9"}"#,
            V4,
            &["'l9'", "l3s"],
        ),
        bad_network(
            8,
            "bad ipvlan_flag",
            r#"{"parent":"hp1","ipvlan_flag":"open"}"#,
            V4,
            &["'open'", "vepa"],
        ),
        bad_network(
            9,
            "bad macvlan_mode",
            r#"{"parent":"hp0","kind":"macvlan","macvlan_mode":"trunk"}"#,
            V4,
            &["'trunk'", "passthru"],
        ),
        bad_network(
            10,
            "bad kind",
            r#"{"parent":"hp0","kind":"VXLAN"}"#,
            V4,
            &["'VXLAN'", "macvlan"],
        ),
        bad_network(
            11,
            "unknown option",
            r#"{"parent":"hp0","vlan":"10"}"#,
            V4,
            &["\"vlan\""],
        ),
        bad_network(
            12,
            "macvlan_mode on an ipvlan network",
            r#"{"parent":"hp1","macvlan_mode":"bridge"}"#,
            V4,
            &["macvlan_mode", "kind=ipvlan"],
        ),
        bad_network(
            13,
            "mtu out of range",
            r#"{"parent":"hp0","kind":"macvlan","com.docker.network.driver.mtu":"70000"}"#,
            V4,
            &["\"70000\""],
        ),
        bad_network(
            14,
            "option of a wrong JSON type",
            r#"{"parent":["hp0"]}"#,
            V4,
            &["[\"hp0\"]", "parent"],
        ),
        bad_network(
            15,
            "gateway outside the subnet",
            r#"{"parent":"hp0","kind":"macvlan"}"#,
            r#"[{"AddressSpace":"local","Gateway":"10.99.0.1/24","Pool":"10.80.0.0/24"}]"#,
            &["10.99.0.1/24", "10.80.0.0/24"],
        ),
        bad_network(
            16,
            "aux address outside the pool",
            r#"{"parent":"hp0","kind":"macvlan"}"#,
            r#"[{"AddressSpace":"local","AuxAddresses":{"a":"10.98.0.5/24"},"Gateway":"10.80.0.1/24","Pool":"10.80.0.0/24"}]"#,
            &["10.98.0.5/24"],
        ),
        bad_network(
            17,
            "IPv6 pool in IPv4Data",
            r#"{"parent":"hp0","kind":"macvlan"}"#,
            r#"[{"AddressSpace":"local","Pool":"fd00:1::/64"}]"#,
            &["fd00:1::/64"],
        ),
        bad_network(
            18,
            "pool that is no CIDR",
            r#"{"parent":"hp0","kind":"macvlan"}"#,
            r#"[{"AddressSpace":"local","Pool":"10.0.0.0/99"}]"#,
            &["10.0.0.0/99"],
        ),
        bad_network(
            19,
            "IPv4 enabled without an IPv4 pool",
            r#"{"parent":"hp0","kind":"macvlan"}"#,
            "[]",
            &["ipv4 pool is empty"],
        ),
        bad_network(
            20,
            "ipvlan on the macvlan network's parent",
            r#"{"parent":"hp0"}"#,
            V4,
            &["hp0", NET],
        ),
        bad_network(
            21,
            "passthru beside another network",
            r#"{"parent":"hp0","kind":"macvlan","macvlan_mode":"passthru"}"#,
            V4,
            &["passthru", NET],
        ),
        err(
            "existing network ID, another configuration",
            CN,
            create_network_body(
                NET,
                r#"{"parent":"hp0","kind":"macvlan","macvlan_mode":"private"}"#,
                V4,
            ),
            &[NET],
        ),
        err(
            "internal flag of a wrong JSON type",
            CN,
            format!(
                r#"{{"NetworkID":"{}","Options":{{"com.docker.network.internal":3}}}}"#,
                nid(22)
            ),
            &["com.docker.network.internal", "3"],
        ),
        // ---- IDs
        err(
            "NetworkID with a path",
            CN,
            create_network_body("../../etc", "{}", V4),
            &["../../etc"],
        ),
        err(
            "NetworkID longer than 128",
            CN,
            create_network_body(&long_id, "{}", V4),
            &[&long_id],
        ),
        err(
            "empty NetworkID",
            CN,
            create_network_body("", "{}", V4),
            &["invalid NetworkID \"\""],
        ),
        err(
            "NetworkID with a space and non-ASCII",
            "/NetworkDriver.DeleteNetwork",
            r#"{"NetworkID":"né t"}"#,
            &["né t"],
        ),
        err(
            "EndpointID with a space",
            CE,
            create_endpoint_body(NET, "ep 1", "{}"),
            &["ep 1"],
        ),
        err("missing NetworkID", CN, r#"{"Options":{}}"#, &["NetworkID"]),
        // ---- bodies that are no request
        err(
            "malformed JSON",
            CN,
            format!(
                r#"{{"NetworkID":"{}","IPv4Data":{V4},"Options":{{"x":1,,}}}}"#,
                nid(23)
            ),
            &[r#""x":1,,"#, "line 1 column"],
        )
        .then(|rig| rig.assert_no_network(&nid(23))),
        err(
            "NetworkID of a wrong JSON type",
            "/NetworkDriver.Join",
            r#"{"NetworkID":42,"EndpointID":"e"}"#,
            &["42"],
        ),
        err(
            "a JSON string instead of an object",
            CN,
            r#""hello""#,
            &["hello"],
        ),
        err("100k nested arrays", CN, deep, &["[[[["]),
        err(
            "100k nested arrays in Options",
            CN,
            deep_option,
            &["recursion limit", "[[[["],
        ),
        err("body over 1 MiB", CN, huge, &["1048576"]),
        // ---- endpoints
        err(
            "CreateEndpoint on an unknown network",
            CE,
            create_endpoint_body(&nid(30), &eid(30), r#"{"Address":"10.80.0.9/24"}"#),
            &[&nid(30)],
        )
        .then(|rig| rig.assert_no_endpoint(&nid(30), &eid(30))),
        err(
            "Join on an unknown network",
            "/NetworkDriver.Join",
            endpoint_body(&nid(31), &eid(31)),
            &[&nid(31)],
        ),
        err(
            "Join before CreateEndpoint",
            "/NetworkDriver.Join",
            endpoint_body(NET, &eid(32)),
            &[&eid(32), NET],
        ),
        err(
            "EndpointOperInfo of an unknown endpoint",
            "/NetworkDriver.EndpointOperInfo",
            endpoint_body(NET, &eid(33)),
            &[&eid(33)],
        ),
        err(
            "user MAC on an ipvlan network",
            CE,
            create_endpoint_body(
                NETI,
                &eid(34),
                r#"{"Address":"10.85.0.5/24","MacAddress":"02:00:00:00:00:09"}"#,
            ),
            &["02:00:00:00:00:09"],
        )
        .then(|rig| rig.assert_no_endpoint(NETI, &eid(34))),
        err(
            "MAC address that is none",
            CE,
            create_endpoint_body(
                NET,
                &eid(35),
                r#"{"Address":"10.80.0.9/24","MacAddress":"02:00:zz:00:00:01"}"#,
            ),
            &["02:00:zz:00:00:01"],
        )
        .then(|rig| rig.assert_no_endpoint(NET, &eid(35))),
        err(
            "MAC option (base64) that is not one",
            CE,
            format!(
                r#"{{"NetworkID":"{NET}","EndpointID":"{}","Interface":{{"Address":"10.80.0.9/24"}},"Options":{{"com.docker.network.endpoint.macaddress":"not-a-mac!"}}}}"#,
                eid(37)
            ),
            &["not-a-mac!"],
        )
        .then(|rig| rig.assert_no_endpoint(NET, &eid(37))),
        err(
            "endpoint address that is none",
            CE,
            create_endpoint_body(NET, &eid(36), r#"{"Address":"10.80.0.300/24"}"#),
            &["10.80.0.300/24"],
        )
        .then(|rig| rig.assert_no_endpoint(NET, &eid(36))),
        // ---- IPAM
        err(
            "specific address already taken",
            RA,
            format!(r#"{{"PoolID":"{POOL}","Address":"10.80.0.2","Options":null}}"#),
            &["10.80.0.2 "],
        ),
        err(
            "gateway outside the pool",
            RA,
            format!(
                r#"{{"PoolID":"{POOL}","Address":"10.99.0.1","Options":{{"RequestAddressType":"com.docker.network.gateway"}}}}"#
            ),
            &["10.99.0.1", "10.80.0.0/24"],
        ),
        err(
            "aux address outside the pool",
            RA,
            format!(r#"{{"PoolID":"{POOL}","Address":"10.98.0.5","Options":null}}"#),
            &["10.98.0.5"],
        ),
        err(
            "broadcast address",
            RA,
            format!(r#"{{"PoolID":"{POOL}","Address":"10.80.0.255"}}"#),
            &["10.80.0.255", "broadcast"],
        ),
        err(
            "pool exhausted",
            RA,
            format!(r#"{{"PoolID":"{SMALL}","Address":"","Options":null}}"#),
            &["10.81.0.0/30"],
        ),
        err(
            "unknown PoolID",
            RA,
            r#"{"PoolID":"local/10.200.0.0/24"}"#,
            &["local/10.200.0.0/24"],
        ),
        err(
            "address that is none",
            RA,
            format!(r#"{{"PoolID":"{POOL}","Address":"not-an-ip"}}"#),
            &["not-an-ip"],
        ),
        err(
            "Options of a wrong JSON type",
            RA,
            format!(r#"{{"PoolID":"{POOL}","Options":[1,2]}}"#),
            &["[1,2]"],
        ),
        err(
            "SubPool outside the pool",
            RP,
            r#"{"AddressSpace":"local","Pool":"10.83.0.0/24","SubPool":"10.84.0.0/25","V6":false}"#,
            &["10.84.0.0/25", "10.83.0.0/24"],
        )
        .then(|rig| rig.assert_no_pool("local/10.83.0.0/24/10.84.0.0/25")),
        err(
            "SubPool wider than the pool",
            RP,
            r#"{"AddressSpace":"local","Pool":"10.83.0.0/24","SubPool":"10.83.0.0/23","V6":false}"#,
            &["10.83.0.0/23"],
        )
        .then(|rig| rig.assert_no_pool("local/10.83.0.0/24/10.83.0.0/23")),
        err(
            "IPv6 pool on an IPv4 request",
            RP,
            r#"{"AddressSpace":"local","Pool":"fd00::/64","V6":false}"#,
            &["fd00::/64", "IPv4"],
        )
        .then(|rig| rig.assert_no_pool("local/fd00::/64")),
        err(
            "IPv4 pool on an IPv6 request",
            RP,
            r#"{"AddressSpace":"local","Pool":"10.84.0.0/24","V6":true}"#,
            &["10.84.0.0/24", "IPv6"],
        )
        .then(|rig| rig.assert_no_pool("local/10.84.0.0/24")),
        err(
            "unknown address space",
            RP,
            r#"{"AddressSpace":"mars","Pool":"10.84.0.0/24"}"#,
            &["mars"],
        )
        .then(|rig| rig.assert_no_pool("mars/10.84.0.0/24")),
        err(
            "the whole address range as a pool",
            RP,
            r#"{"AddressSpace":"local","Pool":"0.0.0.0/0"}"#,
            &["0.0.0.0/0"],
        )
        .then(|rig| rig.assert_no_pool("local/0.0.0.0/0")),
        err(
            "V6 of a wrong JSON type",
            RP,
            r#"{"AddressSpace":"local","Pool":"10.84.0.0/24","V6":"yes"}"#,
            &["yes"],
        )
        .then(|rig| rig.assert_no_pool("local/10.84.0.0/24")),
        err(
            "ReleaseAddress of an address that is none",
            "/IpamDriver.ReleaseAddress",
            format!(r#"{{"PoolID":"{POOL}","Address":"10.80.0.999"}}"#),
            &["10.80.0.999"],
        ),
        // ---- other calls
        err(
            "GwAllocCheck with a bad mode",
            "/NetworkDriver.GwAllocCheck",
            r#"{"Options":{"com.docker.network.generic":{"ipvlan_mode":"l9"}}}"#,
            &["'l9'"],
        ),
        err(
            "AllocateNetwork with an unknown option",
            "/NetworkDriver.AllocateNetwork",
            format!(r#"{{"NetworkID":"{}","Options":{{"bogus":"1"}}}}"#, nid(40)),
            &["\"bogus\""],
        ),
        err(
            "unknown call",
            "/NetworkDriver.Teleport",
            "{}",
            &["/NetworkDriver.Teleport"],
        )
        .status(404),
        err(
            "GET instead of POST",
            "/IpamDriver.RequestPool",
            "",
            &["POST", "GET"],
        )
        .status(405)
        .method("GET"),
        // ---- successes by design, which must change nothing
        ok(
            "Leave of an unknown endpoint",
            "/NetworkDriver.Leave",
            endpoint_body(NET, &eid(50)),
        ),
        ok(
            "DeleteEndpoint of an unknown endpoint",
            "/NetworkDriver.DeleteEndpoint",
            endpoint_body(NET, &eid(51)),
        ),
        ok(
            "DeleteEndpoint on an unknown network",
            "/NetworkDriver.DeleteEndpoint",
            endpoint_body(&nid(52), &eid(52)),
        ),
        ok(
            "DeleteNetwork of an unknown network",
            "/NetworkDriver.DeleteNetwork",
            format!(r#"{{"NetworkID":"{}"}}"#, nid(53)),
        ),
        ok(
            "ReleasePool of an unknown pool",
            "/IpamDriver.ReleasePool",
            r#"{"PoolID":"local/10.201.0.0/24"}"#,
        ),
        ok(
            "ReleaseAddress of a free address",
            "/IpamDriver.ReleaseAddress",
            format!(r#"{{"PoolID":"{POOL}","Address":"10.80.0.77"}}"#),
        ),
        ok(
            "ReleaseAddress through another pool",
            "/IpamDriver.ReleaseAddress",
            format!(r#"{{"PoolID":"{SMALL}","Address":"10.80.0.2"}}"#),
        ),
        ok(
            "ReleaseAddress in an unknown pool",
            "/IpamDriver.ReleaseAddress",
            r#"{"PoolID":"local/10.202.0.0/24","Address":"10.202.0.5"}"#,
        ),
        ok(
            "RevokeExternalConnectivity of an unknown endpoint",
            "/NetworkDriver.RevokeExternalConnectivity",
            endpoint_body(&nid(54), &eid(54)),
        ),
        ok(
            "DiscoverNew with a type this plugin ignores",
            "/NetworkDriver.DiscoverNew",
            r#"{"DiscoveryType":2,"DiscoveryData":{"Key":[1,2]}}"#,
        ),
    ];
    // ReleasePool twice: the second one finds nothing and succeeds
    cases.push(
        ok(
            "ReleasePool twice",
            "/IpamDriver.ReleasePool",
            r#"{"PoolID":"local/10.86.0.0/24"}"#,
        )
        .then(|rig| {
            let again = rig.post(
                "/IpamDriver.ReleasePool",
                r#"{"PoolID":"local/10.86.0.0/24"}"#,
            );
            assert_eq!((again.status, again.body.as_str()), (200, "{}"));
            rig.assert_no_pool("local/10.86.0.0/24");
        }),
    );
    cases
}

#[test]
fn hostile_requests_are_refused_by_name_and_change_nothing() {
    let rig = Rig::start();
    // for "ReleasePool twice": a pool that is released once before
    let r = rig.post(
        RP,
        r#"{"AddressSpace":"local","Pool":"10.86.0.0/24","V6":false}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let cases = cases();
    let (mut refused, mut by_design) = (0, 0);
    for case in &cases {
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
            then(&rig);
        }
        rig.assert_unchanged(what);
    }
    assert!(refused >= 30, "only {refused} refused cases");
    eprintln!(
        "hostile: {refused} refused with 500, {} other statuses, {by_design} successes by design, all changing nothing",
        cases.len() - refused - by_design
    );
}

/// The engine never re-creates an endpoint with other addresses; a client
/// that does must be refused, not have the endpoint silently re-addressed
/// under the link that Join already created.
#[test]
fn create_endpoint_twice_with_another_address_is_refused() {
    let rig = Rig::start();
    let again = |addr: &str| {
        rig.post(
            CE,
            &create_endpoint_body(
                NET,
                EP1,
                &format!(r#"{{"Address":"{addr}","AddressIPv6":"","MacAddress":""}}"#),
            ),
        )
    };
    // the engine's retry, with the same addresses: idempotent
    let r = again("10.80.0.2/24");
    assert_eq!((r.status, r.body.as_str()), (200, "{}"));
    let err = again("10.80.0.9/24").assert_error(500);
    assert!(err.contains(EP1) && err.contains("10.80.0.9/24"), "{err}");
    // Join still answers for the original address
    let j = rig.post(
        "/NetworkDriver.Join",
        &format!(r#"{{"NetworkID":"{NET}","EndpointID":"{EP1}","SandboxKey":""}}"#),
    );
    assert_eq!(j.status, 200, "{}", j.body);
    rig.assert_unchanged("CreateEndpoint twice");
}

/// Deterministic xorshift, so that a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Values that have broken parsers elsewhere.
const NASTY: &[&str] = &[
    "",
    "null",
    "0",
    "-1",
    "1e999",
    "18446744073709551616",
    "true",
    "[]",
    "{}",
    "\"\"",
    "\"lo\"",
    "\"hp0\"",
    "\"hp0.4095\"",
    "\"../../etc\"",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"0.0.0.0/0\"",
    "\"::/0\"",
    "\"255.255.255.255/32\"",
    "\"fe80::1%eth0\"",
    "\"10.0.0.1/24 \"",
    "[[[[[[[[[[]]]]]]]]]]",
    "{\"a\":{\"b\":{\"c\":null}}}",
];

fn mutate(rng: &mut Rng, body: &[u8]) -> Vec<u8> {
    let mut b = body.to_vec();
    for _ in 0..=rng.below(3) {
        match rng.below(6) {
            // flip a byte
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            // truncate
            1 if !b.is_empty() => b.truncate(rng.below(b.len())),
            // replace a value after a colon
            2 => {
                let colons: Vec<usize> = b
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| **c == b':')
                    .map(|(i, _)| i)
                    .collect();
                if let Some(&at) = colons.get(rng.below(colons.len())) {
                    let end = b[at + 1..]
                        .iter()
                        .position(|c| matches!(c, b',' | b'}' | b']'))
                        .map_or(b.len(), |p| at + 1 + p);
                    let nasty = NASTY[rng.below(NASTY.len())].as_bytes();
                    b.splice(at + 1..end, nasty.iter().copied());
                }
            }
            // insert a nasty value anywhere
            3 => {
                let at = rng.below(b.len() + 1);
                let nasty = NASTY[rng.below(NASTY.len())].as_bytes();
                b.splice(at..at, nasty.iter().copied());
            }
            // duplicate a slice
            4 if !b.is_empty() => {
                let (x, y) = (rng.below(b.len()), rng.below(b.len()));
                let (x, y) = (x.min(y), x.max(y));
                let piece = b[x..y].to_vec();
                let at = rng.below(b.len() + 1);
                b.splice(at..at, piece);
            }
            // random bytes
            _ => {
                let at = rng.below(b.len() + 1);
                let junk: Vec<u8> = (0..rng.below(8) + 1).map(|_| rng.next() as u8).collect();
                b.splice(at..at, junk);
            }
        }
    }
    b
}

/// Mutated engine captures, at every call of the protocol: each answer is
/// 200 or a well-formed 500, and no handler panics.
#[test]
fn mutated_engine_requests_never_panic_the_server() {
    let ns = NetNs::new("hm");
    ns.add_veth_parent("hp0");
    let p = Plugin::start(Some(&ns.name), &[]);
    let mut seeds: Vec<(String, String)> = common::fixture("dockerd-20.10-requests.jsonl")
        .into_iter()
        .chain(common::fixture("dockerd-28.5-requests.jsonl"))
        .map(|(_, path, raw)| (path, raw))
        .filter(|(path, _)| protocol::Call::from_path(path).is_some())
        .collect();
    seeds.sort();
    seeds.dedup();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut ok, mut refused) = (0, 0);
    let rounds = 1500;
    for i in 0..rounds {
        let (path, raw) = &seeds[rng.below(seeds.len())];
        // mostly the call the body belongs to, sometimes another one
        let path = if rng.below(8) == 0 {
            protocol::Call::ALL[rng.below(protocol::Call::ALL.len())].path()
        } else {
            path.as_str()
        };
        let body = mutate(&mut rng, raw.as_bytes());
        let r = request(&p.socket, "POST", path, &body);
        match r.status {
            200 => {
                assert!(r.json().is_object(), "{path}: {}", r.body);
                ok += 1;
            }
            500 => {
                r.assert_error(500);
                refused += 1;
            }
            other => panic!(
                "round {i}: {path} {:?}: status {other}: {}",
                String::from_utf8_lossy(&body),
                r.body
            ),
        }
        if i % 100 == 0 {
            let c = p.post("/NetworkDriver.GetCapabilities", "");
            assert_eq!(c.status, 200, "round {i}: {}", c.body);
        }
    }
    let log = p.log_text();
    assert!(!log.contains("panicked"), "a handler panicked:\n{log}");
    eprintln!("mutated: {rounds} requests, {ok} accepted, {refused} refused, no panic");
    assert!(
        refused > rounds / 4 && ok > 0,
        "{ok} accepted, {refused} refused"
    );
}

/// DeleteEndpoint of an unknown endpoint succeeds by design (the engine
/// replays it after crashes), but must not touch what belongs to a live
/// endpoint: here an ID that shares its first 12 characters (the link
/// name) with a live endpoint.
#[test]
fn delete_of_an_unknown_endpoint_spares_a_live_endpoints_link() {
    let rig = Rig::start();
    let twin = format!("{}{}", &EP1[..12], "f".repeat(52));
    let r = rig.post("/NetworkDriver.DeleteEndpoint", &endpoint_body(NET, &twin));
    assert_eq!((r.status, r.body.as_str()), (200, "{}"));
    // DeleteEndpoint answers before the reaper acts: give it time to
    assert!(
        !rig.ns
            .link_gone_within(&rig.ep1_link, std::time::Duration::from_secs(1)),
        "{} of live endpoint {EP1} was deleted by DeleteEndpoint of {twin}",
        rig.ep1_link
    );
    rig.assert_unchanged("DeleteEndpoint of a twin ID");
}

/// EndpointOperInfo and Join look endpoints up on the network the request
/// names; DeleteEndpoint must too, and not delete an endpoint of another
/// network.
#[test]
fn delete_endpoint_on_another_network_spares_the_endpoint() {
    let rig = Rig::start();
    let err = rig
        .post("/NetworkDriver.EndpointOperInfo", &endpoint_body(NETI, EP1))
        .assert_error(500);
    assert!(err.contains(NETI), "{err}");
    let r = rig.post("/NetworkDriver.DeleteEndpoint", &endpoint_body(NETI, EP1));
    assert_eq!((r.status, r.body.as_str()), (200, "{}"));
    assert!(
        !rig.ns
            .link_gone_within(&rig.ep1_link, std::time::Duration::from_secs(1)),
        "DeleteEndpoint on network {NETI} deleted the link of {EP1} of {NET}"
    );
    rig.assert_unchanged("DeleteEndpoint on another network");
}

/// Transport-level abuse: a body shorter than its Content-Length, a
/// request line of garbage, and idle connections that never send a byte;
/// the server answers or closes each, and keeps serving the others.
#[test]
fn truncated_garbage_and_idle_connections_do_not_wedge_the_server() {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    common::require_root();
    let p = Plugin::start(None, &[]);
    let serving = |what: &str| {
        let r = p.post("/NetworkDriver.GetCapabilities", "");
        assert_eq!(r.status, 200, "{what}: {}", r.body);
    };
    // idle connections stay open while others are served
    let idle: Vec<UnixStream> = (0..50)
        .map(|_| UnixStream::connect(&p.socket).unwrap())
        .collect();
    serving("50 idle connections");
    // a body cut short: the server must not wait for the rest forever once
    // the client is gone
    let mut s = UnixStream::connect(&p.socket).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(
        b"POST /IpamDriver.RequestPool HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"Pool\":",
    )
    .unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    if !raw.is_empty() {
        assert!(raw.starts_with("HTTP/1.1 500"), "{raw}");
        assert!(raw.contains("request body rejected"), "{raw}");
    }
    serving("truncated body");
    // not HTTP at all
    let mut s = UnixStream::connect(&p.socket).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(b"\x00\x01\x02 GARBAGE \xff\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.is_empty() || raw.starts_with("HTTP/1.1 400"), "{raw}");
    serving("garbage request line");
    drop(idle);
    serving("idle connections closed");
    let log = p.log_text();
    assert!(!log.contains("panicked"), "{log}");
}
