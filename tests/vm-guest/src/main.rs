//! Kernel tests of the ipvlan-rs driver on a kernel that has ipvlan, 802.1Q
//! and dummy links: run as `/test` inside the qemu VM (tests/rig/vm).
//!
//! Each case prints `CASE <name>: PASS` or `CASE <name>: FAIL <why>`; the
//! process exits non-zero if any case failed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod rig;
mod dhcp;
mod host_link;
mod parents;
mod reconcile;
mod traffic;

use host_link::{
    host_link_reaches_ipvlan_containers, host_link_refused_where_the_kernel_carries_nothing,
};
use ipvlan_driver::{Driver, DriverConfig, Netlink};
use parents::{
    dummy_parent, mtu_against_the_parent, shared_parent_conflicts, vlan_ids_name_one_link,
    vlan_parent,
};
use reconcile::{
    batched_deletes, prefix_collision, reconcile_after_crash, status_and_drift_of_created_parents,
};
use rig::{Captured, Rig};
use std::path::Path;
use traffic::{modes_and_flags, reused_links, traffic};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let dir = Path::new("/tmp/ipvlan-rs-state");
    let _ = std::fs::remove_dir_all(dir);
    let state = dir.join("driver.redb");
    let log = Captured::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let mut rig = Rig {
        nl: Netlink::connect().unwrap(),
        log,
        driver: Some(Driver::open(&state, DriverConfig::default()).unwrap()),
        state,
        next: 0,
    };
    let mut failed = 0;
    macro_rules! case {
        ($name:literal, $e:expr) => {{
            let start = std::time::Instant::now();
            match $e.await {
                Ok(()) => println!("CASE {}: PASS ({} ms)", $name, start.elapsed().as_millis()),
                Err(why) => {
                    failed += 1;
                    println!("CASE {}: FAIL {why}", $name);
                }
            }
        }};
    }
    case!(
        "ipvlan_every_mode_and_flag_joins_on_its_parent",
        modes_and_flags(&mut rig)
    );
    case!(
        "vlan_parent_created_shared_and_deleted_only_if_created",
        vlan_parent(&mut rig)
    );
    case!(
        "vlan_ids_name_one_link_recreated_once_after_a_reboot",
        vlan_ids_name_one_link(&mut rig)
    );
    case!(
        "mtu_above_the_parent_is_refused_and_a_dummy_takes_it",
        mtu_against_the_parent(&mut rig)
    );
    case!(
        "no_parent_makes_an_internal_network_on_a_dummy",
        dummy_parent(&mut rig)
    );
    case!(
        "shared_parent_refuses_other_modes_and_kinds",
        shared_parent_conflicts(&mut rig)
    );
    case!("l2_endpoints_ping_each_other", traffic(&mut rig, "l2", 1));
    case!("l3_endpoints_ping_each_other", traffic(&mut rig, "l3", 2));
    case!(
        "endpoints_sharing_an_id_prefix_get_distinct_links",
        prefix_collision(&mut rig)
    );
    case!(
        "deleted_endpoints_links_are_reaped_in_batches",
        batched_deletes(&mut rig)
    );
    case!(
        "released_links_are_reused_with_their_mode_and_carry_traffic",
        reused_links(&mut rig)
    );
    case!(
        "reconcile_removes_strays_and_recreates_created_parents",
        reconcile_after_crash(&mut rig)
    );
    case!(
        "host_link_reaches_ipvlan_containers_l2_l3_l3s_and_is_restored",
        host_link_reaches_ipvlan_containers(&mut rig)
    );
    case!(
        "host_link_refused_for_private_and_vepa_where_the_kernel_carries_nothing",
        host_link_refused_where_the_kernel_carries_nothing(&mut rig)
    );
    case!(
        "status_shows_created_parents_and_their_drift_until_reconcile",
        status_and_drift_of_created_parents(&mut rig)
    );
    case!(
        "dhcp_ipvlan_l2_endpoints_lease_from_dnsmasq_and_release",
        dhcp::dhcp_ipvlan_l2(&mut rig)
    );
    case!(
        "dhcp_ipvlan_l2_over_an_8021q_parent_leases_on_the_vlan_and_releases",
        dhcp::dhcp_ipvlan_l2_vlan(&mut rig)
    );
    case!(
        "dhcp_ipvlan_l2_host_link_leases_its_address_and_reaches_a_leased_container",
        dhcp::dhcp_ipvlan_l2_host_link(&mut rig)
    );
    case!(
        "dhcp_ipvlan_with_a_server_keying_leases_by_mac_refuses_a_shared_address",
        dhcp::dhcp_ipvlan_mac_keyed_server(&mut rig)
    );
    if failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
