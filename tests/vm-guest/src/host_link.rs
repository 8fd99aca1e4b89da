//! VM cases of host links (`-o host_link`) on real ipvlan: the host reaches
//! containers through its own ipvlan link, and they reach the host, in l2
//! (flag bridge), l3 and l3s; a restart puts back the link and its routes;
//! the combinations the driver refuses are refused, and a hand-made host link
//! shows why: the kernel carries nothing between it and the containers.

use crate::rig::{Result, Rig, into_container, ip, ping_from};
use ipvlan_driver::host_link_name;
use serde_json::json;
use std::net::Ipv4Addr;
use std::process::Command;

/// Whether one ping from the VM's own namespace to `to` answers within
/// `wait` seconds (a guard for a lost reply, not a measurement).
pub(crate) fn host_pings(to: &str, wait: &str) -> bool {
    Command::new("ping")
        .args(["-c", "1", "-W", wait, to])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The destinations of the routes through `link` (sorted).
async fn routes(rig: &Rig, link: &str) -> Result<Vec<String>> {
    let Some(l) = rig.nl.get(link).await.map_err(|e| e.to_string())? else {
        return Err(format!("{link} missing"));
    };
    let mut r: Vec<String> = rig
        .nl
        .host_routes(l.index)
        .await
        .map_err(|e| e.to_string())?
        .iter()
        .map(|r| r.destination.to_string())
        .collect();
    r.sort();
    Ok(r)
}

pub(crate) async fn host_link_reaches_ipvlan_containers(rig: &mut Rig) -> Result {
    for (n, mode) in ["l2", "l3", "l3s"].iter().enumerate() {
        let parent = format!("hl{n}");
        rig.dummy(&parent).await?;
        let nid = rig.id("n");
        rig.network(
            &nid,
            json!({"parent": parent, "ipvlan_mode": mode, "host_link": "10.63.0.250"}),
            "10.63.0.0/24",
            Some("10.63.0.1/24"),
        )
        .await?;
        let hl = host_link_name(&nid);
        let got = rig
            .nl
            .get(&hl)
            .await
            .unwrap()
            .ok_or(format!("{mode}: no {hl}"))?;
        check!(
            got.kind.as_deref() == Some("ipvlan")
                && got.ipvlan_mode.map(|m| m.as_str()) == Some(*mode),
            "{mode}: {hl} is {:?} {:?}",
            got.kind,
            got.ipvlan_mode
        );
        check!(
            rig.nl
                .has_address(got.index, Ipv4Addr::new(10, 63, 0, 250))
                .await
                .unwrap_or(false),
            "{mode}: {hl} lacks its address"
        );
        for i in 0..2u8 {
            let eid = rig.id("e");
            let addr = format!("10.63.0.{}/24", i + 2);
            rig.endpoint(&nid, &eid, &addr).await?;
            let link = rig.link_of(&nid, &eid).await?;
            into_container(&link, &format!("hc{n}{i}"), &addr)?;
        }
        check!(
            routes(rig, &hl).await? == ["10.63.0.2/32", "10.63.0.3/32"],
            "{mode}: routes through {hl}: {:?}",
            routes(rig, &hl).await
        );
        for to in ["10.63.0.2", "10.63.0.3"] {
            check!(
                host_pings(to, "10"),
                "ipvlan {mode}: the host cannot ping {to}"
            );
        }
        ping_from(
            &format!("hc{n}0"),
            "10.63.0.250",
            &format!("ipvlan {mode} to the host link"),
        )?;
        // a restart after the link went (a reboot loses every link)
        ip(&format!("link del {hl}"))?;
        rig.reopen();
        rig.driver().reconcile().await.map_err(|e| e.to_string())?;
        check!(
            routes(rig, &hl).await? == ["10.63.0.2/32", "10.63.0.3/32"],
            "{mode}: routes after reconcile: {:?}",
            routes(rig, &hl).await
        );
        check!(
            host_pings("10.63.0.3", "10"),
            "ipvlan {mode}: the host cannot ping a container after reconcile"
        );
        for i in 0..2 {
            ip(&format!("netns del hc{n}{i}"))?;
        }
        rig.delete_network(&nid).await?;
        check!(
            !rig.exists(&hl).await,
            "{mode}: {hl} left after DeleteNetwork"
        );
        ip(&format!("link del {parent}"))?;
    }
    Ok(())
}

pub(crate) async fn host_link_refused_where_the_kernel_carries_nothing(rig: &mut Rig) -> Result {
    for (n, (mode, flag)) in [
        ("l2", "private"),
        ("l2", "vepa"),
        ("l3", "private"),
        ("l3", "vepa"),
    ]
    .iter()
    .enumerate()
    {
        let parent = format!("hr{n}");
        rig.dummy(&parent).await?;
        let nid = rig.id("n");
        let opts = json!({"parent": parent, "ipvlan_mode": mode, "ipvlan_flag": flag});
        let mut refused = opts.clone();
        refused["host_link"] = json!("on");
        let err = rig
            .network(&nid, refused, "10.64.0.0/24", None)
            .await
            .err()
            .ok_or(format!("{mode} {flag}: host_link accepted"))?;
        check!(
            err.contains("host_link") && err.contains("ipvlan_flag=bridge"),
            "{mode} {flag}: {err}"
        );
        check!(
            !rig.exists(&host_link_name(&nid)).await,
            "{mode} {flag}: a host link was made"
        );
        // what the option would make, by hand: the kernel keeps it apart
        rig.network(&nid, opts, "10.64.0.0/24", None).await?;
        let eid = rig.id("e");
        rig.endpoint(&nid, &eid, "10.64.0.2/24").await?;
        let link = rig.link_of(&nid, &eid).await?;
        into_container(&link, "hrc", "10.64.0.2/24")?;
        ip(&format!(
            "link add hrh link {parent} type ipvlan mode {mode} {flag}"
        ))?;
        ip("addr add 10.64.0.250/32 dev hrh")?;
        ip("link set hrh up")?;
        ip("route add 10.64.0.2/32 dev hrh src 10.64.0.250")?;
        // two seconds can only let a wrong refusal pass, never fail a right one
        check!(
            !host_pings("10.64.0.2", "2"),
            "ipvlan {mode} {flag}: a hand-made host link reaches the container; the refusal is wrong"
        );
        ip("link del hrh")?;
        ip("netns del hrc")?;
        rig.delete_network(&nid).await?;
        ip(&format!("link del {parent}"))?;
    }
    Ok(())
}
