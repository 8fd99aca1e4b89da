//! VM cases of traffic: every ipvlan mode and flag, pings between endpoints, and released
//! links reused.

use crate::rig::{Result, Rig, endpoint_request, into_container, ip, ping_from};
use ipvlan_driver::options::IpvlanMode;
use ipvlan_driver::{Driver, DriverConfig};
use serde_json::json;

pub(crate) async fn modes_and_flags(rig: &mut Rig) -> Result {
    for (mi, mode) in ["l2", "l3", "l3s"].iter().enumerate() {
        for (fi, flag) in ["bridge", "private", "vepa"].iter().enumerate() {
            let parent = format!("pm{mi}{fi}");
            rig.dummy(&parent).await?;
            let nid = rig.id("n");
            rig.network(
                &nid,
                json!({"parent": parent, "ipvlan_mode": mode, "ipvlan_flag": flag}),
                "10.50.0.0/24",
                Some("10.50.0.1/24"),
            )
            .await?;
            let eid = rig.id("e");
            let resp = rig.endpoint(&nid, &eid, "10.50.0.2/24").await?;
            let link = ipvlan_driver::slave_name(&eid);
            let got = rig
                .nl
                .get(&link)
                .await
                .unwrap()
                .ok_or(format!("{link} missing after Join"))?;
            check!(
                got.kind.as_deref() == Some("ipvlan"),
                "{link} kind {:?}",
                got.kind
            );
            let want = match *mode {
                "l2" => IpvlanMode::L2,
                "l3" => IpvlanMode::L3,
                _ => IpvlanMode::L3s,
            };
            check!(
                got.ipvlan_mode == Some(want),
                "{link} mode {:?}, want {mode}",
                got.ipvlan_mode
            );
            let parent_index = rig.nl.get(&parent).await.unwrap().unwrap().index;
            check!(got.parent == Some(parent_index), "{link} not on {parent}");
            if *mode == "l2" {
                check!(
                    resp.gateway.map(|g| g.to_string()) == Some("10.50.0.1".into()),
                    "l2 gateway {:?}",
                    resp.gateway
                );
                check!(
                    resp.static_routes.is_empty(),
                    "l2 routes {:?}",
                    resp.static_routes
                );
            } else {
                check!(resp.gateway.is_none(), "{mode} must not set a gateway");
                check!(
                    resp.static_routes.len() == 1
                        && resp.static_routes[0].destination.to_string() == "0.0.0.0/0",
                    "{mode} routes {:?}",
                    resp.static_routes
                );
            }
            check!(resp.disable_gateway_service, "gateway service not disabled");
            rig.delete_endpoint(&nid, &eid).await?;
            check!(!rig.exists(&link).await, "{link} left after DeleteEndpoint");
            rig.delete_network(&nid).await?;
            check!(
                rig.exists(&parent).await,
                "user parent {parent} was deleted"
            );
        }
    }
    Ok(())
}

/// Two endpoints of one network in two namespaces ping each other.
pub(crate) async fn traffic(rig: &mut Rig, mode: &str, n: u32) -> Result {
    let nid = rig
        .mode_network(&format!("tp{n}"), mode, "10.60.0.0/24")
        .await?;
    let mut links = Vec::new();
    for i in 0..2 {
        let eid = rig.id("e");
        rig.endpoint(&nid, &eid, &format!("10.60.0.{}/24", i + 2))
            .await?;
        links.push(rig.link_of(&nid, &eid).await?);
    }
    for (i, link) in links.iter().enumerate() {
        into_container(link, &format!("t{n}{i}"), &format!("10.60.0.{}/24", i + 2))?;
    }
    ping_from(&format!("t{n}0"), "10.60.0.3", &format!("ipvlan {mode}"))?;
    for i in 0..2 {
        ip(&format!("netns del t{n}{i}"))?;
    }
    Ok(())
}

/// Under churn, a released ipvlan link comes back through a container's
/// namespace and is given to the next endpoint: same link, same mode, and
/// traffic crosses it (l2 and l3). The reuse window is far longer than the
/// case (each `ip` call costs ~90 ms under TCG, more on a loaded host): the
/// machine's speed must not decide whether the link is kept.
pub(crate) async fn reused_links(rig: &mut Rig) -> Result {
    let state = rig.state.with_file_name("reuse.redb");
    let config = DriverConfig {
        link_reuse_window: std::time::Duration::from_secs(600),
        ..DriverConfig::default()
    };
    let driver = Driver::open(&state, config).map_err(|e| e.to_string())?;
    let saved = rig.driver.replace(driver);
    let result = reused_links_on(rig).await;
    if let Some(d) = rig.driver.take() {
        d.close();
    }
    rig.driver = saved;
    result
}

async fn reused_links_on(rig: &mut Rig) -> Result {
    for (n, (mode, expect)) in [("l2", IpvlanMode::L2), ("l3", IpvlanMode::L3)]
        .into_iter()
        .enumerate()
    {
        let parent = format!("ru{n}");
        let nid = rig.mode_network(&parent, mode, "10.62.0.0/24").await?;
        let (e0, e1, e2) = (rig.id("e"), rig.id("e"), rig.id("e"));
        rig.endpoint(&nid, &e0, "10.62.0.2/24").await?;
        rig.endpoint(&nid, &e1, "10.62.0.3/24").await?;
        let released = rig.link_of(&nid, &e0).await?;
        let fresh = rig.nl.get_with_shape(&released).await.unwrap();
        let index = fresh.as_ref().map(|(l, _)| l.index);
        // the engine's round trip: into a container as eth0 and back
        into_container(&released, "ruc", "10.62.0.2/24")?;
        ip("-n ruc link set eth0 down")?;
        ip(&format!("-n ruc link set eth0 name {released}"))?;
        ip(&format!("-n ruc link set {released} netns 1"))?;
        ip("netns del ruc")?;
        let back = rig.nl.get_with_shape(&released).await.unwrap();
        let changed = fresh
            .zip(back)
            .and_then(|((_, f), (_, b))| f.difference(&b));
        rig.driver()
            .delete_endpoint(&endpoint_request(&nid, &e0))
            .await
            .map_err(|e| e.to_string())?;
        check!(
            rig.exists(&released).await,
            "{mode}: {released} not kept (changed by the round trip: {changed:?})"
        );
        rig.endpoint(&nid, &e2, "10.62.0.4/24").await?;
        let reused = rig.link_of(&nid, &e2).await?;
        let link = rig.nl.get(&reused).await.unwrap();
        check!(
            reused == released && link.as_ref().map(|l| l.index) == index,
            "{mode}: {reused} is not the released {released}"
        );
        check!(
            link.and_then(|l| l.ipvlan_mode) == Some(expect),
            "{mode}: the reused link lost its mode"
        );
        for (i, (eid, addr)) in [(&e2, "10.62.0.4/24"), (&e1, "10.62.0.3/24")]
            .into_iter()
            .enumerate()
        {
            let link = rig.link_of(&nid, eid).await?;
            into_container(&link, &format!("ru{n}{i}"), addr)?;
        }
        ping_from(
            &format!("ru{n}0"),
            "10.62.0.3",
            &format!("a reused ipvlan {mode} link"),
        )?;
        for i in 0..2 {
            ip(&format!("netns del ru{n}{i}"))?;
        }
        rig.delete_network(&nid).await?;
        ip(&format!("link del {parent}"))?;
    }
    Ok(())
}
