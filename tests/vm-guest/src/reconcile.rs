//! VM cases of recovery and cleanup: reconcile after a crash, endpoint IDs sharing a prefix,
//! and deletes reaped in batches.

use crate::rig::{Result, Rig, endpoint_request, ip};
use ipvlan_driver::options::IpvlanMode;
use protocol::network::JoinRequest;
use serde_json::json;

pub(crate) async fn reconcile_after_crash(rig: &mut Rig) -> Result {
    rig.dummy("rc0").await?;
    let nid = rig.id("n");
    rig.network(&nid, json!({"parent": "rc0.7"}), "10.61.0.0/24", None)
        .await?;
    let eid = rig.id("e");
    rig.endpoint(&nid, &eid, "10.61.0.2/24").await?;
    // a link left by a crash between link creation and reply: no endpoint owns it
    let rc = rig.nl.get("rc0.7").await.unwrap().unwrap();
    let stray = "ivr0000deadbeef";
    let kind = ipvlan_driver::LinkKind::IpVlan {
        mode: IpvlanMode::L2,
        flag: ipvlan_driver::options::IpvlanFlag::Bridge,
    };
    let group = rig.driver().link_group();
    rig.nl
        .create_slave(stray, rc.index, &kind, None, group)
        .await
        .map_err(|e| e.to_string())?;
    // the same, but made by another instance on this host: not ours
    // (on a parent of its own: deleting rc0.7 below deletes its slaves)
    let foreign = "ivr0000cafef00d";
    rig.dummy("fg0").await?;
    // and a dummy parent of a network of that other instance
    let foreign_dummy = "ivd0000cafef00d";
    rig.nl
        .create_dummy(foreign_dummy, "ipvlan-rs:other", group ^ 1, None)
        .await
        .map_err(|e| e.to_string())?;
    let fg = rig.nl.get("fg0").await.unwrap().unwrap();
    rig.nl
        .create_slave(foreign, fg.index, &kind, None, group ^ 1)
        .await
        .map_err(|e| e.to_string())?;
    // the created parent vanished while the plugin was down
    let live = rig.link_of(&nid, &eid).await?;
    ip("link del rc0.7")?;
    rig.reopen();
    rig.driver().reconcile().await.map_err(|e| e.to_string())?;
    check!(!rig.exists(stray).await, "stray {stray} survived reconcile");
    check!(
        rig.exists(foreign).await,
        "{foreign} of another instance (another link group) was deleted"
    );
    check!(
        rig.exists(foreign_dummy).await,
        "{foreign_dummy} of another instance was deleted"
    );
    ip("link del fg0")?;
    ip(&format!("link del {foreign_dummy}"))?;
    check!(
        rig.exists("rc0.7").await,
        "created parent rc0.7 not re-created"
    );
    // the endpoint is still known: Join works again after the restart
    let join: JoinRequest =
        serde_json::from_value(json!({"NetworkID": nid, "EndpointID": eid})).unwrap();
    rig.driver().join(&join).await.map_err(|e| e.to_string())?;
    check!(rig.exists(&live).await, "{live} missing after re-Join");
    rig.delete_endpoint(&nid, &eid).await?;
    rig.delete_network(&nid).await?;
    check!(!rig.exists("rc0.7").await, "rc0.7 left");
    Ok(())
}

pub(crate) async fn prefix_collision(rig: &mut Rig) -> Result {
    rig.dummy("pc0").await?;
    let nid = rig.id("n");
    rig.network(&nid, json!({"parent": "pc0"}), "10.62.0.0/24", None)
        .await?;
    let (a, b) = ("abcdef012345aaaa", "abcdef012345bbbb");
    rig.endpoint(&nid, a, "10.62.0.2/24").await?;
    rig.endpoint(&nid, b, "10.62.0.3/24").await?;
    let (la, lb) = (rig.link_of(&nid, a).await?, rig.link_of(&nid, b).await?);
    check!(la != lb, "same link {la} for two endpoints");
    for l in [&la, &lb] {
        check!(rig.exists(l).await, "{l} missing");
    }
    for e in [a, b] {
        rig.driver()
            .delete_endpoint(&endpoint_request(&nid, e))
            .await
            .map_err(|e| e.to_string())?;
    }
    // DeleteNetwork waits for the links its endpoints handed to the reaper
    rig.delete_network(&nid).await?;
    for l in [&la, &lb] {
        check!(!rig.exists(l).await, "{l} left after DeleteNetwork");
    }
    Ok(())
}

/// Many endpoints deleted back to back: each DeleteEndpoint answers without
/// waiting for the kernel, the reaper deletes their ipvlan links in
/// batches (link group delete), and links that are not ours stay.
pub(crate) async fn batched_deletes(rig: &mut Rig) -> Result {
    rig.dummy("pd0").await?;
    rig.dummy("bystander0").await?;
    let nid = rig.id("n");
    rig.network(&nid, json!({"parent": "pd0"}), "10.63.0.0/24", None)
        .await?;
    let mut endpoints = Vec::new();
    for i in 0..24 {
        let eid = rig.id("e");
        rig.endpoint(&nid, &eid, &format!("10.63.0.{}/24", i + 2))
            .await?;
        let link = rig.link_of(&nid, &eid).await?;
        check!(rig.exists(&link).await, "{link} missing after Join");
        endpoints.push((eid, link));
    }
    let start = std::time::Instant::now();
    let mut slowest = std::time::Duration::ZERO;
    for (eid, _) in &endpoints {
        let t = std::time::Instant::now();
        rig.driver()
            .delete_endpoint(&endpoint_request(&nid, eid))
            .await
            .map_err(|e| e.to_string())?;
        slowest = slowest.max(t.elapsed());
    }
    let answered = start.elapsed();
    rig.driver().flush_deletions().await;
    println!(
        "  24 DeleteEndpoint answered in {} us (slowest {} us); links gone {} us after the first",
        answered.as_micros(),
        slowest.as_micros(),
        start.elapsed().as_micros()
    );
    for (_, link) in &endpoints {
        check!(
            !rig.exists(link).await,
            "{link} left after the reaper's flush"
        );
    }
    check!(
        rig.exists("bystander0").await,
        "a link that is not ours was deleted"
    );
    check!(rig.exists("pd0").await, "the user's parent was deleted");
    rig.delete_network(&nid).await?;
    ip("link del pd0")?;
    ip("link del bystander0")?;
    Ok(())
}
