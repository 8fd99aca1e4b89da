//! What the allocator's state file keeps across a close and a reopen.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{next_addr, open, pool_req, release};

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
