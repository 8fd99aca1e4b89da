//! Pools as the engine asks for them: sub-pools, small and large ranges, overlaps, refusals and
//! the choice of a default pool.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{GW, addr_req, next_addr, open, pool_req};
use ipnet::IpNet;
use ipvlan_rs_ipam::{DefaultPool, HostRoutes, Ipam, IpamConfig, IpamError};
use protocol::ipam::ReleasePoolRequest;
use std::net::IpAddr;
use std::sync::Arc;

#[tokio::test]
async fn sub_pool_bounds_dynamic_addresses_but_not_specific_ones() {
    let dir = tempfile::tempdir().unwrap();
    let ipam = open(&dir.path().join("ipam.redb"));
    let id = ipam
        .request_pool(&pool_req("local", "10.96.0.0/24", "10.96.0.128/25", false))
        .await
        .unwrap()
        .id
        .to_string();
    assert_eq!(
        ipam.request_address(&addr_req(&id, "10.96.0.1", &[GW]))
            .await
            .unwrap()
            .to_string(),
        "10.96.0.1/24"
    );
    assert_eq!(
        ipam.request_address(&addr_req(&id, "10.96.0.5", &[]))
            .await
            .unwrap()
            .to_string(),
        "10.96.0.5/24"
    );
    assert_eq!(next_addr(&ipam, &id).await, "10.96.0.128/24");
    let out = ipam
        .request_address(&addr_req(&id, "10.97.0.5", &[]))
        .await
        .unwrap_err();
    assert!(matches!(out, IpamError::OutOfPool { .. }), "{out}");
    assert!(out.to_string().contains("10.97.0.5"));
}

#[tokio::test]
async fn sub_pool_exhaustion_names_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let ipam = open(&dir.path().join("ipam.redb"));
    let id = ipam
        .request_pool(&pool_req("local", "10.95.0.0/24", "10.95.0.252/30", false))
        .await
        .unwrap()
        .id
        .to_string();
    // .252 .253 .254 are usable; .255 is the pool's broadcast address
    for want in ["10.95.0.252/24", "10.95.0.253/24", "10.95.0.254/24"] {
        assert_eq!(next_addr(&ipam, &id).await, want);
    }
    let err = ipam
        .request_address(&addr_req(&id, "", &[]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("10.95.0.252/30"), "{err}");
}

#[tokio::test]
async fn point_to_point_pools_use_both_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let ipam = open(&dir.path().join("ipam.redb"));
    let id = ipam
        .request_pool(&pool_req("local", "192.168.135.0/31", "", false))
        .await
        .unwrap()
        .id
        .to_string();
    assert_eq!(next_addr(&ipam, &id).await, "192.168.135.0/31");
    assert_eq!(next_addr(&ipam, &id).await, "192.168.135.1/31");
    assert!(ipam.request_address(&addr_req(&id, "", &[])).await.is_err());
}

#[tokio::test]
async fn overlapping_pools_never_share_an_address() {
    let dir = tempfile::tempdir().unwrap();
    let ipam = open(&dir.path().join("ipam.redb"));
    let a = ipam
        .request_pool(&pool_req(
            "local",
            "192.168.0.0/24",
            "192.168.0.0/25",
            false,
        ))
        .await
        .unwrap()
        .id
        .to_string();
    let b = ipam
        .request_pool(&pool_req("local", "192.168.0.0/24", "", false))
        .await
        .unwrap()
        .id
        .to_string();
    let c = ipam
        .request_pool(&pool_req("local", "192.168.0.0/24", "", false))
        .await
        .unwrap()
        .id
        .to_string();
    assert_eq!(b, c, "an identical pool is one lease counted twice");
    let mut seen = std::collections::HashSet::new();
    for i in 0..60 {
        let id = [&a, &b][i % 2];
        assert!(seen.insert(next_addr(&ipam, id).await), "duplicate address");
    }
    // one release of the shared pool keeps it for the other network
    ipam.release_pool(&ReleasePoolRequest { pool_id: b.clone() })
        .await
        .unwrap();
    next_addr(&ipam, &c).await;
    // a different address space is independent
    let g = ipam
        .request_pool(&pool_req("global", "192.168.0.0/24", "", false))
        .await
        .unwrap()
        .id
        .to_string();
    assert_eq!(next_addr(&ipam, &g).await, "192.168.0.1/24");
}

#[tokio::test]
async fn bad_pool_requests_name_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let ipam = open(&dir.path().join("ipam.redb"));
    let cases = [
        (pool_req("local", "fd00::/64", "", false), "fd00::/64"),
        (pool_req("local", "10.0.0.0/24", "", true), "10.0.0.0/24"),
        (
            pool_req("local", "10.0.0.0/24", "10.0.1.0/25", false),
            "10.0.1.0/25",
        ),
        (pool_req("elsewhere", "10.0.0.0/24", "", false), "elsewhere"),
        (pool_req("local", "0.0.0.0/0", "", false), "0.0.0.0/0"),
    ];
    for (req, needle) in cases {
        let err = ipam.request_pool(&req).await.unwrap_err().to_string();
        assert!(err.contains(needle), "{err}");
    }
    assert_eq!(ipam.address_count(), 0);
}

/// An `--ip-range` made only of reserved addresses is refused naming the
/// range (not only the subnet) and what each of its addresses is.
#[tokio::test]
async fn a_range_with_no_usable_address_names_the_range_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let ipam = open(&dir.path().join("ipam.redb"));
    let cases = [
        (
            "10.0.0.0/24",
            "10.0.0.255/32",
            "10.0.0.255 is the broadcast address",
        ),
        (
            "10.0.0.0/24",
            "10.0.0.0/32",
            "10.0.0.0 is the network address",
        ),
        (
            "fd00::/64",
            "fd00::/128",
            "fd00:: is the subnet-router anycast address",
        ),
    ];
    for (pool, range, why) in cases {
        let v6 = pool.contains(':');
        let err = ipam
            .request_pool(&pool_req("local", pool, range, v6))
            .await
            .unwrap_err();
        assert!(matches!(err, IpamError::EmptyRange { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains(&format!("ip range {range} of subnet {pool}")) && text.contains(why),
            "{text}"
        );
    }
    // one usable address is enough
    let lease = ipam
        .request_pool(&pool_req("local", "10.0.0.0/24", "10.0.0.254/31", false))
        .await
        .unwrap();
    assert_eq!(
        next_addr(&ipam, &lease.id.to_string()).await,
        "10.0.0.254/24"
    );
    assert_eq!(ipam.address_count(), 1);
}

struct Routes(Vec<IpNet>);
impl HostRoutes for Routes {
    fn prefixes(&self) -> Vec<IpNet> {
        self.0.clone()
    }
}

#[tokio::test]
async fn chosen_pools_avoid_pools_and_host_routes() {
    let dir = tempfile::tempdir().unwrap();
    let config = IpamConfig {
        default_pools: vec![
            "10.200.0.0/22:24".parse().unwrap(),
            "fd00:aa::/62:64".parse().unwrap(),
        ],
    };
    let routes = Routes(vec![
        "0.0.0.0/0".parse().unwrap(),
        "10.200.1.0/24".parse().unwrap(),
    ]);
    let ipam = Ipam::open(&dir.path().join("ipam.redb"), config, Arc::new(routes)).unwrap();
    ipam.request_pool(&pool_req("local", "10.200.0.0/24", "", false))
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(
            ipam.request_pool(&pool_req("local", "", "", false))
                .await
                .unwrap()
                .pool
                .to_string(),
        );
    }
    assert_eq!(got, ["10.200.2.0/24", "10.200.3.0/24"]);
    let err = ipam
        .request_pool(&pool_req("local", "", "", false))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no free IPv4 pool") && err.contains("10.200.0.0/22:24"),
        "{err}"
    );
    let v6 = ipam
        .request_pool(&pool_req("local", "", "", true))
        .await
        .unwrap();
    assert_eq!(v6.pool.to_string(), "fd00:aa::/64");
}

#[test]
fn default_pool_syntax() {
    assert_eq!("172.30.0.0/16:24".parse::<DefaultPool>().unwrap().size, 24);
    for bad in [
        "172.30.0.0/16",
        "172.30.0.0/16:8",
        "x/16:24",
        "172.30.0.0/16:33",
    ] {
        let err = bad.parse::<DefaultPool>().unwrap_err();
        assert!(err.contains(bad), "{err}");
    }
}

#[tokio::test]
async fn ipv6_pools_scale_without_cost() {
    let dir = tempfile::tempdir().unwrap();
    let ipam = open(&dir.path().join("ipam.redb"));
    let id = ipam
        .request_pool(&pool_req("local", "fd00:95::/64", "", true))
        .await
        .unwrap()
        .id
        .to_string();
    assert_eq!(next_addr(&ipam, &id).await, "fd00:95::1/64");
    let eight = ipam
        .request_pool(&pool_req("local", "10.0.0.0/8", "", false))
        .await
        .unwrap()
        .id
        .to_string();
    assert_eq!(next_addr(&ipam, &eight).await, "10.0.0.1/8");
    let addr: IpAddr = "fd00:95::ffff:1".parse().unwrap();
    ipam.request_address(&addr_req(&id, &addr.to_string(), &[]))
        .await
        .unwrap();
    assert!(ipam.is_allocated("local", addr));
}

/// The pool a network was leased as (for the addresses the plugin reserves
/// for the network itself, host links): found by subnet, told apart by the
/// gateway when pools of one subnet differ in their range; another IPAM's
/// address space is none of this IPAM's.
#[tokio::test]
async fn network_pool_is_found_by_subnet_and_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let ipam = open(&dir.path().join("ipam.redb"));
    let subnet = "10.9.0.0/24".parse().unwrap();
    assert!(ipam.network_pool("local", subnet, None).unwrap().is_none());
    let low = ipam
        .request_pool(&pool_req("local", "10.9.0.0/24", "10.9.0.0/25", false))
        .await
        .unwrap();
    let (id, range) = ipam.network_pool("local", subnet, None).unwrap().unwrap();
    assert_eq!(
        (id, range),
        (low.id.clone(), Some("10.9.0.0/25".parse().unwrap()))
    );
    assert!(ipam.network_pool("global", subnet, None).unwrap().is_none());
    assert!(
        ipam.network_pool("LocalDefault", subnet, None)
            .unwrap()
            .is_none()
    );
    let high = ipam
        .request_pool(&pool_req("local", "10.9.0.0/24", "10.9.0.128/25", false))
        .await
        .unwrap();
    ipam.request_address(&addr_req(high.id.as_str(), "10.9.0.254", &[GW]))
        .await
        .unwrap();
    let gw = Some("10.9.0.254".parse().unwrap());
    let (id, _) = ipam.network_pool("local", subnet, gw).unwrap().unwrap();
    assert_eq!(id, high.id, "the pool holding the gateway");
    let err = ipam
        .network_pool("local", subnet, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("several pools of subnet 10.9.0.0/24"), "{err}");
}
