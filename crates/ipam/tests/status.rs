//! The operator's snapshot (`Ipam::status`): per pool what it allocated and
//! what its dynamic range has free, per space what it holds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{GW, addr_req, next_addr, open, pool_req, release};
use ipvlan_rs_ipam::{PoolStatus, SpaceStatus};

#[tokio::test]
async fn status_counts_allocated_and_free_addresses_per_pool_and_space() {
    let dir = tempfile::tempdir().unwrap();
    let ipam = open(&dir.path().join("ipam.redb"));
    let ranged = ipam
        .request_pool(&pool_req("local", "10.96.0.0/24", "10.96.0.128/25", false))
        .await
        .unwrap()
        .id
        .to_string();
    // the gateway lies outside the range: allocated by the pool, not
    // taken from the range's free addresses
    ipam.request_address(&addr_req(&ranged, "10.96.0.1", &[GW]))
        .await
        .unwrap();
    next_addr(&ipam, &ranged).await;
    next_addr(&ipam, &ranged).await;
    release(&ipam, &ranged, "10.96.0.128").await;
    let v6 = ipam
        .request_pool(&pool_req("global", "fd00:1::/64", "", true))
        .await
        .unwrap()
        .id
        .to_string();
    next_addr(&ipam, &v6).await;

    let status = ipam.status();
    assert_eq!(
        status.pools,
        vec![
            PoolStatus {
                id: v6.clone(),
                space: "global".into(),
                subnet: "fd00:1::/64".parse().unwrap(),
                range: None,
                leases: 1,
                allocated: 1,
                // 2^64 less the subnet-router anycast address and one taken
                free: (1u128 << 64) - 2,
            },
            PoolStatus {
                id: ranged.clone(),
                space: "local".into(),
                subnet: "10.96.0.0/24".parse().unwrap(),
                range: Some("10.96.0.128/25".parse().unwrap()),
                leases: 1,
                allocated: 2,
                // .128-.254 (the broadcast is not usable), .129 taken
                free: 126,
            },
        ]
    );
    assert_eq!(
        status.spaces,
        vec![
            SpaceStatus {
                name: "global".into(),
                pools: 1,
                allocated: 1
            },
            SpaceStatus {
                name: "local".into(),
                pools: 1,
                allocated: 2
            },
        ]
    );
}
