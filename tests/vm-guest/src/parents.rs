//! VM cases of parents: 802.1Q parents and their IDs, MTUs, dummy parents, and a parent
//! shared by networks.

use crate::rig::{Result, Rig, endpoint_request, ip};
use serde_json::json;

pub(crate) async fn vlan_parent(rig: &mut Rig) -> Result {
    rig.dummy("vb0").await?;
    let nid = rig.id("n");
    rig.network(&nid, json!({"parent": "vb0.10"}), "10.51.0.0/24", None)
        .await?;
    let vlan = rig
        .nl
        .get("vb0.10")
        .await
        .unwrap()
        .ok_or("vb0.10 not created")?;
    check!(
        vlan.kind.as_deref() == Some("vlan"),
        "vb0.10 kind {:?}",
        vlan.kind
    );
    check!(vlan.up, "vb0.10 not up");
    let eid = rig.id("e");
    rig.endpoint(&nid, &eid, "10.51.0.2/24").await?;
    // a second network on the same created parent shares it
    let nid2 = rig.id("n");
    rig.network(&nid2, json!({"parent": "vb0.10"}), "10.52.0.0/24", None)
        .await?;
    rig.delete_endpoint(&nid, &eid).await?;
    rig.delete_network(&nid).await?;
    check!(
        rig.exists("vb0.10").await,
        "vb0.10 deleted while another network uses it"
    );
    rig.delete_network(&nid2).await?;
    check!(
        !rig.exists("vb0.10").await,
        "created vb0.10 left after its last network"
    );
    check!(rig.exists("vb0").await, "base vb0 deleted");
    // a VLAN link the user made is never deleted
    ip("link add link vb0 name vb0.20 type vlan id 20")?;
    let nid3 = rig.id("n");
    rig.network(&nid3, json!({"parent": "vb0.20"}), "10.53.0.0/24", None)
        .await?;
    rig.delete_network(&nid3).await?;
    check!(rig.exists("vb0.20").await, "user's vb0.20 was deleted");
    let nid4 = rig.id("n");
    let err = rig
        .network(&nid4, json!({"parent": "nobase.30"}), "10.54.0.0/24", None)
        .await
        .unwrap_err();
    check!(err.contains("nobase"), "missing base: {err}");
    Ok(())
}

/// `eth0.010`, `eth0.+10` and `eth0.10` are one VLAN of one device, so one
/// link `eth0.10` that the three networks share; a VLAN the user made under
/// another name is named in the error; after a reboot the shared parent is
/// re-created once, not once per network.
pub(crate) async fn vlan_ids_name_one_link(rig: &mut Rig) -> Result {
    rig.dummy("vn0").await?;
    let mut nets = Vec::new();
    for (i, parent) in ["vn0.010", "vn0.+10", "vn0.10"].into_iter().enumerate() {
        let nid = rig.id("n");
        rig.network(
            &nid,
            json!({ "parent": parent }),
            &format!("10.7{i}.0.0/24"),
            None,
        )
        .await
        .map_err(|e| format!("parent {parent}: {e}"))?;
        nets.push(nid);
    }
    check!(
        rig.exists("vn0.10").await && !rig.exists("vn0.010").await,
        "vn0.010 not created as vn0.10"
    );
    ip("link add link vn0 name uservlan type vlan id 30")?;
    let nid = rig.id("n");
    let err = rig
        .network(&nid, json!({"parent": "vn0.30"}), "10.73.0.0/24", None)
        .await
        .unwrap_err();
    check!(
        err.contains("VLAN 30") && err.contains("vn0") && err.contains("-o parent=uservlan"),
        "a user's VLAN under another name: {err}"
    );
    check!(!rig.exists("vn0.30").await, "vn0.30 left");
    ip("link del uservlan")?;
    // the host rebooted: the created parent is gone, the records are not
    ip("link del vn0.10")?;
    let mark = rig.log.len();
    rig.reopen();
    rig.driver().reconcile().await.map_err(|e| e.to_string())?;
    let log = rig.log.since(mark);
    check!(rig.exists("vn0.10").await, "vn0.10 not re-created");
    check!(
        !log.contains("could not re-create parent")
            && log.matches("created parent missing; re-creating").count() == 1,
        "vn0.10 not re-created exactly once:\n{log}"
    );
    for nid in &nets {
        rig.delete_network(nid).await?;
    }
    check!(
        !rig.exists("vn0.10").await,
        "vn0.10 left after its networks"
    );
    ip("link del vn0")
}

/// An MTU above the parent's is refused at CreateNetwork, naming both; for
/// an 802.1Q parent still to be created, the device beneath it is the
/// limit; a network without a parent gets a dummy of its MTU.
pub(crate) async fn mtu_against_the_parent(rig: &mut Rig) -> Result {
    rig.dummy("mt0").await?;
    let nid = rig.id("n");
    let jumbo = |parent: Option<&str>| {
        let mut o = json!({"com.docker.network.driver.mtu": "9000"});
        if let Some(p) = parent {
            o["parent"] = json!(p);
        }
        o
    };
    let err = rig
        .network(&nid, jumbo(Some("mt0")), "10.74.0.0/24", None)
        .await
        .unwrap_err();
    check!(err.contains("mtu 9000 exceeds parent mt0's 1500"), "{err}");
    let err = rig
        .network(&nid, jumbo(Some("mt0.5")), "10.74.0.0/24", None)
        .await
        .unwrap_err();
    check!(
        err.contains("mtu 9000 exceeds parent mt0.5's device mt0's 1500"),
        "{err}"
    );
    check!(
        !rig.exists("mt0.5").await,
        "mt0.5 created for a refused network"
    );
    rig.network(&nid, jumbo(None), "10.74.0.0/24", Some("10.74.0.1/24"))
        .await?;
    let eid = rig.id("e");
    rig.endpoint(&nid, &eid, "10.74.0.2/24").await?;
    let link = rig.link_of(&nid, &eid).await?;
    let mtu = rig.nl.get(&link).await.unwrap().and_then(|l| l.mtu);
    check!(mtu == Some(9000), "{link} has MTU {mtu:?}");
    rig.delete_endpoint(&nid, &eid).await?;
    rig.delete_network(&nid).await?;
    ip("link del mt0")
}

pub(crate) async fn dummy_parent(rig: &mut Rig) -> Result {
    let nid = rig.id("d");
    rig.network(&nid, json!({}), "10.55.0.0/24", Some("10.55.0.1/24"))
        .await?;
    let dummy = ipvlan_driver::dummy_name(&nid);
    check!(
        rig.nl
            .get(&dummy)
            .await
            .unwrap()
            .and_then(|l| l.kind)
            .as_deref()
            == Some("dummy"),
        "{dummy} not a dummy link"
    );
    let eid = rig.id("e");
    let resp = rig.endpoint(&nid, &eid, "10.55.0.2/24").await?;
    check!(
        resp.gateway.is_none() && resp.static_routes.is_empty(),
        "internal network got a route: {resp:?}"
    );
    rig.delete_endpoint(&nid, &eid).await?;
    rig.delete_network(&nid).await?;
    check!(
        !rig.exists(&dummy).await,
        "{dummy} left after DeleteNetwork"
    );
    Ok(())
}

pub(crate) async fn shared_parent_conflicts(rig: &mut Rig) -> Result {
    rig.dummy("sp0").await?;
    let (a, b, c, d) = (rig.id("n"), rig.id("n"), rig.id("n"), rig.id("n"));
    rig.network(
        &a,
        json!({"parent": "sp0", "ipvlan_mode": "l2"}),
        "10.56.0.0/24",
        None,
    )
    .await?;
    let err = rig
        .network(
            &b,
            json!({"parent": "sp0", "ipvlan_mode": "l3"}),
            "10.57.0.0/24",
            None,
        )
        .await
        .unwrap_err();
    check!(
        err.contains("sp0") && err.contains("l3"),
        "mode conflict: {err}"
    );
    rig.network(
        &c,
        json!({"parent": "sp0", "ipvlan_mode": "l2"}),
        "10.58.0.0/24",
        None,
    )
    .await?;
    let err = rig
        .network(
            &d,
            json!({"parent": "sp0", "kind": "macvlan"}),
            "10.59.0.0/24",
            None,
        )
        .await
        .unwrap_err();
    check!(err.contains("macvlan"), "kind conflict: {err}");
    // an ipvlan link has its parent's MAC: a user MAC is refused, and no
    // endpoint is recorded (the host suite's kernel cannot make ipvlan
    // networks, so this is checked here)
    let with_mac = rig.id("e");
    let req: protocol::network::CreateEndpointRequest = serde_json::from_value(json!({
        "NetworkID": a, "EndpointID": with_mac,
        "Interface": {"Address": "10.56.0.9/24", "AddressIPv6": "", "MacAddress": "02:00:00:00:00:09"}
    }))
    .unwrap();
    let err = rig
        .driver()
        .create_endpoint(&req)
        .await
        .map_err(|e| e.to_string())
        .unwrap_err();
    check!(
        err.contains("custom mac address") && err.contains("02:00:00:00:00:09"),
        "user MAC on ipvlan: {err}"
    );
    check!(
        rig.driver()
            .endpoint_info(&endpoint_request(&a, &with_mac))
            .await
            .is_err(),
        "an endpoint refused for its MAC was recorded"
    );
    // the kernel agrees: macvlan beside ipvlan slaves is refused
    let eid = rig.id("e");
    rig.endpoint(&a, &eid, "10.56.0.2/24").await?;
    check!(
        ip("link add mvx link sp0 type macvlan mode bridge").is_err(),
        "kernel took macvlan beside ipvlan"
    );
    rig.delete_endpoint(&a, &eid).await?;
    for n in [&a, &c] {
        rig.delete_network(n).await?;
    }
    Ok(())
}
