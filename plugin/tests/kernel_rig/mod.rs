//! What the kernel tests (`kernel.rs`, `released_links.rs`) share: a
//! namespace with a veth parent `hp0` and a plugin home that outlives one
//! process, and the calls they make, each a line.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use crate::common::{self, NetNs, Plugin, PluginDir, Reply, body};

pub const NET: &str = "7c1f2a9e0b3d4c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6";

pub const EP1: &str = "e1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f80";

pub const EP2: &str = "f2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091";

/// A namespace with a veth parent `hp0`, and a socket and state dir that
/// outlive one plugin process (for restarts on the same state).
pub struct Rig {
    pub ns: NetNs,
    dir: PluginDir,
}

impl Rig {
    pub fn new(tag: &str) -> Rig {
        let ns = NetNs::new(tag).unwrap();
        ns.add_veth_parent("hp0").unwrap();
        Rig {
            ns,
            dir: PluginDir::new().unwrap(),
        }
    }

    pub fn start(&self, env: &[(&str, &str)]) -> Plugin {
        common::start_at(Some(&self.ns.name), &self.dir, env)
    }
}

pub fn create_network(p: &Plugin, id: &str, generic: &str) -> Reply {
    p.post(
        "/NetworkDriver.CreateNetwork",
        &body::create_network(
            id,
            generic,
            &body::ipv4_data("10.70.0.0/24", "10.70.0.1/24"),
        ),
    )
}

pub fn create_endpoint(p: &Plugin, net: &str, ep: &str, addr: &str, mac: &str) -> Reply {
    p.post(
        "/NetworkDriver.CreateEndpoint",
        &body::create_endpoint(net, ep, &body::interface(addr, mac)),
    )
}

pub fn delete_network(p: &Plugin, net: &str) -> Reply {
    p.post("/NetworkDriver.DeleteNetwork", &body::network(net))
}

pub fn endpoint_call(p: &Plugin, call: &str, net: &str, ep: &str) -> Reply {
    p.post(&format!("/NetworkDriver.{call}"), &body::endpoint(net, ep))
}

pub fn link_of(p: &Plugin, net: &str, ep: &str) -> String {
    endpoint_call(p, "EndpointOperInfo", net, ep).json()["Value"]["link"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The link group of `link` (`ip -d link show` prints "group N").
pub fn link_group(ns: &NetNs, link: &str) -> u32 {
    let details = ns.link_details(link).unwrap();
    let mut words = details.split_whitespace();
    words
        .find(|w| *w == "group")
        .and_then(|_| words.next())
        .map(|g| {
            if g == "default" {
                0
            } else {
                g.parse()
                    .unwrap_or_else(|e| panic!("group {g:?} in {details}: {e}"))
            }
        })
        .unwrap_or_else(|| panic!("no group in {details}"))
}

pub fn join(p: &Plugin, net: &str, ep: &str) -> String {
    let j = p.post("/NetworkDriver.Join", &body::join(net, ep));
    assert_eq!(j.status, 200, "{}", j.body);
    j.json()["InterfaceName"]["SrcName"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The MAC `ip link` shows for `link` in `ns`.
pub fn mac_of(ns: &NetNs, link: &str) -> String {
    ns.link_mac(link)
        .unwrap_or_else(|| panic!("{link} missing, or without a MAC"))
}
