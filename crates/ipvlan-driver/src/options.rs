//! Network options (`docker network create -o ...`) parsed into typed
//! configuration before anything touches the kernel.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

/// `-o parent=`.
pub const PARENT: &str = "parent";
/// `-o ipvlan_mode=`.
pub const IPVLAN_MODE: &str = "ipvlan_mode";
/// `-o ipvlan_flag=`.
pub const IPVLAN_FLAG: &str = "ipvlan_flag";
/// `-o kind=`.
pub const KIND: &str = "kind";
/// `-o macvlan_mode=`.
pub const MACVLAN_MODE: &str = "macvlan_mode";
/// `-o host_link=on|ADDR`: a link of the host's own on the parent, so the
/// host reaches the network's containers (see `host_link.rs`).
pub const HOST_LINK: &str = "host_link";
/// `-o dhcp=on`: addresses from the LAN's DHCP server.
pub const DHCP: &str = "dhcp";
/// Every option key a network accepts.
pub const KNOWN_KEYS: &[&str] = &[
    PARENT,
    IPVLAN_MODE,
    IPVLAN_FLAG,
    KIND,
    MACVLAN_MODE,
    protocol::options::MTU,
    HOST_LINK,
    DHCP,
];

/// A network option that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    /// A key this driver does not know.
    #[error("unknown option {key:?}: valid options are {}", KNOWN_KEYS.join(", "))]
    Unknown {
        /// The key.
        key: String,
    },
    /// A value outside the allowed set.
    #[error("requested {what} '{value}' is not valid, allowed: {allowed}")]
    Invalid {
        /// What the option sets.
        what: &'static str,
        /// The value given.
        value: String,
        /// The allowed values.
        allowed: &'static str,
    },
    /// An option that only applies to the other link kind.
    #[error("option {key:?} applies to kind={applies_to}, but this network is kind={kind}")]
    WrongKind {
        /// The key.
        key: &'static str,
        /// The kind the key applies to.
        applies_to: &'static str,
        /// This network's kind.
        kind: &'static str,
    },
    /// A parent name the kernel cannot have.
    #[error("invalid parent interface name {name:?}: {why}")]
    BadParentName {
        /// The name.
        name: String,
        /// Why it is invalid.
        why: &'static str,
    },
    /// The loopback interface.
    #[error("loopback interface lo is not a valid {0} parent link")]
    Loopback(&'static str),
    /// An MTU that is not a number in range.
    #[error("invalid mtu {0:?}: expected a number from 68 to 65535")]
    Mtu(String),
    /// `host_link=` neither `on`/`off` nor an IPv4 address.
    #[error(
        "invalid host_link {0:?}: expected on, off or an IPv4 address of the network's subnet (e.g. host_link=192.168.1.250)"
    )]
    HostLinkValue(String),
    /// `host_link` on a kind whose links cannot reach their siblings.
    #[error(
        "option host_link needs links that reach each other on the parent, which {kind} links do not; use {instead}, or drop host_link"
    )]
    HostLinkMode {
        /// The network's kind, mode and flag.
        kind: String,
        /// What works instead.
        instead: &'static str,
    },
    /// `host_link=ADDR` on a `dhcp=on` network.
    #[error(
        "option host_link={0} cannot be combined with dhcp=on: the DHCP server owns the network's addresses; use host_link=on, which leases the host link's address from the server"
    )]
    HostLinkAddressWithDhcp(Ipv4Addr),
    /// DHCP on a routed (L3) ipvlan network.
    #[error(
        "dhcp=on needs a network on the LAN's broadcast domain: ipvlan_mode={0} routes instead; use ipvlan_mode=l2 or kind=macvlan"
    )]
    DhcpOnL3(&'static str),
}

/// The ipvlan mode: a property of the parent, shared by all its slaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpvlanMode {
    /// Switching on the parent; the container's default route goes via a gateway.
    L2,
    /// Routing on the parent; connected default route.
    L3,
    /// Like L3, with netfilter on the host (symmetric).
    L3s,
}

/// The ipvlan flag: how slaves of one parent reach each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpvlanFlag {
    /// Slaves talk to each other directly.
    Bridge,
    /// Slaves cannot talk to each other.
    Private,
    /// Traffic between slaves goes out through the parent.
    Vepa,
}

/// The macvlan mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MacvlanMode {
    /// Slaves talk to each other directly.
    Bridge,
    /// Slaves cannot talk to each other.
    Private,
    /// Traffic between slaves goes out through the parent.
    Vepa,
    /// One slave takes over the parent exclusively.
    Passthru,
}

/// The kind of link a container gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum LinkKind {
    /// An ipvlan slave (shares the parent's MAC address).
    IpVlan {
        /// L2, L3 or L3S.
        mode: IpvlanMode,
        /// Bridge, private or VEPA.
        flag: IpvlanFlag,
    },
    /// A macvlan slave (its own MAC address).
    MacVlan {
        /// Bridge, private, VEPA or passthru.
        mode: MacvlanMode,
    },
}

impl LinkKind {
    /// `ipvlan` or `macvlan`.
    pub fn name(&self) -> &'static str {
        match self {
            LinkKind::IpVlan { .. } => "ipvlan",
            LinkKind::MacVlan { .. } => "macvlan",
        }
    }

    /// Whether the link is a macvlan in passthru mode (one per parent,
    /// sharing the parent's MAC).
    pub fn is_passthru(&self) -> bool {
        matches!(
            self,
            LinkKind::MacVlan {
                mode: MacvlanMode::Passthru
            }
        )
    }

    /// Whether containers route (L3/L3S) rather than switch.
    pub fn is_l3(&self) -> bool {
        matches!(
            self,
            LinkKind::IpVlan {
                mode: IpvlanMode::L3 | IpvlanMode::L3s,
                ..
            }
        )
    }
}

impl fmt::Display for LinkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkKind::IpVlan { mode, flag } => {
                write!(f, "ipvlan {} {}", mode.as_str(), flag.as_str())
            }
            LinkKind::MacVlan { mode } => write!(f, "macvlan {}", mode.as_str()),
        }
    }
}

macro_rules! str_enum {
    ($ty:ident, $what:literal, $allowed:literal, { $($text:literal => $variant:ident),* }) => {
        impl $ty {
            /// The option value.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $text),* }
            }

            fn parse(value: &str) -> Result<Self, OptionError> {
                match value.to_ascii_lowercase().as_str() {
                    $($text => Ok($ty::$variant),)*
                    _ => Err(OptionError::Invalid { what: $what, value: value.to_string(), allowed: $allowed }),
                }
            }
        }
    };
}

str_enum!(IpvlanMode, "ipvlan mode", "l2 (the default), l3, l3s", { "l2" => L2, "l3" => L3, "l3s" => L3s });
str_enum!(IpvlanFlag, "ipvlan flag", "bridge (the default), private, vepa", { "bridge" => Bridge, "private" => Private, "vepa" => Vepa });
str_enum!(MacvlanMode, "macvlan mode", "bridge (the default), private, vepa, passthru", { "bridge" => Bridge, "private" => Private, "vepa" => Vepa, "passthru" => Passthru });

/// How the parent interface was named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ParentSpec {
    /// No parent: a dummy link of our own, and the network is internal.
    None,
    /// `auto`: the interface of the host's default route.
    Auto,
    /// An interface name; `name.vid` may be created as an 802.1Q link.
    Named {
        /// The interface name.
        name: String,
    },
}

/// `-o host_link=`: where the host link's address comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum HostLinkOption {
    /// `on`: a free address of the network's pool, from the plugin's IPAM.
    On,
    /// The address the user gave.
    Address {
        /// The address.
        address: Ipv4Addr,
    },
}

/// The network configuration parsed from the options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkOptions {
    /// The parent as the user named it.
    pub parent: ParentSpec,
    /// The kind of link containers get.
    pub kind: LinkKind,
    /// MTU of container links (`None`: the parent's).
    pub mtu: Option<u32>,
    /// Addresses come from the LAN's DHCP server (`-o dhcp=on`); absent
    /// in records written before DHCP existed.
    #[serde(default)]
    pub dhcp: bool,
    /// A host link for the network (`None`: none, as before 0.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_link: Option<HostLinkOption>,
}

/// `host_link=` parsed; `None` for `off`. The kind must let the host link
/// reach its siblings: macvlan bridge, ipvlan with flag bridge (in l2
/// switched, in l3/l3s routed inside the port).
fn parse_host_link(value: &str, kind: &LinkKind) -> Result<Option<HostLinkOption>, OptionError> {
    let option = match value.to_ascii_lowercase().as_str() {
        "off" | "false" | "no" => return Ok(None),
        "on" | "true" | "yes" => HostLinkOption::On,
        _ => HostLinkOption::Address {
            address: value
                .parse()
                .map_err(|_| OptionError::HostLinkValue(value.to_string()))?,
        },
    };
    let instead = match kind {
        LinkKind::MacVlan {
            mode: MacvlanMode::Bridge,
        }
        | LinkKind::IpVlan {
            flag: IpvlanFlag::Bridge,
            ..
        } => return Ok(Some(option)),
        LinkKind::MacVlan { .. } => "macvlan_mode=bridge",
        LinkKind::IpVlan { .. } => "ipvlan_flag=bridge",
    };
    Err(OptionError::HostLinkMode {
        kind: kind.to_string(),
        instead,
    })
}

/// Split `name.vid` into the base interface and VLAN ID, if it has that form.
pub fn vlan_parts(name: &str) -> Option<(&str, u16)> {
    let (base, vid) = name.rsplit_once('.')?;
    let vid: u16 = vid.parse().ok()?;
    (!base.is_empty() && (1..=4094).contains(&vid)).then_some((base, vid))
}

/// The longest interface name the kernel takes (IFNAMSIZ less its NUL).
pub const IFNAME_MAX: usize = 15;

/// Check an interface name against the kernel's rules (`dev_valid_name`).
pub fn check_ifname(name: &str) -> Result<(), OptionError> {
    let bad = |why| {
        Err(OptionError::BadParentName {
            name: name.to_string(),
            why,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > IFNAME_MAX {
        return bad("longer than 15 bytes");
    }
    if name == "." || name == ".." {
        return bad("reserved name");
    }
    if name
        .bytes()
        .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return bad("contains '/', ':', white space or a control character");
    }
    Ok(())
}

impl NetworkOptions {
    /// Parse the generic options of CreateNetwork. `default_parent` applies
    /// when the options name none (plugin setting).
    pub fn parse(
        generic: &BTreeMap<String, String>,
        default_parent: Option<&str>,
    ) -> Result<Self, OptionError> {
        if let Some(key) = generic.keys().find(|k| !KNOWN_KEYS.contains(&k.as_str())) {
            return Err(OptionError::Unknown { key: key.clone() });
        }
        let get = |k: &str| generic.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let kind_value = get(KIND).unwrap_or("ipvlan");
        let kind = match kind_value.to_ascii_lowercase().as_str() {
            "ipvlan" => {
                if get(MACVLAN_MODE).is_some() {
                    return Err(OptionError::WrongKind {
                        key: MACVLAN_MODE,
                        applies_to: "macvlan",
                        kind: "ipvlan",
                    });
                }
                LinkKind::IpVlan {
                    mode: get(IPVLAN_MODE)
                        .map(IpvlanMode::parse)
                        .transpose()?
                        .unwrap_or(IpvlanMode::L2),
                    flag: get(IPVLAN_FLAG)
                        .map(IpvlanFlag::parse)
                        .transpose()?
                        .unwrap_or(IpvlanFlag::Bridge),
                }
            }
            "macvlan" => {
                for key in [IPVLAN_MODE, IPVLAN_FLAG] {
                    if get(key).is_some() {
                        return Err(OptionError::WrongKind {
                            key,
                            applies_to: "ipvlan",
                            kind: "macvlan",
                        });
                    }
                }
                LinkKind::MacVlan {
                    mode: get(MACVLAN_MODE)
                        .map(MacvlanMode::parse)
                        .transpose()?
                        .unwrap_or(MacvlanMode::Bridge),
                }
            }
            _ => {
                return Err(OptionError::Invalid {
                    what: "kind",
                    value: kind_value.to_string(),
                    allowed: "ipvlan (the default), macvlan",
                });
            }
        };
        let parent = match get(PARENT).or(default_parent.map(str::trim).filter(|p| !p.is_empty())) {
            None => ParentSpec::None,
            Some(p) if p.eq_ignore_ascii_case("auto") => ParentSpec::Auto,
            Some("lo") => return Err(OptionError::Loopback(kind.name())),
            Some(p) => {
                check_ifname(p)?;
                ParentSpec::Named {
                    name: p.to_string(),
                }
            }
        };
        let mtu = get(protocol::options::MTU)
            .map(|m| {
                m.parse::<u32>()
                    .ok()
                    .filter(|m| (68..=65535).contains(m))
                    .ok_or_else(|| OptionError::Mtu(m.into()))
            })
            .transpose()?;
        let host_link = match get(HOST_LINK) {
            Some(v) => parse_host_link(v, &kind)?,
            None => None,
        };
        let dhcp = match get(DHCP).map(str::to_ascii_lowercase).as_deref() {
            None | Some("off" | "false" | "no") => false,
            Some("on" | "true" | "yes") => true,
            Some(_) => {
                return Err(OptionError::Invalid {
                    what: "dhcp",
                    value: get(DHCP).unwrap_or_default().to_string(),
                    allowed: "on, off (the default)",
                });
            }
        };
        if dhcp
            && let LinkKind::IpVlan {
                mode: mode @ (IpvlanMode::L3 | IpvlanMode::L3s),
                ..
            } = kind
        {
            return Err(OptionError::DhcpOnL3(mode.as_str()));
        }
        if dhcp && let Some(HostLinkOption::Address { address }) = host_link {
            return Err(OptionError::HostLinkAddressWithDhcp(address));
        }
        Ok(NetworkOptions {
            parent,
            kind,
            mtu,
            host_link,
            dhcp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<NetworkOptions, OptionError> {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        NetworkOptions::parse(&map, None)
    }

    #[test]
    fn defaults_are_ipvlan_l2_bridge_without_parent() {
        let o = parse(&[]).unwrap();
        assert_eq!(
            o.kind,
            LinkKind::IpVlan {
                mode: IpvlanMode::L2,
                flag: IpvlanFlag::Bridge
            }
        );
        assert_eq!(o.parent, ParentSpec::None);
        assert_eq!(o.mtu, None);
    }

    #[test]
    fn every_mode_and_flag_parses() {
        for (m, mode) in [
            ("l2", IpvlanMode::L2),
            ("L3", IpvlanMode::L3),
            ("l3s", IpvlanMode::L3s),
        ] {
            for (f, flag) in [
                ("bridge", IpvlanFlag::Bridge),
                ("private", IpvlanFlag::Private),
                ("vepa", IpvlanFlag::Vepa),
            ] {
                let o =
                    parse(&[("parent", "eth0"), ("ipvlan_mode", m), ("ipvlan_flag", f)]).unwrap();
                assert_eq!(o.kind, LinkKind::IpVlan { mode, flag });
            }
        }
        for (m, mode) in [
            ("bridge", MacvlanMode::Bridge),
            ("private", MacvlanMode::Private),
            ("vepa", MacvlanMode::Vepa),
            ("passthru", MacvlanMode::Passthru),
        ] {
            let o = parse(&[("kind", "macvlan"), ("macvlan_mode", m)]).unwrap();
            assert_eq!(o.kind, LinkKind::MacVlan { mode });
        }
    }

    #[test]
    fn bad_values_name_the_value_and_the_allowed_ones() {
        let err = parse(&[("ipvlan_mode", "l4")]).unwrap_err().to_string();
        assert_eq!(
            err,
            "requested ipvlan mode 'l4' is not valid, allowed: l2 (the default), l3, l3s"
        );
        let err = parse(&[("ipvlan_flag", "open")]).unwrap_err().to_string();
        assert!(err.contains("'open'") && err.contains("private"), "{err}");
        let err = parse(&[("kind", "bridge")]).unwrap_err().to_string();
        assert!(err.contains("'bridge'") && err.contains("macvlan"), "{err}");
        // the value as given, not lower-cased
        let err = parse(&[("kind", "VXLAN")]).unwrap_err().to_string();
        assert!(err.contains("'VXLAN'"), "{err}");
        assert_eq!(
            parse(&[("kind", "MacVlan")]).unwrap().kind.name(),
            "macvlan"
        );
        let err = parse(&[("foo", "bar")]).unwrap_err().to_string();
        assert!(err.contains("\"foo\"") && err.contains("parent"), "{err}");
        let err = parse(&[("kind", "macvlan"), ("ipvlan_mode", "l3")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ipvlan_mode") && err.contains("kind=macvlan"),
            "{err}"
        );
        let err = parse(&[("macvlan_mode", "vepa")]).unwrap_err().to_string();
        assert!(err.contains("macvlan_mode"), "{err}");
        for bad in ["0", "67", "65536", "big"] {
            let err = parse(&[("com.docker.network.driver.mtu", bad)])
                .unwrap_err()
                .to_string();
            assert!(err.contains(bad), "{err}");
        }
        assert_eq!(
            parse(&[("com.docker.network.driver.mtu", "1400")])
                .unwrap()
                .mtu,
            Some(1400)
        );
    }

    #[test]
    fn parents() {
        assert_eq!(
            parse(&[("parent", "auto")]).unwrap().parent,
            ParentSpec::Auto
        );
        assert_eq!(
            parse(&[("parent", "eth0.10")]).unwrap().parent,
            ParentSpec::Named {
                name: "eth0.10".into()
            }
        );
        let err = parse(&[("parent", "lo")]).unwrap_err().to_string();
        assert_eq!(
            err,
            "loopback interface lo is not a valid ipvlan parent link"
        );
        for bad in ["averyveryverylongname", "a/b", "a b", ".."] {
            let err = parse(&[("parent", bad)]).unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
        let map = BTreeMap::new();
        let o = NetworkOptions::parse(&map, Some("hp0")).unwrap();
        assert_eq!(o.parent, ParentSpec::Named { name: "hp0".into() });
    }

    #[test]
    fn host_link_takes_on_off_or_an_ipv4_address() {
        let hl = |pairs: &[(&str, &str)]| parse(pairs).map(|o| o.host_link);
        assert_eq!(hl(&[]).unwrap(), None);
        assert_eq!(hl(&[("host_link", "off")]).unwrap(), None);
        assert_eq!(
            hl(&[("host_link", "ON")]).unwrap(),
            Some(HostLinkOption::On)
        );
        assert_eq!(
            hl(&[("host_link", "10.1.0.250")]).unwrap(),
            Some(HostLinkOption::Address {
                address: "10.1.0.250".parse().unwrap()
            })
        );
        for bad in ["10.1.0.256", "fd00::1", "10.1.0.5/24", "maybe"] {
            let err = hl(&[("host_link", bad)]).unwrap_err().to_string();
            assert!(err.contains(bad) && err.contains("host_link"), "{err}");
        }
    }

    #[test]
    fn host_link_is_refused_where_links_cannot_reach_their_siblings() {
        for (pairs, instead) in [
            (
                &[("kind", "macvlan"), ("macvlan_mode", "private")][..],
                "macvlan_mode=bridge",
            ),
            (&[("kind", "macvlan"), ("macvlan_mode", "vepa")], "bridge"),
            (
                &[("kind", "macvlan"), ("macvlan_mode", "passthru")],
                "bridge",
            ),
            (&[("ipvlan_flag", "private")], "ipvlan_flag=bridge"),
            (
                &[("ipvlan_mode", "l3"), ("ipvlan_flag", "vepa")],
                "ipvlan_flag=bridge",
            ),
        ] {
            let mut pairs = pairs.to_vec();
            pairs.push(("host_link", "on"));
            let err = parse(&pairs).unwrap_err().to_string();
            assert!(
                err.contains("option host_link") && err.contains(instead),
                "{err}"
            );
        }
        // the server owns a DHCP network's addresses: it leases the link's
        let leased = parse(&[("kind", "macvlan"), ("dhcp", "on"), ("host_link", "on")]).unwrap();
        assert_eq!(leased.host_link, Some(HostLinkOption::On));
        let err = parse(&[
            ("kind", "macvlan"),
            ("dhcp", "on"),
            ("host_link", "192.168.1.250"),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("host_link=192.168.1.250") && err.contains("dhcp=on"),
            "{err}"
        );
        for ok in [
            &[("kind", "macvlan")][..],
            &[("ipvlan_mode", "l2")],
            &[("ipvlan_mode", "l3")],
            &[("ipvlan_mode", "l3s")],
        ] {
            let mut pairs = ok.to_vec();
            pairs.push(("host_link", "on"));
            assert!(parse(&pairs).is_ok(), "{pairs:?}");
        }
    }

    #[test]
    fn dhcp_is_on_or_off_and_not_on_routed_ipvlan() {
        assert!(!parse(&[]).unwrap().dhcp);
        assert!(parse(&[("dhcp", "on")]).unwrap().dhcp);
        assert!(parse(&[("dhcp", "ON"), ("kind", "macvlan")]).unwrap().dhcp);
        assert!(!parse(&[("dhcp", "off")]).unwrap().dhcp);
        let err = parse(&[("dhcp", "maybe")]).unwrap_err().to_string();
        assert!(err.contains("'maybe'"), "{err}");
        for mode in ["l3", "l3s"] {
            let err = parse(&[("dhcp", "on"), ("ipvlan_mode", mode)])
                .unwrap_err()
                .to_string();
            assert!(err.contains(mode) && err.contains("l2"), "{err}");
        }
        // records written before the option existed read as off
        let old =
            r#"{"parent":{"type":"none"},"kind":{"kind":"macvlan","mode":"bridge"},"mtu":null}"#;
        assert!(!serde_json::from_str::<NetworkOptions>(old).unwrap().dhcp);
    }

    #[test]
    fn vlan_names() {
        assert_eq!(vlan_parts("eth0.10"), Some(("eth0", 10)));
        assert_eq!(vlan_parts("bond0.4094"), Some(("bond0", 4094)));
        assert_eq!(vlan_parts("eth0.0"), None);
        assert_eq!(vlan_parts("eth0.4095"), None);
        assert_eq!(vlan_parts("eth0"), None);
        assert_eq!(vlan_parts(".10"), None);
    }
}
