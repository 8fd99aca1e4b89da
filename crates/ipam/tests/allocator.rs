//! Behaviour of the allocator as the engine drives it, on a real state file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ipnet::IpNet;
use ipvlan_rs_ipam::{DefaultPool, HostRoutes, Ipam, IpamConfig, IpamError, NoHostRoutes};
use protocol::ipam::{
    ReleaseAddressRequest, ReleasePoolRequest, RequestAddressRequest, RequestPoolRequest,
};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

fn open(path: &Path) -> Ipam {
    Ipam::open(path, IpamConfig::default(), Arc::new(NoHostRoutes)).unwrap()
}

fn pool_req(space: &str, pool: &str, sub: &str, v6: bool) -> RequestPoolRequest {
    RequestPoolRequest {
        address_space: space.into(),
        pool: (!pool.is_empty()).then(|| pool.parse().unwrap()),
        sub_pool: (!sub.is_empty()).then(|| sub.parse().unwrap()),
        options: BTreeMap::new(),
        v6,
    }
}

fn addr_req(pool_id: &str, addr: &str, opts: &[(&str, &str)]) -> RequestAddressRequest {
    RequestAddressRequest {
        pool_id: pool_id.into(),
        address: (!addr.is_empty()).then(|| addr.parse().unwrap()),
        options: opts
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

const GW: (&str, &str) = ("RequestAddressType", "com.docker.network.gateway");

async fn next_addr(ipam: &Ipam, pool_id: &str) -> String {
    ipam.request_address(&addr_req(pool_id, "", &[]))
        .await
        .unwrap()
        .to_string()
}

async fn release(ipam: &Ipam, pool_id: &str, addr: &str) {
    ipam.release_address(&ReleaseAddressRequest {
        pool_id: pool_id.into(),
        address: Some(addr.parse().unwrap()),
    })
    .await
    .unwrap();
}

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
async fn global_space_claims_are_idempotent_local_ones_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let ipam = open(&dir.path().join("ipam.redb"));
    let g = ipam
        .request_pool(&pool_req("global", "10.88.0.0/24", "", false))
        .await
        .unwrap()
        .id
        .to_string();
    let serial = ("com.docker.network.ipam.serial", "true");
    ipam.request_address(&addr_req(&g, "10.88.0.7", &[serial]))
        .await
        .unwrap();
    ipam.request_address(&addr_req(&g, "10.88.0.7", &[serial]))
        .await
        .unwrap();
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
    // an overlapping global pool never re-claims what another pool holds
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
async fn state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ipam.redb");
    let (id, taken) = {
        let ipam = open(&path);
        let id = ipam
            .request_pool(&pool_req("local", "10.92.0.0/24", "", false))
            .await
            .unwrap()
            .id
            .to_string();
        let taken = [next_addr(&ipam, &id).await, next_addr(&ipam, &id).await];
        release(&ipam, &id, "10.92.0.1").await;
        ipam.close();
        (id, taken)
    };
    let ipam = open(&path);
    assert!(ipam.is_allocated("local", "10.92.0.2".parse().unwrap()));
    assert!(!ipam.is_allocated("local", "10.92.0.1".parse().unwrap()));
    // the serial cursor survives too: no reuse of .1 right after a restart
    assert_eq!(next_addr(&ipam, &id).await, "10.92.0.3/24");
    assert_eq!(taken[1], "10.92.0.2/24");
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

mod model {
    //! Random request/release sequences against a set model.
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    #[derive(Debug, Clone)]
    enum Step {
        Any(usize),
        Specific(usize, u8),
        Release(usize),
        Reopen,
        /// Release pools p and q, then lease them again in the other order
        /// (their addresses go with them; owner indices get swapped).
        Repool(usize, usize),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (0..3usize).prop_map(Step::Any),
            2 => (0..3usize, any::<u8>()).prop_map(|(p, o)| Step::Specific(p, o)),
            3 => any::<usize>().prop_map(Step::Release),
            1 => Just(Step::Reopen),
            1 => (0..3usize, 0..3usize).prop_map(|(p, q)| Step::Repool(p, q)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
        #[test]
        fn never_duplicates_never_strays_always_frees(steps in proptest::collection::vec(step(), 1..120)) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(async {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("ipam.redb");
                let mut ipam = open(&path);
                // three overlapping networks of one space, one with a sub-pool
                let specs = [("10.7.0.0/24", ""), ("10.7.0.0/24", "10.7.0.64/26"), ("10.7.0.0/23", "")];
                let mut ids = Vec::new();
                for (p, s) in specs {
                    ids.push(ipam.request_pool(&pool_req("local", p, s, false)).await.unwrap().id.to_string());
                }
                let mut held: Vec<(usize, IpAddr)> = Vec::new();
                for step in steps {
                    match step {
                        Step::Any(p) => match ipam.request_address(&addr_req(&ids[p], "", &[])).await {
                            Ok(net) => {
                                let (pool, sub) = specs[p];
                                let range: IpNet = if sub.is_empty() { pool.parse().unwrap() } else { sub.parse().unwrap() };
                                prop_assert!(range.contains(&net.addr()), "{net} outside {range}");
                                prop_assert!(held.iter().all(|(_, a)| *a != net.addr()), "duplicate {net}");
                                held.push((p, net.addr()));
                            }
                            Err(e) => prop_assert!(matches!(e, IpamError::Exhausted { .. }), "{e}"),
                        },
                        Step::Specific(p, o) => {
                            let addr: IpAddr = format!("10.7.0.{o}").parse().unwrap();
                            let taken = held.iter().any(|(_, a)| *a == addr);
                            match ipam.request_address(&addr_req(&ids[p], &addr.to_string(), &[])).await {
                                Ok(_) => { prop_assert!(!taken, "{addr} handed out twice"); held.push((p, addr)); }
                                Err(_) => prop_assert!(taken || o == 0 || (o == 255 && p != 2)),
                            }
                        }
                        Step::Release(i) if !held.is_empty() => {
                            let (p, addr) = held.swap_remove(i % held.len());
                            release(&ipam, &ids[p], &addr.to_string()).await;
                            prop_assert!(!ipam.is_allocated("local", addr));
                        }
                        Step::Release(_) => {}
                        Step::Repool(p, q) => {
                            let both = if p == q { vec![p] } else { vec![p, q] };
                            for &i in &both {
                                ipam.release_pool(&ReleasePoolRequest { pool_id: ids[i].clone() }).await.unwrap();
                            }
                            for (i, addr) in held.iter().filter(|(i, _)| both.contains(i)) {
                                // an overlapping pool may not hold it either
                                prop_assert!(!ipam.is_allocated("local", *addr), "{addr} of pool {i} kept");
                            }
                            held.retain(|(i, _)| !both.contains(i));
                            for &i in both.iter().rev() {
                                let (pool, sub) = specs[i];
                                let id = ipam.request_pool(&pool_req("local", pool, sub, false)).await.unwrap().id.to_string();
                                prop_assert_eq!(&id, &ids[i]);
                            }
                        }
                        Step::Reopen => {
                            ipam.close();
                            drop(ipam);
                            ipam = open(&path);
                        }
                    }
                    prop_assert_eq!(ipam.address_count(), held.len());
                }
                let unique: HashSet<_> = held.iter().map(|(_, a)| a).collect();
                prop_assert_eq!(unique.len(), held.len());
                Ok(())
            })?;
        }
    }
}
