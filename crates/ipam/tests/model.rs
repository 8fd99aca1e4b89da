//! Random request/release sequences against a set model.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{addr_req, open, pool_req, release};
use ipnet::IpNet;
use ipvlan_rs_ipam::IpamError;
use proptest::prelude::*;
use protocol::ipam::ReleasePoolRequest;
use std::collections::HashSet;
use std::net::IpAddr;

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
