#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The client against servers other than dnsmasq, as LANs run them: ISC
//! dhcpd (isc-dhcp-server) and busybox's udhcpd, each in a namespace at the
//! far end of a veth whose near end is the parent. Each gives leases the
//! client takes, renews, rebinds and releases. dhcpd tells endpoints that
//! share the parent's MAC (ipvlan) apart by their client identifiers;
//! udhcpd keys leases by MAC alone and gives them one address, which the
//! driver refuses for the second (`check_address_unshared`). Needs root,
//! dhcpd and busybox; fails loudly without them.

use ipvlan_rs_dhcp::{self as dhcp, ClientId, Lease, Parent, Settings};
use std::collections::HashSet;
use std::future::Future;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use testkit::{NetNs, ip};

const SERVER: &str = "10.78.0.1";
const ROUTER: &str = "10.78.0.254";

/// A DHCP server of some kind in a namespace of its own.
struct Server {
    ns: NetNs,
    child: Child,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Server {
    /// Moves `peer` into a new namespace with [`SERVER`]/24 and starts
    /// `kind` there, serving 10.78.0.100-150 with router [`ROUTER`] and
    /// leases of 120 s.
    fn start(near: &NetNs, peer: &str, kind: &str) -> Server {
        let ns = NetNs::new("odhs").unwrap();
        ip(&["-n", &near.name, "link", "set", peer, "netns", &ns.name]).unwrap();
        ip(&["-n", &ns.name, "link", "set", peer, "up"]).unwrap();
        ip(&[
            "-n",
            &ns.name,
            "addr",
            "add",
            &format!("{SERVER}/24"),
            "dev",
            peer,
        ])
        .unwrap();
        let dir = std::env::temp_dir().join(&ns.name);
        std::fs::create_dir_all(&dir).unwrap();
        let path = |f: &str| dir.join(f).display().to_string();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns.name]);
        match kind {
            "dhcpd" => {
                assert!(
                    which("dhcpd").is_some(),
                    "no dhcpd: apt-get install isc-dhcp-server (make test installs it)"
                );
                std::fs::write(
                    path("dhcpd.conf"),
                    format!(
                        "authoritative;\n\
                         default-lease-time 120;\nmax-lease-time 120;\n\
                         subnet 10.78.0.0 netmask 255.255.255.0 {{\n\
                         range 10.78.0.100 10.78.0.150;\n\
                         option routers {ROUTER};\n}}\n"
                    ),
                )
                .unwrap();
                std::fs::write(path("leases"), "").unwrap();
                cmd.args(["dhcpd", "-f", "-4", "-q", "-cf"])
                    .arg(path("dhcpd.conf"))
                    .arg("-lf")
                    .arg(path("leases"))
                    .arg("-pf")
                    .arg(path("pid"))
                    .arg(peer);
            }
            "udhcpd" => {
                let busybox = which("busybox").expect("no busybox: apt-get install busybox-static");
                std::fs::write(
                    path("udhcpd.conf"),
                    format!(
                        "start 10.78.0.100\nend 10.78.0.150\ninterface {peer}\n\
                         lease_file {}\npidfile {}\n\
                         option subnet 255.255.255.0\noption router {ROUTER}\n\
                         option lease 120\nmin_lease 60\n",
                        path("leases"),
                        path("pid")
                    ),
                )
                .unwrap();
                cmd.arg(busybox)
                    .args(["udhcpd", "-f"])
                    .arg(path("udhcpd.conf"));
            }
            other => panic!("no server kind {other}"),
        }
        let child = cmd.spawn().unwrap();
        let server = Server { ns, child, dir };
        // listening once its socket is bound; the first DISCOVER is
        // retransmitted anyway, so a short settle is only a courtesy
        std::thread::sleep(Duration::from_millis(300));
        server
    }

    fn lease_file(&self) -> String {
        std::fs::read_to_string(self.dir.join("leases")).unwrap_or_default()
    }
}

fn which(bin: &str) -> Option<PathBuf> {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| PathBuf::from(d).join(bin))
        .find(|p| p.is_file())
}

fn parent_of(near: &NetNs, name: &str) -> Parent {
    let (index, mac) = near.link_index_and_mac(name).unwrap();
    Parent {
        name: name.into(),
        index,
        mac,
        mtu: None,
    }
}

fn block_on<T: Send>(ns: &NetNs, f: impl Future<Output = T> + Send) -> T {
    ns.block_on(f).unwrap()
}

fn endpoint(n: u8, hardware: [u8; 6]) -> ClientId {
    ClientId {
        client_id: format!("\0ipvlan-rs:endpoint-{n}").into_bytes(),
        hardware,
        hostname: None,
    }
}

/// Acquires for three endpoints (the first two on the parent's MAC if
/// `share_mac`, else each with its own), renews the first, rebinds the
/// third, releases the second; returns the leases.
fn exchange_with(kind: &'static str, share_mac: bool) -> (Vec<Lease>, Server) {
    let near = NetNs::new("odhc").unwrap();
    near.add_veth_parent("op0").unwrap();
    let server = Server::start(&near, "op0p", kind);
    let parent = parent_of(&near, "op0");
    let second = match share_mac {
        true => parent.mac,
        false => [0x02, 0x42, 0xac, 0, 0, 2],
    };
    let clients = vec![
        endpoint(1, parent.mac),
        endpoint(2, second),
        endpoint(3, [0x02, 0x42, 0xac, 0, 0, 3]),
    ];
    let settings = Settings::default();
    let first: Vec<Lease> = block_on(&near, {
        let (parent, clients) = (parent.clone(), clients.clone());
        async move {
            let mut first = Vec::new();
            for c in &clients {
                match dhcp::acquire(&parent, c, &settings).await {
                    Ok(l) => first.push(l),
                    Err(e) => panic!("{kind}: acquire for {c:?}: {e}"),
                }
            }
            first
        }
    });
    let addresses: HashSet<Ipv4Addr> = first.iter().map(|l| l.address).collect();
    assert_eq!(addresses.len(), 3, "{kind}: {first:?}");
    for lease in &first {
        let o = lease.address.octets();
        assert!(
            o[..3] == [10, 78, 0] && (100..=150).contains(&o[3]),
            "{kind}: {lease:?}"
        );
        assert_eq!(lease.prefix_len, 24, "{kind}");
        assert_eq!(lease.router, Some(ROUTER.parse().unwrap()), "{kind}");
        assert_eq!(lease.server, SERVER.parse::<Ipv4Addr>().unwrap(), "{kind}");
        assert_eq!(lease.lease_secs, 120, "{kind}");
    }
    // the containers' links answer ARP for their addresses (renewals'
    // answers are sent to the address)
    for lease in &first {
        let address = format!("{}/32", lease.address);
        ip(&["-n", &near.name, "addr", "add", &address, "dev", "op0"]).unwrap();
    }
    let (renewed, rebound) = block_on(&near, {
        let (parent, clients, first) = (parent.clone(), clients.clone(), first.clone());
        async move {
            tokio::time::sleep(Duration::from_millis(1100)).await;
            let renewed = dhcp::renew(&parent, &clients[0], &first[0], &settings).await;
            let rebound = dhcp::rebind(&parent, &clients[2], &first[2], &settings).await;
            (renewed, rebound)
        }
    });
    let renewed = renewed.unwrap_or_else(|e| panic!("{kind}: renew: {e}"));
    let rebound = rebound.unwrap_or_else(|e| panic!("{kind}: rebind: {e}"));
    assert_eq!(renewed.address, first[0].address, "{kind}");
    assert_eq!(rebound.address, first[2].address, "{kind}");
    assert!(renewed.granted_at > first[0].granted_at, "{kind}");
    block_on(&near, {
        let (parent, client, lease) = (parent.clone(), clients[1].clone(), first[1].clone());
        async move { dhcp::release(&parent, &client, &lease, &settings).await }
    })
    .unwrap_or_else(|e| panic!("{kind}: release: {e}"));
    drop(near);
    (first, server)
}

/// Waits (a guard of 30 s) for `cond` on the server's lease file.
fn wait_file(server: &Server, what: &str, cond: impl Fn(&str) -> bool) {
    let end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < end {
        if cond(&server.lease_file()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what}: the lease file is {:?}", server.lease_file());
}

#[test]
fn isc_dhcpd_leases_renews_and_releases_by_client_id() {
    let (leases, server) = exchange_with("dhcpd", true);
    // dhcpd writes a lease block per address; a released one is "free"
    for (i, lease) in leases.iter().enumerate() {
        let a = lease.address.to_string();
        wait_file(&server, &format!("lease {i} of {a} in dhcpd's file"), |f| {
            f.contains(&format!("lease {a} {{"))
        });
    }
    let released = leases[1].address.to_string();
    wait_file(&server, "the release of endpoint 2's lease", |f| {
        // the last block of the address says it is free
        f.rsplit(&format!("lease {released} {{"))
            .next()
            .is_some_and(|b| b.contains("binding state free"))
    });
    let _ = &server.ns;
}

#[test]
fn busybox_udhcpd_leases_renews_and_releases_by_mac() {
    let (leases, server) = exchange_with("udhcpd", false);
    assert_eq!(leases.len(), 3);
    drop(server);
    // two client identifiers on one MAC: one address (what the driver
    // refuses for the second endpoint of an ipvlan network)
    let near = NetNs::new("odhc").unwrap();
    near.add_veth_parent("op0").unwrap();
    let _server = Server::start(&near, "op0p", "udhcpd");
    let parent = parent_of(&near, "op0");
    let (a, b) = block_on(&near, async move {
        let settings = Settings::default();
        let a = dhcp::acquire(&parent, &endpoint(1, parent.mac), &settings).await;
        let b = dhcp::acquire(&parent, &endpoint(2, parent.mac), &settings).await;
        (a.unwrap(), b.unwrap())
    });
    assert_eq!(
        a.address, b.address,
        "udhcpd now tells client identifiers apart: check_address_unshared's doc and the README's DHCP limits say it does not"
    );
}
