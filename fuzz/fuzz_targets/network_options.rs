//! `ipvlan_driver::options::NetworkOptions::parse` from arbitrary JSON
//! generic options (`-o key=value` of `docker network create`).
//!
//! Input: JSON text. It is read twice: as the whole `Options` of a
//! CreateNetwork (protocol `NetworkOptions`, whose
//! `com.docker.network.generic` map is what the driver parses), and as the
//! generic map itself (the shape of the seeds). Checked:
//! - neither step panics;
//! - an accepted configuration is one the kernel can take: a named parent
//!   is a valid interface name other than `lo`, an MTU is 68..=65535;
//! - a refusal names the value (or key) it refuses.

#![no_main]

use ipvlan_driver::options::{NetworkOptions, OptionError, ParentSpec, check_ifname, vlan_parts};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
    if let Ok(opts) = serde_json::from_slice::<protocol::options::NetworkOptions>(data) {
        check(&opts.generic);
    }
    if let Ok(map) = serde_json::from_slice::<BTreeMap<String, serde_json::Value>>(data) {
        let wrapped: BTreeMap<String, serde_json::Value> = [(
            protocol::options::GENERIC.to_string(),
            serde_json::Value::Object(map.into_iter().collect()),
        )]
        .into_iter()
        .collect();
        if let Ok(opts) = protocol::options::NetworkOptions::from_map(wrapped) {
            check(&opts.generic);
        }
    }
});

fn check(generic: &BTreeMap<String, String>) {
    for default_parent in [None, Some("hp0"), Some(" "), Some("lo")] {
        match NetworkOptions::parse(generic, default_parent) {
            Ok(o) => {
                if let ParentSpec::Named { name } = &o.parent {
                    assert!(check_ifname(name).is_ok(), "accepted parent {name:?}");
                    assert_ne!(name, "lo");
                    assert_eq!(name.trim(), name);
                    if let Some((base, vid)) = vlan_parts(name) {
                        assert!(!base.is_empty() && (1..=4094).contains(&vid));
                    }
                }
                if let Some(mtu) = o.mtu {
                    assert!((68..=65535).contains(&mtu), "mtu {mtu}");
                }
                // the same input parses the same way
                assert_eq!(NetworkOptions::parse(generic, default_parent).ok(), Some(o));
            }
            Err(e) => {
                let text = e.to_string();
                let named = match &e {
                    OptionError::Unknown { key } => text.contains(&format!("{key:?}")),
                    OptionError::Invalid { value, .. } => text.contains(value.as_str()),
                    OptionError::WrongKind { key, .. } => text.contains(key),
                    OptionError::BadParentName { name, .. } => text.contains(&format!("{name:?}")),
                    OptionError::Loopback(_) => text.contains(" lo "),
                    OptionError::Mtu(m) => text.contains(&format!("{m:?}")),
                    OptionError::HostLinkValue(v) => text.contains(&format!("{v:?}")),
                    OptionError::HostLinkMode { kind, .. } => {
                        text.contains("host_link") && text.contains(kind.as_str())
                    }
                    OptionError::HostLinkAddressWithDhcp(a) => {
                        text.contains(&format!("host_link={a}")) && text.contains("dhcp=on")
                    }
                    OptionError::DhcpOnL3(mode) => text.contains(mode),
                };
                assert!(named, "{e:?} renders as {text:?}");
            }
        }
    }
}
