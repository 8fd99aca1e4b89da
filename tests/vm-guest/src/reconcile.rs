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

/// The operator's view where every kind of parent exists: an ipvlan network on
/// a created 802.1Q parent and one on a created dummy parent show as such, with a
/// joined endpoint; both parents deleted behind the driver's back are drift
/// (created: a restart re-creates them), and so is the joined endpoint whose
/// link the kernel deleted with its parent; after reconcile only that endpoint
/// is (a re-created parent does not bring back the links it took along).
pub(crate) async fn status_and_drift_of_created_parents(rig: &mut Rig) -> Result {
    rig.dummy("st0").await?;
    let vlan = rig.id("n");
    rig.network(
        &vlan,
        json!({"parent": "st0.9"}),
        "10.62.0.0/24",
        Some("10.62.0.1/24"),
    )
    .await?;
    let internal = rig.id("d");
    rig.network(&internal, json!({}), "10.63.0.0/24", None)
        .await?;
    let dummy = ipvlan_driver::dummy_name(&internal);
    let eid = rig.id("e");
    rig.endpoint(&vlan, &eid, "10.62.0.2/24").await?;
    let status = rig.status().await?;
    let shown = |id: &str| status.networks.iter().find(|n| n.id == id).cloned();
    let (Some(v), Some(d)) = (shown(&vlan), shown(&internal)) else {
        return Err(format!("networks missing from {:?}", status.networks));
    };
    check!(
        v.kind == "ipvlan"
            && v.mode == "l2 bridge"
            && v.parent == "st0.9"
            && v.parent_up == Some(true)
            && v.created_parent
                == Some(ipvlan_driver::CreatedParent::Vlan {
                    base: "st0".into(),
                    vid: 9
                })
            && v.endpoints == 1,
        "802.1Q network shown as {v:?}"
    );
    check!(
        d.parent == dummy
            && d.created_parent == Some(ipvlan_driver::CreatedParent::Dummy)
            && d.internal
            && d.endpoints == 0
            // a dummy link has a carrier and no operational state to tell
            && d.parent_carrier == Some(true)
            && d.parent_oper_state.as_deref() == Some("unknown"),
        "dummy network shown as {d:?}"
    );
    let parent_mac = rig.nl.get("st0.9").await.unwrap().and_then(|l| l.mac);
    let e = status.endpoints.iter().find(|e| e.id == eid);
    check!(
        e.is_some_and(|e| e.joined == Some(true)
            && e.link_in_host
            && parent_mac.is_some()
            && e.mac.as_deref().map(|m| m.replace(':', ""))
                == parent_mac.map(|m| m.iter().map(|b| format!("{b:02x}")).collect())),
        "endpoint shown as {e:?} (parent MAC {parent_mac:?})"
    );
    check!(status.drift.is_empty(), "drift {:?}", status.drift);

    // both created parents go behind the driver's back, and the joined
    // endpoint's link with its parent
    let index_then = rig.nl.get("st0.9").await.unwrap().map(|l| l.index);
    let link = rig.link_of(&vlan, &eid).await?;
    ip("link del st0.9")?;
    ip(&format!("link del {dummy}"))?;
    let drift = rig.status().await?.drift;
    let mut missing: Vec<(String, bool)> = drift
        .missing_parents
        .iter()
        .map(|m| (m.parent.clone(), m.created))
        .collect();
    missing.sort();
    let mut want = vec![("st0.9".to_string(), true), (dummy.clone(), true)];
    want.sort();
    check!(
        missing == want,
        "missing parents {missing:?}, want {want:?}"
    );
    check!(!rig.exists(&link).await, "{link} outlived its parent");
    let lost = |index_now| {
        index_then.map(|index_then| ipvlan_driver::EndpointOnLostParent {
            endpoint: eid.clone(),
            network: vlan.clone(),
            parent: "st0.9".into(),
            index_then,
            index_now,
        })
    };
    // a joined endpoint's link is no missing link (it would be in its
    // container), but one lost with its parent
    check!(
        index_then.is_some()
            && drift.orphan_links.is_empty()
            && drift.missing_links.is_empty()
            && drift.endpoints_on_a_lost_parent == Vec::from_iter(lost(None)),
        "drift {drift:?}"
    );
    rig.reopen();
    rig.driver().reconcile().await.map_err(|e| e.to_string())?;
    // the parent is back (another index), the link it took along is not
    let index_now = rig.nl.get("st0.9").await.unwrap().map(|l| l.index);
    let drift = rig.status().await?.drift;
    check!(
        index_now.is_some()
            && index_now != index_then
            && drift
                == ipvlan_driver::Drift {
                    endpoints_on_a_lost_parent: Vec::from_iter(lost(index_now)),
                    ..ipvlan_driver::Drift::default()
                },
        "drift after reconcile {drift:?} (st0.9 index {index_then:?}, now {index_now:?})"
    );
    rig.delete_endpoint(&vlan, &eid).await?;
    rig.delete_network(&vlan).await?;
    rig.delete_network(&internal).await?;
    ip("link del st0")?;
    Ok(())
}
