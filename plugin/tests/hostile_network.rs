//! Hostile network calls through the real socket (see `hostile/mod.rs`):
//! CreateNetwork with bad options, parents, pools and IDs, the other
//! network calls, and the successes by design that must change nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod hostile;

use common::body;
use hostile::{CN, Case, NET, Rig, V4, err, nid, ok};

/// A CreateNetwork with these generic options that must fail naming
/// `needles`, and leave no network behind.
fn bad_network(n: u32, what: &str, generic: &str, ipv4: &str, needles: &[&str]) -> Case {
    let id = nid(n);
    err(what, CN, body::create_network(&id, generic, ipv4), needles)
        .then(move |rig| rig.assert_no_network(&id))
}

fn cases() -> Vec<Case> {
    let long_id = "a".repeat(129);
    vec![
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
            body::create_network(
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
        err(
            "NetworkID with a path",
            CN,
            body::create_network("../../etc", "{}", V4),
            &["../../etc"],
        ),
        err(
            "NetworkID longer than 128",
            CN,
            body::create_network(&long_id, "{}", V4),
            &[&long_id],
        ),
        err(
            "empty NetworkID",
            CN,
            body::create_network("", "{}", V4),
            &["invalid NetworkID \"\""],
        ),
        err(
            "NetworkID with a space and non-ASCII",
            "/NetworkDriver.DeleteNetwork",
            r#"{"NetworkID":"né t"}"#,
            &["né t"],
        ),
        err("missing NetworkID", CN, r#"{"Options":{}}"#, &["NetworkID"]),
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
        {
            // as Docker 20.10 sent it (tests/fixtures/dockerd-20.10-requests.jsonl,
            // "service create ... (SCOPE=local)"): a Swarm network reaching a
            // local-scope plugin, its options and subnet lost on the way
            let id = "lhn9c99rs56s6h9go8f1or92m";
            err(
                "a Swarm network without its options at a SCOPE=local plugin",
                CN,
                format!(
                    r#"{{"NetworkID":"{id}","Options":{{"com.docker.network.enable_ipv6":false,"com.docker.network.generic":{{}}}},"IPv4Data":[{{"AddressSpace":"LocalDefault","Gateway":"172.19.0.1/16","Pool":"172.19.0.0/16"}}],"IPv6Data":[]}}"#
                ),
                &[id, "Swarm network", "SCOPE=local", "SCOPE=global", "--config-from"],
            )
            .then(move |rig| rig.assert_no_network(id))
        },
        ok(
            "DeleteNetwork of an unknown network",
            "/NetworkDriver.DeleteNetwork",
            format!(r#"{{"NetworkID":"{}"}}"#, nid(53)),
        ),
        ok(
            "DiscoverNew with a type this plugin ignores",
            "/NetworkDriver.DiscoverNew",
            r#"{"DiscoveryType":2,"DiscoveryData":{"Key":[1,2]}}"#,
        ),
    ]
}

#[test]
fn hostile_network_calls_are_refused_by_name_and_change_nothing() {
    let rig = Rig::start();
    hostile::run(&rig, "network", &cases(), 15);
}
