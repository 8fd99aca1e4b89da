//! Hostile IPAM calls through the real socket (see `hostile/mod.rs`):
//! RequestAddress and RequestPool with taken, foreign, bad or exhausted
//! addresses and pools, and releases of what is not held, which must
//! change nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod hostile;

use common::body;
use hostile::{Case, POOL, RA, RP, Rig, SMALL, err, ok};

fn cases() -> Vec<Case> {
    vec![
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
        // ReleasePool twice: the second one finds nothing and succeeds
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
    ]
}

#[test]
fn hostile_ipam_calls_are_refused_by_name_and_change_nothing() {
    let rig = Rig::start();
    // for "ReleasePool twice": a pool that is released once before
    let r = rig.post(RP, &body::request_pool("10.86.0.0/24", true));
    assert_eq!(r.status, 200, "{}", r.body);
    hostile::run(&rig, "ipam", &cases(), 8);
}
