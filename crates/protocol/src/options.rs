//! Option keys the engine uses, and typed views of the option maps.
//!
//! The engine's option maps are open-ended (`map[string]interface{}`); the
//! views here pick out the keys that carry meaning and keep the rest, so a
//! later engine's additions pass through unharmed.

use crate::mac::MacAddress;
use crate::serde_util::scalar_text;
use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::collections::BTreeMap;

/// `--opt` driver options of `docker network create` (a string map).
pub const GENERIC: &str = "com.docker.network.generic";
/// Whether the network has IPv4 (Docker >= 28; absent means enabled).
pub const ENABLE_IPV4: &str = "com.docker.network.enable_ipv4";
/// Whether the network has IPv6.
pub const ENABLE_IPV6: &str = "com.docker.network.enable_ipv6";
/// `--internal`: no external connectivity.
pub const INTERNAL: &str = "com.docker.network.internal";
/// The MTU driver option (`-o com.docker.network.driver.mtu=1400`).
pub const MTU: &str = "com.docker.network.driver.mtu";
/// RequestAddress option naming the kind of address asked for.
pub const REQUEST_ADDRESS_TYPE: &str = "RequestAddressType";
/// The value of [`REQUEST_ADDRESS_TYPE`] for a network's gateway; also the
/// RequestPool response `Data` key for a gateway the IPAM chose.
pub const GATEWAY: &str = "com.docker.network.gateway";
/// `"true"`: allocate addresses serially (set by the Swarm manager).
pub const IPAM_SERIAL: &str = "com.docker.network.ipam.serial";
/// The endpoint (container) name, in RequestAddress options (Docker >= 29).
pub const ENDPOINT_NAME: &str = "com.docker.network.endpoint.name";
/// A user MAC address: base64 bytes in endpoint options, text in IPAM options.
pub const ENDPOINT_MAC: &str = "com.docker.network.endpoint.macaddress";
/// Requested interface name inside the container.
pub const ENDPOINT_IFNAME: &str = "com.docker.network.endpoint.ifname";
/// Per-endpoint sysctls.
pub const ENDPOINT_SYSCTLS: &str = "com.docker.network.endpoint.sysctls";
/// Exposed ports (`--expose`), an array.
pub const EXPOSED_PORTS: &str = "com.docker.network.endpoint.exposedports";
/// Published ports (`-p`), an array.
pub const PORT_MAP: &str = "com.docker.network.portmap";

/// The `Options` of CreateNetwork and GwAllocCheck.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetworkOptions {
    /// `--opt` driver options.
    pub generic: BTreeMap<String, String>,
    /// `com.docker.network.enable_ipv4`; `None` on engines before 28.
    pub enable_ipv4: Option<bool>,
    /// `com.docker.network.enable_ipv6`.
    pub enable_ipv6: Option<bool>,
    /// `com.docker.network.internal`.
    pub internal: bool,
    /// Every other key, kept as sent.
    pub other: BTreeMap<String, Value>,
}

/// An option value of the wrong type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("option {key:?} has an invalid value {value}: {expected}")]
pub struct OptionTypeError {
    /// The option key.
    pub key: String,
    /// The value as JSON text.
    pub value: String,
    /// What was expected.
    pub expected: &'static str,
}

fn bool_value(key: &str, v: &Value) -> Result<Option<bool>, OptionTypeError> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Value::String(s) if s.eq_ignore_ascii_case("false") || s.is_empty() => Ok(Some(false)),
        other => Err(OptionTypeError {
            key: key.to_string(),
            value: other.to_string(),
            expected: "a boolean",
        }),
    }
}

fn type_error(key: &str, v: &Value, expected: &'static str) -> OptionTypeError {
    OptionTypeError {
        key: key.to_string(),
        value: v.to_string(),
        expected,
    }
}

impl NetworkOptions {
    /// Build the typed view from the raw map.
    pub fn from_map(map: BTreeMap<String, Value>) -> Result<Self, OptionTypeError> {
        let mut out = NetworkOptions::default();
        for (key, value) in map {
            match key.as_str() {
                GENERIC => {
                    out.generic = match &value {
                        Value::Null => BTreeMap::new(),
                        Value::Object(m) => m
                            .iter()
                            .filter_map(|(k, v)| match scalar_text(v) {
                                Ok(Some(t)) => Some(Ok((k.clone(), t))),
                                Ok(None) => None,
                                Err(_) => Some(Err(type_error(k, v, "a string"))),
                            })
                            .collect::<Result<_, _>>()?,
                        other => return Err(type_error(GENERIC, other, "a map of strings")),
                    }
                }
                ENABLE_IPV4 => out.enable_ipv4 = bool_value(&key, &value)?,
                ENABLE_IPV6 => out.enable_ipv6 = bool_value(&key, &value)?,
                INTERNAL => out.internal = bool_value(&key, &value)?.unwrap_or(false),
                _ => {
                    out.other.insert(key, value);
                }
            }
        }
        Ok(out)
    }

    /// The raw map form, as the engine sends it.
    pub fn to_map(&self) -> BTreeMap<String, Value> {
        let mut map = self.other.clone();
        let generic = self
            .generic
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())));
        map.insert(GENERIC.to_string(), Value::Object(generic.collect()));
        if let Some(v4) = self.enable_ipv4 {
            map.insert(ENABLE_IPV4.to_string(), Value::Bool(v4));
        }
        if let Some(v6) = self.enable_ipv6 {
            map.insert(ENABLE_IPV6.to_string(), Value::Bool(v6));
        }
        if self.internal {
            map.insert(INTERNAL.to_string(), Value::Bool(true));
        }
        map
    }
}

impl<'de> Deserialize<'de> for NetworkOptions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map: Option<BTreeMap<String, Value>> = Option::deserialize(d)?;
        NetworkOptions::from_map(map.unwrap_or_default()).map_err(serde::de::Error::custom)
    }
}

impl Serialize for NetworkOptions {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_map().serialize(s)
    }
}

/// The `Options` of CreateEndpoint, Join and ProgramExternalConnectivity:
/// endpoint and sandbox options with values of several types.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct EndpointOptions(pub BTreeMap<String, Value>);

impl<'de> Deserialize<'de> for EndpointOptions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map: Option<BTreeMap<String, Value>> = Option::deserialize(d)?;
        Ok(EndpointOptions(map.unwrap_or_default()))
    }
}

impl EndpointOptions {
    /// The user's `--mac-address`, which the engine sends as base64 bytes
    /// (Go's `net.HardwareAddr` JSON encoding); text form is accepted too.
    pub fn mac_address(&self) -> Result<Option<MacAddress>, OptionTypeError> {
        let Some(value) = self.0.get(ENDPOINT_MAC) else {
            return Ok(None);
        };
        let bad = || type_error(ENDPOINT_MAC, value, "a MAC address");
        match value {
            Value::Null => Ok(None),
            Value::String(s) if s.is_empty() => Ok(None),
            Value::String(s) => {
                if let Ok(mac) = s.parse() {
                    return Ok(Some(mac));
                }
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|_| bad())?;
                MacAddress::try_from(bytes.as_slice())
                    .map(Some)
                    .map_err(|_| bad())
            }
            _ => Err(bad()),
        }
    }

    /// `--driver-opt` values of the endpoint: string options outside the
    /// engine's own `com.docker.*` namespace.
    pub fn driver_options(&self) -> BTreeMap<String, String> {
        self.0
            .iter()
            .filter(|(k, _)| !k.starts_with("com.docker."))
            .filter_map(|(k, v)| Some((k.clone(), scalar_text(v).ok()??)))
            .collect()
    }

    /// Whether the user asked for published (`-p`) ports, which an ipvlan or
    /// macvlan network cannot provide.
    pub fn has_port_mappings(&self) -> bool {
        matches!(self.0.get(PORT_MAP), Some(Value::Array(a)) if !a.is_empty())
    }
}

/// What kind of address a RequestAddress asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressKind {
    /// The network's gateway (`RequestAddressType=com.docker.network.gateway`).
    Gateway,
    /// An endpoint or auxiliary address.
    Other,
}

/// The typed view of RequestAddress (and RequestPool) options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressOptions {
    /// `RequestAddressType`; `None` when absent.
    pub request_type: Option<String>,
    /// `com.docker.network.ipam.serial`; `None` when absent.
    pub serial: Option<bool>,
    /// `com.docker.network.endpoint.name` (Docker >= 29).
    pub endpoint_name: Option<String>,
    /// `com.docker.network.endpoint.macaddress`, text form.
    pub mac_address: Option<String>,
}

impl AddressOptions {
    /// Pick the known keys out of an IPAM option map.
    pub fn from_map(map: &BTreeMap<String, String>) -> Self {
        AddressOptions {
            request_type: map.get(REQUEST_ADDRESS_TYPE).cloned(),
            serial: map.get(IPAM_SERIAL).map(|v| v.eq_ignore_ascii_case("true")),
            endpoint_name: map.get(ENDPOINT_NAME).cloned(),
            mac_address: map.get(ENDPOINT_MAC).cloned(),
        }
    }

    /// Whether this asks for a gateway address.
    pub fn kind(&self) -> AddressKind {
        match self.request_type.as_deref() {
            Some(GATEWAY) => AddressKind::Gateway,
            _ => AddressKind::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts(v: Value) -> Result<NetworkOptions, serde_json::Error> {
        serde_json::from_value(v)
    }

    #[test]
    fn network_options_pick_known_keys_and_keep_the_rest() {
        let o = opts(json!({
            "com.docker.network.enable_ipv4": true,
            "com.docker.network.enable_ipv6": false,
            "com.docker.network.generic": {"parent": "eth0.10", "ipvlan_mode": "l3", "n": 1},
            "com.docker.network.internal": true,
            "com.docker.network.future": {"x": 1}
        }))
        .unwrap();
        assert_eq!(o.generic.get("parent").map(String::as_str), Some("eth0.10"));
        assert_eq!(o.generic.get("n").map(String::as_str), Some("1"));
        assert_eq!(o.enable_ipv4, Some(true));
        assert_eq!(o.enable_ipv6, Some(false));
        assert!(o.internal);
        assert!(o.other.contains_key("com.docker.network.future"));
        let back: NetworkOptions =
            serde_json::from_value(serde_json::to_value(&o).unwrap()).unwrap();
        assert_eq!(back, o);
    }

    #[test]
    fn null_and_missing_options_are_empty() {
        assert_eq!(opts(Value::Null).ok(), Some(NetworkOptions::default()));
        let o = opts(json!({"com.docker.network.generic": null})).unwrap();
        assert!(o.generic.is_empty());
        assert_eq!(o.enable_ipv4, None);
    }

    #[test]
    fn wrong_types_are_rejected_with_the_key() {
        let err = opts(json!({"com.docker.network.internal": 3}))
            .err()
            .map(|e| e.to_string());
        assert!(
            err.unwrap_or_default()
                .contains("com.docker.network.internal")
        );
        let err = opts(json!({"com.docker.network.generic": {"parent": ["a"]}})).err();
        assert!(
            err.map(|e| e.to_string())
                .unwrap_or_default()
                .contains("parent")
        );
        assert!(opts(json!({"com.docker.network.generic": "x"})).is_err());
    }

    #[test]
    fn endpoint_mac_is_base64_bytes() {
        // what the engine sent for --mac-address 02:00:00:00:00:50
        let e = EndpointOptions(
            [(ENDPOINT_MAC.to_string(), json!("AgAAAABQ"))]
                .into_iter()
                .collect(),
        );
        assert_eq!(
            e.mac_address().ok().flatten(),
            Some(MacAddress([2, 0, 0, 0, 0, 0x50]))
        );
        let e = EndpointOptions(
            [(ENDPOINT_MAC.to_string(), json!("02:00:00:00:00:51"))]
                .into_iter()
                .collect(),
        );
        assert_eq!(
            e.mac_address().ok().flatten(),
            Some(MacAddress([2, 0, 0, 0, 0, 0x51]))
        );
        let e = EndpointOptions(
            [(ENDPOINT_MAC.to_string(), json!("AAAA"))]
                .into_iter()
                .collect(),
        );
        assert!(e.mac_address().is_err());
        assert_eq!(EndpointOptions::default().mac_address().ok(), Some(None));
    }

    #[test]
    fn endpoint_driver_options_and_port_maps() {
        let e: EndpointOptions = serde_json::from_value(json!({
            "com.docker.network.portmap": [{"Proto": 6, "Port": 80}],
            "com.docker.network.endpoint.exposedports": [],
            "my.opt": "v"
        }))
        .unwrap();
        assert!(e.has_port_mappings());
        assert_eq!(
            e.driver_options().get("my.opt").map(String::as_str),
            Some("v")
        );
        assert_eq!(e.driver_options().len(), 1);
        let none: EndpointOptions = serde_json::from_value(Value::Null).unwrap();
        assert!(!none.has_port_mappings());
    }

    #[test]
    fn address_options() {
        let m: BTreeMap<String, String> = [
            (REQUEST_ADDRESS_TYPE.to_string(), GATEWAY.to_string()),
            (IPAM_SERIAL.to_string(), "true".to_string()),
            (ENDPOINT_NAME.to_string(), "web-1".to_string()),
        ]
        .into_iter()
        .collect();
        let o = AddressOptions::from_map(&m);
        assert_eq!(o.kind(), AddressKind::Gateway);
        assert_eq!(o.serial, Some(true));
        assert_eq!(o.endpoint_name.as_deref(), Some("web-1"));
        assert_eq!(
            AddressOptions::from_map(&BTreeMap::new()).kind(),
            AddressKind::Other
        );
    }
}
