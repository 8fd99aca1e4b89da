//! Hostile endpoint calls through the real socket (see `hostile/mod.rs`):
//! CreateEndpoint, Join and EndpointOperInfo with bad IDs, addresses and
//! MACs or on unknown networks, Leave and DeleteEndpoint of what is not
//! there, and that none of them touches the live endpoint.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod hostile;

use common::body;
use hostile::{CE, Case, EP1, NET, NETI, Rig, eid, err, nid, ok};

fn cases() -> Vec<Case> {
    let mut cases = common_cases();
    // NETI is ipvlan only where the kernel makes ipvlan links
    if common::kernel_has_ipvlan() {
        cases.push(
            err(
                "user MAC on an ipvlan network",
                CE,
                body::create_endpoint(
                    NETI,
                    &eid(34),
                    r#"{"Address":"10.85.0.5/24","MacAddress":"02:00:00:00:00:09"}"#,
                ),
                &["02:00:00:00:00:09"],
            )
            .then(|rig| rig.assert_no_endpoint(NETI, &eid(34))),
        );
    }
    cases
}

fn common_cases() -> Vec<Case> {
    vec![
        err(
            "EndpointID with a space",
            CE,
            body::create_endpoint(NET, "ep 1", "{}"),
            &["ep 1"],
        ),
        err(
            "CreateEndpoint on an unknown network",
            CE,
            body::create_endpoint(&nid(30), &eid(30), r#"{"Address":"10.80.0.9/24"}"#),
            &[&nid(30)],
        )
        .then(|rig| rig.assert_no_endpoint(&nid(30), &eid(30))),
        err(
            "Join on an unknown network",
            "/NetworkDriver.Join",
            body::endpoint(&nid(31), &eid(31)),
            &[&nid(31)],
        ),
        err(
            "Join before CreateEndpoint",
            "/NetworkDriver.Join",
            body::endpoint(NET, &eid(32)),
            &[&eid(32), NET],
        ),
        err(
            "EndpointOperInfo of an unknown endpoint",
            "/NetworkDriver.EndpointOperInfo",
            body::endpoint(NET, &eid(33)),
            &[&eid(33)],
        ),
        err(
            "MAC address that is none",
            CE,
            body::create_endpoint(
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
            body::create_endpoint(NET, &eid(36), r#"{"Address":"10.80.0.300/24"}"#),
            &["10.80.0.300/24"],
        )
        .then(|rig| rig.assert_no_endpoint(NET, &eid(36))),
        err(
            "endpoint address outside the network's subnet",
            CE,
            body::create_endpoint(NET, &eid(38), r#"{"Address":"10.99.0.9/24"}"#),
            &["10.99.0.9/24", NET, "10.80.0.0/24"],
        )
        .then(|rig| rig.assert_no_endpoint(NET, &eid(38))),
        err(
            "IPv6 endpoint address on a network without IPv6",
            CE,
            body::create_endpoint(
                NET,
                &eid(39),
                r#"{"Address":"10.80.0.9/24","AddressIPv6":"fd00::9/64"}"#,
            ),
            &["fd00::9/64", NET],
        )
        .then(|rig| rig.assert_no_endpoint(NET, &eid(39))),
        ok(
            "Leave of an unknown endpoint",
            "/NetworkDriver.Leave",
            body::endpoint(NET, &eid(50)),
        ),
        ok(
            "DeleteEndpoint of an unknown endpoint",
            "/NetworkDriver.DeleteEndpoint",
            body::endpoint(NET, &eid(51)),
        ),
        ok(
            "DeleteEndpoint on an unknown network",
            "/NetworkDriver.DeleteEndpoint",
            body::endpoint(&nid(52), &eid(52)),
        ),
        ok(
            "RevokeExternalConnectivity of an unknown endpoint",
            "/NetworkDriver.RevokeExternalConnectivity",
            body::endpoint(&nid(54), &eid(54)),
        ),
    ]
}

#[test]
fn hostile_endpoint_calls_are_refused_by_name_and_change_nothing() {
    let rig = Rig::start();
    hostile::run(&rig, "endpoint", &cases(), 5);
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
            &body::create_endpoint(NET, EP1, &body::interface(addr, "")),
        )
    };
    // the engine's retry, with the same addresses: idempotent
    let r = again("10.80.0.2/24");
    assert_eq!((r.status, r.body.as_str()), (200, "{}"));
    let err = again("10.80.0.9/24").assert_error(500);
    assert!(err.contains(EP1) && err.contains("10.80.0.9/24"), "{err}");
    // Join still answers for the original address
    let j = rig.post("/NetworkDriver.Join", &body::join(NET, EP1));
    assert_eq!(j.status, 200, "{}", j.body);
    rig.assert_unchanged("CreateEndpoint twice");
}

/// DeleteEndpoint of an unknown endpoint succeeds by design (the engine
/// replays it after crashes), but must not touch what belongs to a live
/// endpoint: here an ID that shares its first 12 characters (the link
/// name) with a live endpoint.
#[test]
fn delete_of_an_unknown_endpoint_spares_a_live_endpoints_link() {
    let rig = Rig::start();
    let twin = format!("{}{}", &EP1[..12], "f".repeat(52));
    let r = rig.post("/NetworkDriver.DeleteEndpoint", &body::endpoint(NET, &twin));
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
        .post(
            "/NetworkDriver.EndpointOperInfo",
            &body::endpoint(NETI, EP1),
        )
        .assert_error(500);
    assert!(err.contains(NETI), "{err}");
    let r = rig.post("/NetworkDriver.DeleteEndpoint", &body::endpoint(NETI, EP1));
    assert_eq!((r.status, r.body.as_str()), (200, "{}"));
    assert!(
        !rig.ns
            .link_gone_within(&rig.ep1_link, std::time::Duration::from_secs(1)),
        "DeleteEndpoint on network {NETI} deleted the link of {EP1} of {NET}"
    );
    rig.assert_unchanged("DeleteEndpoint on another network");
}
