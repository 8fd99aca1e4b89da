//! Kernel tests on this host through the real binary, inside a network
//! namespace with a veth parent: macvlan lifecycles (this host's kernel has
//! no ipvlan; the VM rig covers it), parent=auto, and reconcile after a
//! kill -9 with a stray link left behind.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod kernel_rig;

use common::{NetNs, body, ip};
use kernel_rig::{
    EP1, EP2, NET, Rig, create_endpoint, create_network, delete_network, endpoint_call, join,
    link_group, link_of,
};

#[test]
fn macvlan_lifecycle_survives_kill_9_and_reconcile_cleans_strays() {
    let rig = Rig::new("kl");
    let ns = &rig.ns;
    let mut p = rig.start(&[]);

    let r = create_network(
        &p,
        NET,
        r#"{"parent":"hp0","kind":"macvlan","macvlan_mode":"bridge"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        create_endpoint(&p, NET, EP1, "10.70.0.2/24", "02:00:00:00:00:02").status,
        200,
        "macvlan takes a user MAC"
    );
    assert_eq!(
        create_endpoint(&p, NET, EP2, "10.70.0.3/24", "").status,
        200
    );
    for ep in [EP1, EP2] {
        let j = p.post("/NetworkDriver.Join", &body::join(NET, ep));
        assert_eq!(j.status, 200, "{}", j.body);
        let v = j.json();
        assert_eq!(v["Gateway"], "10.70.0.1", "L2 answers the subnet gateway");
        assert_eq!(v["DisableGatewayService"], true);
        let link = v["InterfaceName"]["SrcName"].as_str().unwrap().to_string();
        let details = ns
            .link_details(&link)
            .unwrap_or_else(|| panic!("{link} not created"));
        assert!(details.contains("macvlan mode bridge"), "{details}");
        assert!(details.contains("@hp0"), "{link} not on hp0: {details}");
        assert_eq!(endpoint_call(&p, "Leave", NET, ep).status, 200);
        assert!(
            ns.link_details(&link).is_some(),
            "Leave must not delete the link"
        );
    }
    let (l1, l2) = (link_of(&p, NET, EP1), link_of(&p, NET, EP2));
    let group = link_group(ns, &l1);
    assert!(group != 0, "{l1} is in the default link group");

    // crash, with a link the plugin never acknowledged left on the parent,
    // and one of another instance (another group) beside it
    p.kill9();
    let stray = |name: &str, group: u32| {
        let group = group.to_string();
        ip(&[
            "-n", &ns.name, "link", "add", name, "link", "hp0", "group", &group, "type", "macvlan",
            "mode", "bridge",
        ])
        .unwrap();
    };
    stray("ivr0000deadbeef", group);
    stray("ivr0000cafef00d", group ^ 1);
    let p = rig.start(&[]);
    let links = common::container_links(ns);
    assert!(
        !links.contains(&"ivr0000deadbeef".to_string()),
        "stray link survived reconcile: {links:?}"
    );
    assert!(
        links.contains(&"ivr0000cafef00d".to_string()),
        "another instance's link was deleted: {links:?}"
    );
    ip(&["-n", &ns.name, "link", "del", "ivr0000cafef00d"]).unwrap();
    assert!(
        links.contains(&l1) && links.contains(&l2),
        "live endpoints' links were removed: {links:?}"
    );
    // the network and endpoints are still known after the crash
    assert_eq!(
        create_network(
            &p,
            NET,
            r#"{"parent":"hp0","kind":"macvlan","macvlan_mode":"bridge"}"#
        )
        .status,
        200,
        "same-config re-create is idempotent"
    );
    assert_eq!(link_of(&p, NET, EP1), l1);
    for ep in [EP1, EP2] {
        assert_eq!(endpoint_call(&p, "DeleteEndpoint", NET, ep).status, 200);
    }
    common::eventually(common::GUARD, || common::container_links(ns).is_empty());
    assert!(
        common::container_links(ns).is_empty(),
        "links left {:?} after DeleteEndpoint: {:?}",
        common::GUARD,
        common::container_links(ns)
    );
    assert_eq!(
        endpoint_call(&p, "DeleteEndpoint", NET, EP1).status,
        200,
        "unknown endpoints delete quietly"
    );
    assert_eq!(delete_network(&p, NET).status, 200);
    assert!(
        ns.link_details("hp0").is_some(),
        "the user's parent was deleted"
    );
}

#[test]
fn a_missing_parent_is_logged_at_start_refused_at_join_and_used_again_once_back() {
    let rig = Rig::new("mp");
    let ns = &rig.ns;
    let mut p = rig.start(&[]);
    let r = create_network(&p, NET, r#"{"parent":"hp0","kind":"macvlan"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        create_endpoint(&p, NET, EP1, "10.70.0.2/24", "").status,
        200
    );
    p.stop().unwrap();
    // the host's interface goes away while the plugin is down
    ip(&["-n", &ns.name, "link", "del", "hp0"]).unwrap();
    let p = rig.start(&[]);
    let log = p.log_text();
    assert!(
        log.lines().any(|l| l.contains("parent interface missing")
            && l.contains("hp0")
            && l.contains(NET)),
        "no warning naming the network and its missing parent:\n{log}"
    );
    let refused = p.post("/NetworkDriver.Join", &body::join(NET, EP1));
    assert_eq!(refused.status, 500, "{}", refused.body);
    assert!(
        refused.body.contains("hp0"),
        "error does not name the parent: {}",
        refused.body
    );
    assert!(
        common::container_links(ns).is_empty(),
        "{:?}",
        common::container_links(ns)
    );

    // an interface of that name again: the network works on it
    ns.add_veth_parent("hp0").unwrap();
    let link = join(&p, NET, EP1);
    let details = ns
        .link_details(&link)
        .unwrap_or_else(|| panic!("{link} not created"));
    assert!(details.contains("@hp0"), "{link} not on hp0: {details}");
    assert_eq!(endpoint_call(&p, "Leave", NET, EP1).status, 200);
    assert_eq!(endpoint_call(&p, "DeleteEndpoint", NET, EP1).status, 200);
    assert_eq!(delete_network(&p, NET).status, 200);
    assert!(
        common::eventually(common::GUARD, || common::container_links(ns).is_empty()),
        "links left: {:?}",
        common::container_links(ns)
    );
}

/// Where the kernel makes ipvlan links: a user MAC on ipvlan is refused,
/// and so is a network of another kind on the same parent. Where it does
/// not (this CI host), an ipvlan network is refused at CreateNetwork,
/// naming the module and the other kind, and nothing is recorded (the VM
/// suite covers the ipvlan cases there). On every kernel: a missing parent
/// and the loopback interface are refused by name.
#[test]
fn ipvlan_networks_are_refused_where_the_kernel_cannot_make_them_and_conflicts_by_name() {
    let ns = NetNs::new("km").unwrap();
    ns.add_veth_parent("hp0").unwrap();
    let p = common::start(Some(&ns.name), &[]);
    let other = "a".repeat(64);
    if common::kernel_has_ipvlan() {
        assert_eq!(create_network(&p, NET, r#"{"parent":"hp0"}"#).status, 200);
        let err =
            create_endpoint(&p, NET, EP1, "10.70.0.2/24", "02:00:00:00:00:02").assert_error(500);
        assert!(
            err.contains("custom mac address") && err.contains("02:00:00:00:00:02"),
            "{err}"
        );
        let err =
            create_network(&p, &other, r#"{"parent":"hp0","kind":"macvlan"}"#).assert_error(500);
        assert!(err.contains("hp0") && err.contains(NET), "{err}");
    } else {
        let err = create_network(&p, NET, r#"{"parent":"hp0"}"#).assert_error(500);
        assert!(
            err.contains("cannot make ipvlan links")
                && err.contains("modprobe ipvlan")
                && err.contains("-o kind=macvlan")
                && err.contains(NET),
            "{err}"
        );
        // nothing recorded: the ID is free for a network that works here
        let err = create_endpoint(&p, NET, EP1, "10.70.0.2/24", "").assert_error(500);
        assert!(err.contains(NET), "{err}");
        let r = create_network(&p, NET, r#"{"parent":"hp0","kind":"macvlan"}"#);
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let err = create_network(&p, &other, r#"{"parent":"nosuch0"}"#).assert_error(500);
    assert!(err.contains("nosuch0"), "{err}");
    let err = create_network(&p, &other, r#"{"parent":"lo"}"#).assert_error(500);
    assert!(err.contains("loopback"), "{err}");
}

#[test]
fn parent_auto_takes_the_default_route_interface() {
    let ns = NetNs::new("ka").unwrap();
    ns.add_veth_parent("up0").unwrap();
    ip(&["-n", &ns.name, "addr", "add", "10.71.0.5/24", "dev", "up0"]).unwrap();
    ip(&[
        "-n",
        &ns.name,
        "route",
        "add",
        "default",
        "via",
        "10.71.0.1",
    ])
    .unwrap();
    let p = common::start(Some(&ns.name), &[]);
    assert_eq!(
        create_network(&p, NET, r#"{"parent":"auto","kind":"macvlan"}"#).status,
        200
    );
    assert_eq!(
        create_endpoint(&p, NET, EP1, "10.70.0.2/24", "").status,
        200
    );
    let info = endpoint_call(&p, "EndpointOperInfo", NET, EP1).json();
    assert_eq!(info["Value"]["parent"], "up0", "{info}");
}

/// Two instances in one namespace (two engines on one host, or a test beside
/// a real installation): starting the second must not delete the links of
/// the first, which its state does not know.
#[test]
fn a_second_instance_leaves_the_first_ones_links_alone() {
    let ns = NetNs::new("si").unwrap();
    ns.add_veth_parent("hp0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let first = common::start_with(
        Some(&ns.name),
        &dir.path().join("a.sock"),
        &dir.path().join("a"),
        &[],
    );
    let r = create_network(&first, NET, r#"{"parent":"hp0","kind":"macvlan"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        create_endpoint(&first, NET, EP1, "10.70.0.2/24", "").status,
        200
    );
    let link = join(&first, NET, EP1);

    let mut second = common::start_with(
        Some(&ns.name),
        &dir.path().join("b.sock"),
        &dir.path().join("b"),
        &[],
    );
    assert_eq!(
        second.post("/NetworkDriver.GetCapabilities", "").status,
        200
    );
    assert!(
        ns.link_details(&link).is_some(),
        "the second instance deleted {link}: {}",
        second.log_text()
    );
    // and its DeleteEndpoint of an endpoint it does not know leaves it too
    assert_eq!(
        endpoint_call(&second, "DeleteEndpoint", NET, EP1).status,
        200
    );
    assert!(second.stop().unwrap().success());
    assert!(
        ns.link_details(&link).is_some(),
        "{link} deleted by the second instance's DeleteEndpoint"
    );
    assert_eq!(
        endpoint_call(&first, "DeleteEndpoint", NET, EP1).status,
        200
    );
    assert!(ns.link_gone_within(&link, common::GUARD), "{link} left");
}

/// A Join that fails in the kernel (the parent vanished under the plugin)
/// leaves no link behind, and the engine's cleanup that follows
/// (DeleteEndpoint, ReleaseAddress) frees everything: the address is handed
/// out again at once and the endpoint ID can be used afresh.
#[test]
fn a_join_that_fails_in_the_kernel_leaks_nothing() {
    let rig = Rig::new("jf");
    let ns = &rig.ns;
    let p = rig.start(&[]);
    let pool = p
        .post(
            "/IpamDriver.RequestPool",
            &body::request_pool("10.70.0.0/24", false),
        )
        .json()["PoolID"]
        .as_str()
        .unwrap()
        .to_string();
    let request = |addr: &str| {
        p.post(
            "/IpamDriver.RequestAddress",
            &body::request_this_address(&pool, addr),
        )
    };
    assert_eq!(request("10.70.0.1").status, 200, "gateway");
    let addr = request("").json()["Address"].as_str().unwrap().to_string();
    assert_eq!(addr, "10.70.0.2/24");
    let r = create_network(&p, NET, r#"{"parent":"hp0","kind":"macvlan"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(create_endpoint(&p, NET, EP1, &addr, "").status, 200);

    ip(&["-n", &ns.name, "link", "del", "hp0"]).unwrap();
    let j = p.post("/NetworkDriver.Join", &body::join(NET, EP1));
    let err = j.assert_error(500);
    assert!(err.contains("hp0"), "the error must name the parent: {err}");
    assert!(
        common::container_links(ns).is_empty(),
        "a half-made link: {:?}",
        common::container_links(ns)
    );

    // what the engine does after a failed Join
    assert_eq!(endpoint_call(&p, "DeleteEndpoint", NET, EP1).status, 200);
    let r = p.post(
        "/IpamDriver.ReleaseAddress",
        &body::release_address(&pool, "10.70.0.2"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        request("").json()["Address"],
        "10.70.0.2/24",
        "the address of the failed container is free again"
    );
    // the parent is back: the same endpoint ID works from scratch
    ns.add_veth_parent("hp0").unwrap();
    assert_eq!(
        create_endpoint(&p, NET, EP1, "10.70.0.2/24", "").status,
        200
    );
    let link = join(&p, NET, EP1);
    assert!(ns.link_details(&link).is_some_and(|d| d.contains("@hp0")));
    assert_eq!(endpoint_call(&p, "DeleteEndpoint", NET, EP1).status, 200);
    assert!(ns.link_gone_within(&link, common::GUARD), "{link} left");
}

/// Join does not hold the state lock across its netlink calls, but calls
/// on one endpoint still take turns: Joins racing each other all answer
/// with the endpoint's one link, and Joins racing its DeleteEndpoint leave
/// no link behind (a Join before the delete made the link the delete
/// removes; a Join after it finds no endpoint).
#[test]
fn racing_calls_on_one_endpoint_leave_its_one_link_or_none() {
    let rig = Rig::new("tu");
    let ns = &rig.ns;
    // no spares: a released link is deleted, so "none left" is checkable
    let p = rig.start(&[("LINK_REUSE_MS", "0")]);
    let r = create_network(&p, NET, r#"{"parent":"hp0","kind":"macvlan"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    let join = |ep: &str| {
        p.post(
            "/NetworkDriver.Join",
            &format!(r#"{{"NetworkID":"{NET}","EndpointID":"{ep}","SandboxKey":"/x"}}"#),
        )
    };
    for round in 0..8 {
        let ep = format!("{round:02x}{}", &EP1[2..]);
        let addr = format!("10.70.0.{}/24", round + 2);
        assert_eq!(create_endpoint(&p, NET, &ep, &addr, "").status, 200);
        let link = link_of(&p, NET, &ep);
        let joins: Vec<common::Reply> = std::thread::scope(|s| {
            let racers: Vec<_> = (0..4).map(|_| s.spawn(|| join(&ep))).collect();
            racers.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for j in &joins {
            assert_eq!(j.status, 200, "{}", j.body);
            assert_eq!(j.json()["InterfaceName"]["SrcName"], link.as_str());
        }
        assert!(
            ns.link_details(&link).is_some(),
            "{link} missing after racing Joins"
        );
        let (joins, deleted) = std::thread::scope(|s| {
            let racers: Vec<_> = (0..3).map(|_| s.spawn(|| join(&ep))).collect();
            let delete = s.spawn(|| endpoint_call(&p, "DeleteEndpoint", NET, &ep));
            let joins: Vec<common::Reply> = racers.into_iter().map(|h| h.join().unwrap()).collect();
            (joins, delete.join().unwrap())
        });
        assert_eq!(deleted.status, 200, "{}", deleted.body);
        for j in joins.iter().filter(|j| j.status != 200) {
            let err = j.assert_error(j.status);
            assert!(err.contains("not found"), "{err}");
        }
        assert!(
            ns.link_gone_within(&link, common::GUARD),
            "{link} left after Joins raced its DeleteEndpoint: {}",
            p.log_text()
        );
    }
    assert_eq!(delete_network(&p, NET).status, 200);
    assert!(
        common::container_links(ns).is_empty(),
        "{:?}",
        common::container_links(ns)
    );
}

/// A rig whose parent hp0 has the alternative name up1, and a plugin on it
/// with the macvlan network NET made on up1.
fn network_on_altname(tag: &str) -> (Rig, common::Plugin) {
    let rig = Rig::new(tag);
    ip(&[
        "-n",
        &rig.ns.name,
        "link",
        "property",
        "add",
        "dev",
        "hp0",
        "altname",
        "up1",
    ])
    .unwrap();
    let p = rig.start(&[]);
    let r = create_network(&p, NET, r#"{"parent":"up1","kind":"macvlan"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    (rig, p)
}

/// A parent named by an alternative name (`ip link property add ... altname`,
/// which systemd gives most NICs) is the same device as under its own name:
/// the sharing rules and the MTU check apply to the device, and a restart
/// finds it.
#[test]
fn parents_are_known_by_device_not_by_the_name_typed() {
    let (rig, mut p) = network_on_altname("pa");
    let ns = &rig.ns;
    assert_eq!(
        create_endpoint(&p, NET, EP1, "10.70.0.2/24", "").status,
        200
    );
    let link = join(&p, NET, EP1);
    assert!(
        ns.link_details(&link).is_some_and(|d| d.contains("@hp0")),
        "{link} not on hp0"
    );
    let other = "a".repeat(64);
    // another kind on the same device, by its other name: refused, naming
    // the network that holds it
    let err = create_network(&p, &other, r#"{"parent":"hp0"}"#).assert_error(500);
    assert!(err.contains("hp0") && err.contains(NET), "{err}");
    let err = create_network(
        &p,
        &other,
        r#"{"parent":"hp0","kind":"macvlan","macvlan_mode":"passthru"}"#,
    )
    .assert_error(500);
    assert!(err.contains("passthru") && err.contains(NET), "{err}");
    // the MTU is checked against the device, by either name
    let err = create_network(
        &p,
        &other,
        r#"{"parent":"up1","kind":"macvlan","com.docker.network.driver.mtu":"9000"}"#,
    )
    .assert_error(500);
    assert!(err.contains("mtu 9000 exceeds parent hp0's 1500"), "{err}");
    let r = create_network(
        &p,
        &other,
        r#"{"parent":"hp0","kind":"macvlan","com.docker.network.driver.mtu":"1400"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // a restart finds the parent: no "missing" warning
    assert!(p.stop().unwrap().success());
    let p = rig.start(&[]);
    let log = p.log_text();
    assert!(!log.contains("parent interface missing"), "{log}");
    assert_eq!(link_of(&p, NET, EP1), link);
}

/// A parent renamed while its network is in use (`ip link set hp0 name
/// hp9`; the alternative name the network was made with stays on the
/// device) is followed at once, not only at the next start: an endpoint
/// created before the rename joins on the renamed device, and the
/// network's record names the device's new name durably before that Join
/// is answered (after a kill -9 the restart finds it under that name, with
/// nothing to rename). A network made with the device's own name cannot
/// follow a rename: its Join names the missing parent.
#[test]
fn a_renamed_parent_is_followed_at_join_by_its_alternative_name() {
    let (rig, mut p) = network_on_altname("rn");
    let ns = &rig.ns;
    let other = "b".repeat(64);
    let r = create_network(&p, &other, r#"{"parent":"hp0","kind":"macvlan"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    for (ep, address) in [(EP1, "10.70.0.2/24"), (EP2, "10.70.0.3/24")] {
        assert_eq!(create_endpoint(&p, NET, ep, address, "").status, 200);
    }
    let parent_of = |p: &common::Plugin, ep: &str| {
        endpoint_call(p, "EndpointOperInfo", NET, ep).json()["Value"]["parent"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let l1 = join(&p, NET, EP1);
    assert!(
        ns.link_details(&l1).is_some_and(|d| d.contains("@hp0")),
        "{l1} not on hp0"
    );
    assert_eq!(parent_of(&p, EP1), "hp0");

    // renamed between EP2's CreateEndpoint and its Join
    ip(&["-n", &ns.name, "link", "set", "hp0", "name", "hp9"]).unwrap();
    let l2 = join(&p, NET, EP2);
    assert!(
        ns.link_details(&l2).is_some_and(|d| d.contains("@hp9")),
        "{l2} not on the renamed hp9: {:?}",
        ns.link_details(&l2)
    );
    assert_eq!(parent_of(&p, EP2), "hp9", "the record did not follow");
    assert!(
        p.log_text()
            .contains("parent found under the device's name"),
        "{}",
        p.log_text()
    );
    // the network typed by the old name has nothing to find the device by
    let oep = "c".repeat(64);
    assert_eq!(
        create_endpoint(&p, &other, &oep, "10.70.0.9/24", "").status,
        200
    );
    let err = p
        .post("/NetworkDriver.Join", &body::join(&other, &oep))
        .assert_error(500);
    assert!(err.contains("parent interface hp0 does not exist"), "{err}");

    // durable before the answer: a crash right after keeps the new name
    p.kill9();
    let p = rig.start(&[]);
    let log = p.log_text();
    assert!(
        !log.contains("parent found under the device's name"),
        "the restart had to rename the parent again: {log}"
    );
    assert_eq!(parent_of(&p, EP2), "hp9");
    assert_eq!(link_of(&p, NET, EP2), l2);
}

/// A network without a parent lives on a dummy link of its own. On a kernel
/// that cannot make dummy links (this host's), CreateNetwork names the
/// missing module and the option that avoids it, and leaves nothing behind;
/// on one that can, the network is made.
#[test]
fn a_network_without_a_parent_needs_dummy_links_and_says_so() {
    let ns = NetNs::new("nd").unwrap();
    let dummy_works = std::process::Command::new("ip")
        .args(["-n", &ns.name, "link", "add", "probe0", "type", "dummy"])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success();
    let p = common::start(Some(&ns.name), &[]);
    let r = create_network(&p, NET, r#"{"kind":"macvlan"}"#);
    let dummy = ipvlan_driver::dummy_name(NET);
    if dummy_works {
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(ns.link_details(&dummy).is_some(), "{dummy} not made");
    } else {
        let err = r.assert_error(500);
        assert!(
            err.contains(&format!("cannot create dummy link {dummy}"))
                && err.contains("modprobe dummy")
                && err.contains("-o parent="),
            "{err}"
        );
        assert!(ns.link_details(&dummy).is_none(), "{dummy} left");
    }
}
