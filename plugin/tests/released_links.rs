//! What happens to a container link after DeleteEndpoint, through the real
//! binary in a network namespace with a veth parent: it is deleted off the
//! request path (the reaper) and flushed at shutdown, or, while its network
//! churns, kept for a short window and given to the next endpoint (spares).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod kernel_rig;

use common::{NetNs, Plugin, ip};
use kernel_rig::{
    EP1, EP2, NET, Rig, create_endpoint, create_network, delete_network, endpoint_call, join,
};
use std::time::Duration;

/// DeleteEndpoint hands links to the reaper thread: back-to-back deletes
/// are all gone shortly after (group delete), a link that is not ours is
/// untouched, and SIGTERM waits for queued deletions.
#[test]
fn deleted_endpoints_links_are_reaped_and_flushed_at_shutdown() {
    let rig = Rig::new("rp");
    let ns = &rig.ns;
    ns.add_veth_parent("bystander0").unwrap();
    let mut p = rig.start(&[("LOG_LEVEL", "debug")]);
    let r = create_network(&p, NET, r#"{"parent":"hp0","kind":"macvlan"}"#);
    assert_eq!(r.status, 200, "{}", r.body);

    let eps: Vec<String> = (0..16).map(|i| format!("{i:02x}{}", &EP1[2..])).collect();
    let mut links = Vec::new();
    for (i, ep) in eps.iter().enumerate() {
        let addr = format!("10.70.0.{}/24", i + 2);
        assert_eq!(create_endpoint(&p, NET, ep, &addr, "").status, 200);
        links.push(join(&p, NET, ep));
    }
    for ep in &eps {
        assert_eq!(endpoint_call(&p, "DeleteEndpoint", NET, ep).status, 200);
    }
    for link in &links {
        assert!(
            ns.link_gone_within(link, common::GUARD),
            "{link} still there {:?} after DeleteEndpoint",
            common::GUARD
        );
    }
    assert!(
        ns.link_details("bystander0").is_some(),
        "a link that is not ours was deleted"
    );
    let log = p.log_text();
    assert!(
        log.contains("deleted container links"),
        "no group delete in the log:\n{log}"
    );
    assert!(
        !log.contains("group delete failed"),
        "group delete fell back:\n{log}"
    );

    // queued at SIGTERM: deleted before the process exits
    assert_eq!(
        create_endpoint(&p, NET, EP2, "10.70.0.40/24", "").status,
        200
    );
    let last = join(&p, NET, EP2);
    // the engine retries a Join: the link left by the first one is replaced
    let first_index = ns.link_index(&last);
    assert_eq!(join(&p, NET, EP2), last);
    assert!(
        ns.link_index(&last).is_some() && ns.link_index(&last) != first_index,
        "{last} not replaced"
    );
    assert_eq!(endpoint_call(&p, "DeleteEndpoint", NET, EP2).status, 200);
    assert!(p.stop().unwrap().success());
    assert!(
        ns.link_details(&last).is_none(),
        "{last} left after SIGTERM: {}",
        p.log_text()
    );
}

/// What the engine does with a container link: moves it into the
/// container's namespace as eth0, configures and uses it (plus `extra`
/// commands on eth0 there), then brings it down and moves it back under
/// its own name.
fn through_container(ns: &NetNs, ctr: &NetNs, link: &str, extra: &[&[&str]]) {
    let (host, inside) = (ns.name.as_str(), ctr.name.as_str());
    ip(&["-n", host, "link", "set", link, "netns", inside]).unwrap();
    ip(&["-n", inside, "link", "set", link, "name", "eth0"]).unwrap();
    ip(&["-n", inside, "addr", "add", "10.70.0.99/24", "dev", "eth0"]).unwrap();
    ip(&["-n", inside, "link", "set", "eth0", "up"]).unwrap();
    for args in extra {
        let mut cmd = vec!["-n", inside];
        cmd.extend_from_slice(args);
        ip(&cmd).unwrap();
    }
    ip(&["-n", inside, "link", "set", "eth0", "down"]).unwrap();
    ip(&["-n", inside, "link", "set", "eth0", "name", link]).unwrap();
    ip(&["-n", inside, "link", "set", link, "netns", host]).unwrap();
}

/// The ifindex and MAC of `link`.
fn index_and_mac(ns: &NetNs, link: &str) -> (String, String) {
    let mac = kernel_rig::mac_of(ns, link);
    (ns.link_index(link).unwrap(), mac)
}

/// A line of the plugin's log that holds every one of `words`.
fn log_line_with(p: &Plugin, words: &[&str]) -> Option<String> {
    p.log_text()
        .lines()
        .find(|l| words.iter().all(|w| l.contains(w)))
        .map(String::from)
}

/// Endpoint `i` of [`NET`] on `p`: `start(i)` creates it (address
/// 10.70.0.(i + 2); IDs differ in their first characters, so link names do)
/// and joins it, answering its link; `delete(i)` deletes it.
fn endpoints(p: &Plugin) -> (impl Fn(u32) -> String + '_, impl Fn(u32) + '_) {
    let ep = |i: u32| format!("{i:02x}{}", &EP1[2..]);
    let start = move |i: u32| {
        let addr = format!("10.70.0.{}/24", i + 2);
        assert_eq!(create_endpoint(p, NET, &ep(i), &addr, "").status, 200);
        join(p, NET, &ep(i))
    };
    let delete =
        move |i: u32| assert_eq!(endpoint_call(p, "DeleteEndpoint", NET, &ep(i)).status, 200);
    (start, delete)
}

/// The rule of [`ipvlan_driver`]'s spares, stated so that no step depends
/// on this machine's speed: a released link is kept when the network's last
/// two endpoint creations both lie within the reuse window before the
/// release. The windows below are either far longer than the test (so every
/// release is within it, and only the count of creations decides) or are
/// waited out on purpose; the one "within the window" case that needs a
/// short window measures its own premise around the plugin's clock readings.
const LONG_WINDOW: Duration = Duration::from_secs(600);

/// While a network churns, a link released by DeleteEndpoint is given to
/// the next endpoint (same link, new MAC) instead of being deleted and
/// re-created; a link a container changed is deleted, not reused; spares
/// are deleted with the network, when the network is re-created with other
/// options, and at SIGTERM; a lone endpoint's link is deleted at once.
#[test]
fn released_links_are_reused_only_under_churn_and_only_unchanged() {
    let started = std::time::Instant::now();
    let rig = Rig::new("ru");
    let ns = &rig.ns;
    let ctr = NetNs::new("ructr").unwrap();
    let window_ms = LONG_WINDOW.as_millis().to_string();
    let env = [
        ("LOG_LEVEL", "debug"),
        ("LINK_REUSE_MS", window_ms.as_str()),
    ];
    let mut p = rig.start(&env);
    let r = create_network(&p, NET, r#"{"parent":"hp0","kind":"macvlan"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    let (start, delete) = endpoints(&p);
    // a spare lives a whole LONG_WINDOW, so a link gone within the guard
    // was not kept
    let not_kept = |link: &str| ns.link_gone_within(link, common::GUARD);

    // two endpoints created: the network churns
    let (a, b) = (start(0), start(1));
    through_container(ns, &ctr, &a, &[]);
    let (a_index, a_mac) = index_and_mac(ns, &a);
    delete(0);
    assert!(
        ns.link_details(&a).is_some(),
        "{a} deleted although the network churns"
    );
    let c = start(2);
    assert_eq!(c, a, "the next endpoint did not get the released link");
    let (c_index, c_mac) = index_and_mac(ns, &c);
    assert_eq!(c_index, a_index, "{c} was re-created, not reused");
    assert_ne!(c_mac, a_mac, "a reused macvlan link kept its MAC");
    assert!(p.log_text().contains("joined with a reused link"));

    // a container that changed its link leaves a link that is not reused
    through_container(ns, &ctr, &b, &[&["link", "set", "eth0", "mtu", "1400"]]);
    delete(1);
    assert!(not_kept(&b), "a changed link was kept");
    let log = p.log_text();
    assert!(
        log.contains("released link not kept for reuse") && log.contains("Mtu(1400)"),
        "no reason logged:\n{log}"
    );
    let d = start(3);
    assert_ne!(d, b, "a changed link was handed out");

    // a spare is handed on again and again while the network churns
    through_container(ns, &ctr, &c, &[]);
    delete(2);
    assert!(ns.link_details(&c).is_some(), "{c} not kept");
    let e = start(4);
    assert_eq!(e, c, "the spare of {c} was not handed to the next endpoint");

    // with the network: spares go at once (DeleteNetwork answers after the
    // reaper has deleted them)
    delete(4);
    assert!(ns.link_details(&e).is_some(), "{e} not kept");
    delete(3);
    assert_eq!(delete_network(&p, NET).status, 200);
    assert_eq!(common::container_links(ns), Vec::<String>::new());

    // a lone endpoint (one `docker run --rm`) is not churn; at SIGTERM
    // spares are deleted before the process exits
    let r = create_network(&p, NET, r#"{"parent":"hp0","kind":"macvlan"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    let f = start(5);
    delete(5);
    assert!(not_kept(&f), "{f} kept");
    assert!(
        log_line_with(&p, &["released link not kept", "not churning", &f]).is_some(),
        "no reason logged for {f}:\n{}",
        p.log_text()
    );
    let (g, h) = (start(6), start(7));
    delete(6);
    delete(7);
    assert!(ns.link_details(&g).is_some(), "{g} not kept");
    assert!(ns.link_details(&h).is_some(), "{h} not kept");
    // the same ID re-created with other options: its spares do not fit
    let r = create_network(
        &p,
        NET,
        r#"{"parent":"hp0","kind":"macvlan","macvlan_mode":"private"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    for link in [&g, &h] {
        assert!(not_kept(link), "{link} kept across a new configuration");
    }
    let (i, _) = (start(8), start(9));
    delete(8);
    assert!(ns.link_details(&i).is_some(), "{i} not kept");
    drop((start, delete));
    assert!(p.stop().unwrap().success());
    assert!(
        ns.link_details(&i).is_none(),
        "{i} left after SIGTERM: {}",
        p.log_text()
    );
    assert!(
        started.elapsed() < LONG_WINDOW,
        "premise broken: the test outlasted the reuse window"
    );
}

/// The two time-bound halves of the rule: a spare nobody claims is deleted
/// when its window ends, and a creation older than the window is no churn
/// (a short-lived container beside a long-running one keeps nothing).
#[test]
fn spares_expire_after_the_window_and_old_creations_are_not_churn() {
    const WINDOW: Duration = Duration::from_secs(2);
    let rig = Rig::new("rx");
    let ns = &rig.ns;
    let window_ms = WINDOW.as_millis().to_string();
    let p = rig.start(&[("LOG_LEVEL", "debug"), ("LINK_REUSE_MS", &window_ms)]);
    let r = create_network(&p, NET, r#"{"parent":"hp0","kind":"macvlan"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    let (start, delete) = endpoints(&p);

    // Two creations and a release inside one window. The plugin reads its
    // clock after this test's `before` and before `after`, so `after -
    // before` bounds what it sees; a machine too slow to fit the sequence in
    // the window does not meet the premise, and the sequence is tried again.
    let mut kept = None;
    for attempt in 0..5u32 {
        let before = std::time::Instant::now();
        let (x, y) = (start(2 * attempt), start(2 * attempt + 1));
        delete(2 * attempt);
        let took = before.elapsed();
        if took <= WINDOW {
            kept = Some((x, std::time::Instant::now()));
            break;
        }
        eprintln!("attempt {attempt}: the sequence took {took:?}, longer than the window; again");
        delete(2 * attempt + 1);
        assert!(ns.link_gone_within(&y, common::GUARD) && ns.link_gone_within(&x, common::GUARD));
    }
    let (x, kept_at) = kept.expect("no attempt fitted two creations and a release in 2 s");
    assert!(
        log_line_with(&p, &["host-side link kept for reuse", &x]).is_some(),
        "{x} not kept:\n{}",
        p.log_text()
    );
    // nobody claims it: it goes when the window ends
    assert!(
        ns.link_gone_within(&x, WINDOW + common::GUARD),
        "{x} still there after the window"
    );
    assert!(
        log_line_with(&p, &["spare not reused in time", &x]).is_some(),
        "{x} went, but not by expiry:\n{}",
        p.log_text()
    );

    // The long-running endpoint's creation is now more than a window old
    // (the spare was parked after it and lived a whole window); one more
    // creation and its release are not churn.
    let since = kept_at.elapsed();
    if since <= WINDOW {
        std::thread::sleep(WINDOW - since + Duration::from_millis(50));
    }
    let short = start(20);
    delete(20);
    assert!(
        log_line_with(&p, &["released link not kept", "not churning", &short]).is_some(),
        "{short} kept beside a long-running endpoint:\n{}",
        p.log_text()
    );
    assert!(
        ns.link_gone_within(&short, common::GUARD),
        "{short} left behind"
    );
}

/// A macvlan passthru link carries its parent NIC's MAC, and a reused spare
/// gets a new MAC, which the kernel would pass down to the NIC: passthru
/// links are never kept for reuse, even while the network churns.
#[test]
fn passthru_links_are_never_kept_for_reuse() {
    let rig = Rig::new("pt");
    let ns = &rig.ns;
    let window_ms = LONG_WINDOW.as_millis().to_string();
    let p = rig.start(&[("LOG_LEVEL", "debug"), ("LINK_REUSE_MS", &window_ms)]);
    let r = create_network(
        &p,
        NET,
        r#"{"parent":"hp0","kind":"macvlan","macvlan_mode":"passthru"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let (_, nic_mac) = index_and_mac(ns, "hp0");
    let ep = |i: u32| format!("{i:02x}{}", &EP1[2..]);
    let mut last = String::new();
    // one passthru link at a time; two creations within the window are churn
    for i in 0..2 {
        let addr = format!("10.70.0.{}/24", i + 2);
        assert_eq!(create_endpoint(&p, NET, &ep(i), &addr, "").status, 200);
        last = join(&p, NET, &ep(i));
        assert_eq!(endpoint_call(&p, "DeleteEndpoint", NET, &ep(i)).status, 200);
        assert!(ns.link_gone_within(&last, common::GUARD), "{last} kept");
    }
    assert!(
        log_line_with(&p, &["released link not kept", "passthru", &last]).is_some(),
        "no reason logged for {last}:\n{}",
        p.log_text()
    );
    assert_eq!(index_and_mac(ns, "hp0").1, nic_mac, "hp0's MAC changed");
}
