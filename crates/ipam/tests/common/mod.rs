//! The request builders and calls the allocator's integration tests share.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use ipvlan_rs_ipam::{Ipam, IpamConfig, NoHostRoutes};
use protocol::ipam::{ReleaseAddressRequest, RequestAddressRequest, RequestPoolRequest};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

pub fn open(path: &Path) -> Ipam {
    Ipam::open(path, IpamConfig::default(), Arc::new(NoHostRoutes)).unwrap()
}

pub fn pool_req(space: &str, pool: &str, sub: &str, v6: bool) -> RequestPoolRequest {
    RequestPoolRequest {
        address_space: space.into(),
        pool: (!pool.is_empty()).then(|| pool.parse().unwrap()),
        sub_pool: (!sub.is_empty()).then(|| sub.parse().unwrap()),
        options: BTreeMap::new(),
        v6,
    }
}

pub fn addr_req(pool_id: &str, addr: &str, opts: &[(&str, &str)]) -> RequestAddressRequest {
    RequestAddressRequest {
        pool_id: pool_id.into(),
        address: (!addr.is_empty()).then(|| addr.parse().unwrap()),
        options: opts
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

pub const GW: (&str, &str) = ("RequestAddressType", "com.docker.network.gateway");

pub async fn next_addr(ipam: &Ipam, pool_id: &str) -> String {
    ipam.request_address(&addr_req(pool_id, "", &[]))
        .await
        .unwrap()
        .to_string()
}

pub async fn release(ipam: &Ipam, pool_id: &str, addr: &str) {
    ipam.release_address(&ReleaseAddressRequest {
        pool_id: pool_id.into(),
        address: Some(addr.parse().unwrap()),
    })
    .await
    .unwrap();
}
