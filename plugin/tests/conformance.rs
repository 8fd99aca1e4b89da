//! Conformance: replay every request real engines sent (Docker 20.10, 28.5
//! and 29.x captures in `tests/fixtures/`) byte for byte, in order, to the real
//! binary serving inside a network namespace with veth parents named as in
//! the capture (`hp0`, `sw0`), and check what an engine relies on.
//!
//! Two rewrites, both forced by facts outside the plugin: PoolIDs are the
//! opaque IDs the capturing plugin returned, so each is mapped to the ID
//! this plugin returned for the same RequestPool; and where the kernel has
//! no ipvlan (this CI host), networks ask for `kind=macvlan` so that Join
//! creates a real link here (the VM rig covers ipvlan), except a Swarm
//! network that came with no driver options at all: that is what a
//! local-scope plugin receives, and is kept as sent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{NetNs, fixture, kernel_has_ipvlan};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Calls the engine treats as infallible or tolerant: they must succeed
/// whatever came before (unknown IDs included).
const ALWAYS_OK: &[&str] = &[
    "/NetworkDriver.GetCapabilities",
    "/IpamDriver.GetCapabilities",
    "/IpamDriver.GetDefaultAddressSpaces",
    "/IpamDriver.RequestPool",
    "/IpamDriver.ReleasePool",
    "/IpamDriver.ReleaseAddress",
    "/NetworkDriver.DeleteNetwork",
    "/NetworkDriver.Leave",
    "/NetworkDriver.DeleteEndpoint",
    "/NetworkDriver.DiscoverNew",
    "/NetworkDriver.DiscoverDelete",
    "/NetworkDriver.FreeNetwork",
    "/NetworkDriver.ProgramExternalConnectivity",
    "/NetworkDriver.RevokeExternalConnectivity",
];

/// Fields a 200 reply must carry for the engine to accept it.
fn required_fields(path: &str) -> &'static [&'static str] {
    match path {
        "/NetworkDriver.GetCapabilities" => &["Scope", "ConnectivityScope"],
        "/IpamDriver.GetCapabilities" => &["RequiresMACAddress"],
        "/IpamDriver.GetDefaultAddressSpaces" => {
            &["LocalDefaultAddressSpace", "GlobalDefaultAddressSpace"]
        }
        "/IpamDriver.RequestPool" => &["PoolID", "Pool"],
        "/IpamDriver.RequestAddress" => &["Address"],
        "/NetworkDriver.Join" => &["InterfaceName", "DisableGatewayService"],
        "/NetworkDriver.AllocateNetwork" => &["Options"],
        "/NetworkDriver.EndpointOperInfo" => &["Value"],
        _ => &[],
    }
}

struct Replay {
    pools: HashMap<String, String>,
    pending_auto: Option<String>,
    macvlan: bool,
}

impl Replay {
    /// Rewrite a captured body for this plugin (see the module comment).
    fn rewrite(&mut self, path: &str, raw: &str) -> String {
        if raw.is_empty() {
            return String::new();
        }
        let mut v: Value = serde_json::from_str(raw).unwrap();
        if let Some(id) = v.get("PoolID").and_then(Value::as_str).map(String::from)
            && !id.is_empty()
        {
            let mapped = match self.pools.get(&id) {
                Some(m) => m.clone(),
                None => match self.pending_auto.take() {
                    Some(auto) => {
                        self.pools.insert(id.clone(), auto.clone());
                        auto
                    }
                    None => id,
                },
            };
            v["PoolID"] = Value::String(mapped);
        }
        let stripped_swarm_network = v["NetworkID"].as_str().is_some_and(|id| id.len() == 25)
            && v["Options"]["com.docker.network.generic"]
                .as_object()
                .is_some_and(|g| g.is_empty());
        if self.macvlan
            && !stripped_swarm_network
            && matches!(
                path,
                "/NetworkDriver.CreateNetwork" | "/NetworkDriver.GwAllocCheck"
            )
        {
            let generic = &mut v["Options"]["com.docker.network.generic"];
            if generic.is_null() {
                *generic = serde_json::json!({});
            }
            generic
                .as_object_mut()
                .unwrap()
                .entry("kind")
                .or_insert(Value::String("macvlan".into()));
        }
        if self.macvlan && path == "/NetworkDriver.AllocateNetwork" {
            v["Options"]
                .as_object_mut()
                .unwrap()
                .entry("kind")
                .or_insert(Value::String("macvlan".into()));
        }
        v.to_string() + "\n"
    }

    /// Remember which PoolID of ours answers for the capture's IDs.
    fn learn_pool(&mut self, request: &Value, reply: &Value) {
        let ours = reply["PoolID"].as_str().unwrap().to_string();
        let space = request["AddressSpace"].as_str().unwrap_or_default();
        let pool = request["Pool"].as_str().unwrap_or_default();
        let sub = request["SubPool"].as_str().unwrap_or_default();
        if pool.is_empty() {
            self.pending_auto = Some(ours);
            return;
        }
        let with_sub = if sub.is_empty() {
            pool.to_string()
        } else {
            format!("{pool}|{sub}")
        };
        for alias in [with_sub.clone(), format!("{space}:{with_sub}")] {
            self.pools.insert(alias, ours.clone());
        }
    }
}

/// One replayed request and the plugin's answer.
struct Exchange {
    scenario: String,
    path: String,
    status: u16,
    reply: String,
}

fn replay(file: &str) -> Vec<Exchange> {
    let ns = NetNs::new("cf").unwrap();
    ns.add_veth_parent("hp0").unwrap();
    ns.add_veth_parent("sw0").unwrap();
    let plugin = common::start(Some(&ns.name), &[]);
    let mut r = Replay {
        pools: HashMap::new(),
        pending_auto: None,
        macvlan: !kernel_has_ipvlan(),
    };
    let mut tally: BTreeMap<(String, u16), usize> = BTreeMap::new();
    let (mut networks_ok, mut endpoints_ok) = (HashSet::new(), HashSet::new());
    let mut joined = 0;
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    let mut exchanges = Vec::new();
    for (i, (scenario, path, raw)) in fixture(file).into_iter().enumerate() {
        let body = r.rewrite(&path, &raw);
        let reply = plugin.post(&path, &body);
        let ctx = format!(
            "{file}#{i} [{scenario}] {path} {body}\n-> {} {}",
            reply.status, reply.body
        );
        *tally.entry((path.clone(), reply.status)).or_default() += 1;
        exchanges.push(Exchange {
            scenario: scenario.clone(),
            path: path.clone(),
            status: reply.status,
            reply: reply.body.clone(),
        });
        assert!(reply.status == 200 || reply.status == 500, "{ctx}");
        if ALWAYS_OK.contains(&path.as_str()) {
            assert_eq!(reply.status, 200, "{ctx}\nlog:\n{}", plugin.log_text());
        }
        let req: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&body).unwrap()
        };
        let id = |k: &str| req[k].as_str().unwrap_or_default().to_string();
        if reply.status == 500 {
            *failures
                .entry(format!("{path}: {}", reply.assert_error(500)))
                .or_default() += 1;
            // what must not fail once its prerequisites succeeded
            match path.as_str() {
                "/NetworkDriver.CreateEndpoint" => {
                    assert!(!networks_ok.contains(&id("NetworkID")), "{ctx}")
                }
                "/NetworkDriver.Join" => {
                    assert!(!endpoints_ok.contains(&id("EndpointID")), "{ctx}")
                }
                _ => {}
            }
            continue;
        }
        let v = reply.json();
        assert!(v.is_object(), "{ctx}");
        for field in required_fields(&path) {
            assert!(v.get(*field).is_some(), "missing {field}: {ctx}");
        }
        match path.as_str() {
            "/IpamDriver.RequestPool" => r.learn_pool(&req, &v),
            "/IpamDriver.RequestAddress" => {
                let a: ipnet::IpNet = v["Address"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap_or_else(|e| panic!("{e}: {ctx}"));
                assert!(a.prefix_len() > 0, "{ctx}");
            }
            "/NetworkDriver.CreateNetwork" => {
                networks_ok.insert(id("NetworkID"));
            }
            "/NetworkDriver.CreateEndpoint" => {
                endpoints_ok.insert(id("EndpointID"));
            }
            "/NetworkDriver.Join" => {
                let link = v["InterfaceName"]["SrcName"].as_str().unwrap().to_string();
                assert_eq!(v["InterfaceName"]["DstPrefix"], "eth", "{ctx}");
                assert_eq!(v["DisableGatewayService"], true, "{ctx}");
                let details = ns
                    .link_details(&link)
                    .unwrap_or_else(|| panic!("Join said {link} but it is not there: {ctx}"));
                assert!(
                    details.contains("macvlan") || details.contains("ipvlan"),
                    "{details}"
                );
                joined += 1;
            }
            "/NetworkDriver.DeleteEndpoint" => {
                let link = ipvlan_driver::slave_name(&id("EndpointID"));
                assert!(
                    ns.link_gone_within(&link, common::GUARD),
                    "{link} still there {:?} after DeleteEndpoint: {ctx}",
                    common::GUARD
                );
            }
            "/NetworkDriver.GetCapabilities" => assert_eq!(v["Scope"], "local", "{ctx}"),
            _ => {}
        }
    }
    println!("{file}: replies by call and status:");
    for ((path, status), n) in &tally {
        println!("  {status} x{n:<3} {path}");
    }
    println!("{file}: refusals:");
    for (err, n) in &failures {
        println!("  x{n:<3} {err}");
    }
    assert!(joined > 0, "no Join created a link");
    common::eventually(common::GUARD, || common::container_links(&ns).is_empty());
    let leftovers = common::container_links(&ns);
    assert!(
        leftovers.is_empty(),
        "container links left after the replay: {leftovers:?}"
    );
    exchanges
}

#[test]
fn replay_docker_20_10_capture() {
    replay("dockerd-20.10-requests.jsonl");
}

#[test]
fn replay_docker_28_5_capture() {
    replay("dockerd-28.5-requests.jsonl");
}

/// Docker 29.7 (built from source, `tests/fixtures/README.md`): besides the
/// general checks, what it does differently is answered as it must be.
#[test]
fn replay_docker_29_capture() {
    let exchanges = replay("dockerd-29.x-requests.jsonl");
    let of = |needle: &str, path: &str| -> Vec<&Exchange> {
        let found: Vec<&Exchange> = exchanges
            .iter()
            .filter(|e| e.scenario.contains(needle) && e.path == path)
            .collect();
        assert!(!found.is_empty(), "no {path} in scenario {needle:?}");
        found
    };
    let all_ok = |needle: &str, path: &str| {
        for e in of(needle, path) {
            assert_eq!(e.status, 200, "{} {}: {}", e.scenario, e.path, e.reply);
        }
    };
    // an IPv6-only network (--ipv4=false): no IPv4 pool, and containers on it
    all_ok("(IPv6-only)", "/NetworkDriver.CreateNetwork");
    all_ok("network n6 bb", "/NetworkDriver.Join");
    // RequestAddress names the endpoint (com.docker.network.endpoint.name)
    all_ok(
        "docker run --rm --network n1 bb",
        "/IpamDriver.RequestAddress",
    );
    // a container on two networks, one with gw-priority, and a connect with one
    all_ok("(GwPriority)", "/NetworkDriver.Join");
    all_ok("--gw-priority 5", "/NetworkDriver.Join");
    // the MAC of --mac-address in the endpoint settings (API >= 1.44)
    all_ok("--mac-address", "/NetworkDriver.CreateEndpoint");
    for e in of("--mac-address", "/NetworkDriver.CreateEndpoint") {
        // the engine set the MAC: an answer with another one is refused by
        // the engine ("cannot be modified")
        let reply: serde_json::Value = serde_json::from_str(&e.reply).unwrap();
        let mac = reply["Interface"]["MacAddress"].as_str().unwrap_or("");
        assert!(
            mac.is_empty() || mac == "02:42:0a:63:00:32",
            "CreateEndpoint answered MAC {mac} for --mac-address 02:42:0a:63:00:32"
        );
    }
    // a Swarm network that reached this SCOPE=local plugin stripped of its
    // options: refused, saying what to do
    for e in of(
        "(attachable swarm net, SCOPE=local)",
        "/NetworkDriver.CreateNetwork",
    ) {
        assert_eq!(e.status, 500, "{}", e.reply);
        for needle in ["Swarm network", "SCOPE=global", "--config-from"] {
            assert!(e.reply.contains(needle), "{needle} not in {}", e.reply);
        }
    }
}
