//! Addresses as the engine asks for them: dynamic, gateway, specific, released, and claims in
//! the global space.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{GW, addr_req, next_addr, open, pool_req, release};
use ipvlan_rs_ipam::IpamError;
use protocol::ipam::{ReleaseAddressRequest, ReleasePoolRequest};

#[tokio::test]
async fn network_create_run_and_remove_like_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let ipam = open(&dir.path().join("ipam.redb"));
    let lease = ipam
        .request_pool(&pool_req("local", "10.99.0.0/24", "", false))
        .await
        .unwrap();
    assert_eq!(lease.pool.to_string(), "10.99.0.0/24");
    let id = lease.id.to_string();
    // gateway given by the user
    let gw = ipam
        .request_address(&addr_req(&id, "10.99.0.1", &[GW]))
        .await
        .unwrap();
    assert_eq!(gw.to_string(), "10.99.0.1/24");
    // containers get the next addresses, with the pool's prefix length
    assert_eq!(next_addr(&ipam, &id).await, "10.99.0.2/24");
    assert_eq!(next_addr(&ipam, &id).await, "10.99.0.3/24");
    release(&ipam, &id, "10.99.0.2").await;
    // serial: a freed address is not reused at once
    assert_eq!(next_addr(&ipam, &id).await, "10.99.0.4/24");
    ipam.release_pool(&ReleasePoolRequest {
        pool_id: id.clone(),
    })
    .await
    .unwrap();
    assert_eq!(
        ipam.address_count(),
        0,
        "addresses left in a released pool are freed"
    );
}

#[tokio::test]
async fn gateway_without_address_is_the_first_usable() {
    let dir = tempfile::tempdir().unwrap();
    let ipam = open(&dir.path().join("ipam.redb"));
    let id = ipam
        .request_pool(&pool_req("local", "10.98.0.0/24", "", false))
        .await
        .unwrap()
        .id
        .to_string();
    next_addr(&ipam, &id).await; // 10.98.0.1
    release(&ipam, &id, "10.98.0.1").await;
    let gw = ipam
        .request_address(&addr_req(&id, "", &[GW]))
        .await
        .unwrap();
    assert_eq!(
        gw.to_string(),
        "10.98.0.1/24",
        "gateways take the lowest free address, not the serial one"
    );
}

#[tokio::test]
async fn reserved_and_taken_addresses_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let ipam = open(&dir.path().join("ipam.redb"));
    let id = ipam
        .request_pool(&pool_req("local", "10.94.0.0/24", "", false))
        .await
        .unwrap()
        .id
        .to_string();
    for (addr, what) in [
        ("10.94.0.0", "network address"),
        ("10.94.0.255", "broadcast address"),
    ] {
        let err = ipam
            .request_address(&addr_req(&id, addr, &[]))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(addr) && err.contains(what), "{err}");
    }
    ipam.request_address(&addr_req(&id, "10.94.0.9", &[]))
        .await
        .unwrap();
    let err = ipam
        .request_address(&addr_req(&id, "10.94.0.9", &[]))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("10.94.0.9") && err.contains("already in use"),
        "{err}"
    );
}

/// In the global space the Swarm leader's allocator is the authority, and a
/// manager that becomes leader re-claims every address it restores, through
/// the pool it leases again, before any new allocation. A claim of an
/// address the pool holds is such a re-claim only then; otherwise it is a
/// second `docker run --ip` of an address in use somewhere in the cluster,
/// and is refused. The local space refuses it always; an overlapping pool
/// never re-claims what another pool holds.
#[tokio::test]
async fn a_held_global_address_is_re_claimed_only_while_a_leader_restores() {
    let dir = tempfile::tempdir().unwrap();
    let ipam = open(&dir.path().join("ipam.redb"));
    let lease = || async {
        ipam.request_pool(&pool_req("global", "10.88.0.0/24", "", false))
            .await
            .unwrap()
            .id
            .to_string()
    };
    let serial = ("com.docker.network.ipam.serial", "true");
    let claim = |g: String, addr: &'static str| {
        let ipam = &ipam;
        async move { ipam.request_address(&addr_req(&g, addr, &[serial])).await }
    };
    let g = lease().await;
    claim(g.clone(), "10.88.0.7").await.unwrap();
    // `docker run --ip 10.88.0.7` on another node
    let err = claim(g.clone(), "10.88.0.7").await.unwrap_err();
    assert!(matches!(err, IpamError::InUse { .. }), "{err:?}");
    assert!(err.to_string().contains("10.88.0.7"), "{err}");
    // a new leader: the pool leased again, then its addresses re-claimed
    let g = lease().await;
    claim(g.clone(), "10.88.0.7").await.unwrap();
    claim(g.clone(), "10.88.0.9").await.unwrap();
    assert!(ipam.is_allocated("global", "10.88.0.7".parse().unwrap()));
    // its first new allocation ends the restore
    let next = ipam
        .request_address(&addr_req(&g, "", &[serial]))
        .await
        .unwrap()
        .to_string();
    assert!(
        !["10.88.0.7/24", "10.88.0.9/24"].contains(&next.as_str()),
        "{next}"
    );
    for held in ["10.88.0.7", "10.88.0.9"] {
        let err = claim(g.clone(), held).await.unwrap_err();
        assert!(matches!(err, IpamError::InUse { .. }), "{held}: {err:?}");
    }
    // the local space never takes a held address again
    let l = ipam
        .request_pool(&pool_req("local", "10.88.0.0/24", "", false))
        .await
        .unwrap()
        .id
        .to_string();
    ipam.request_address(&addr_req(&l, "10.88.0.7", &[]))
        .await
        .unwrap();
    assert!(
        ipam.request_address(&addr_req(&l, "10.88.0.7", &[]))
            .await
            .is_err()
    );
    // an overlapping global pool never re-claims what another pool holds,
    // even while it is leased again
    lease().await;
    let wide = ipam
        .request_pool(&pool_req("global", "10.88.0.0/16", "", false))
        .await
        .unwrap()
        .id
        .to_string();
    let err = ipam
        .request_address(&addr_req(&wide, "10.88.0.7", &[serial]))
        .await
        .unwrap_err();
    assert!(matches!(err, IpamError::HeldByPool { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("10.88.0.7") && text.contains("global/10.88.0.0/24"),
        "{text}"
    );
}

#[tokio::test]
async fn unknown_things_release_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let ipam = open(&dir.path().join("ipam.redb"));
    ipam.release_pool(&ReleasePoolRequest { pool_id: "".into() })
        .await
        .unwrap();
    ipam.release_pool(&ReleasePoolRequest {
        pool_id: "local/1.2.3.0/24".into(),
    })
    .await
    .unwrap();
    ipam.release_address(&ReleaseAddressRequest {
        pool_id: "".into(),
        address: Some("10.0.0.1".parse().unwrap()),
    })
    .await
    .unwrap();
    let id = ipam
        .request_pool(&pool_req("local", "10.93.0.0/24", "", false))
        .await
        .unwrap()
        .id
        .to_string();
    release(&ipam, &id, "10.93.0.77").await;
    let err = ipam
        .request_address(&addr_req("local/1.2.3.0/24", "", &[]))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unknown pool") && err.contains("local/1.2.3.0/24"),
        "{err}"
    );
}
