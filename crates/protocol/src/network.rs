//! NetworkDriver requests and responses (libnetwork `drivers/remote/api`).

mod endpoint;
mod join;

pub use endpoint::{
    CreateEndpointRequest, CreateEndpointResponse, DeleteEndpointRequest, EndpointInfoRequest,
    EndpointInfoResponse, EndpointInterface, EndpointRequest, LeaveRequest,
    RevokeExternalConnectivityRequest,
};
pub use join::{
    InterfaceName, JoinRequest, JoinResponse, ProgramExternalConnectivityRequest, RouteType,
    StaticRoute,
};

use crate::options::NetworkOptions;
use crate::serde_util::{empty_none, null_default, parsed, string_map};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The ID as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;

            fn try_from(s: String) -> Result<Self, InvalidId> {
                validate_id($field, &s)?;
                Ok($name(s))
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;

            fn from_str(s: &str) -> Result<Self, InvalidId> {
                $name::try_from(s.to_string())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A network ID: 64 hex digits for local networks, 25 base-36 characters
    /// for Swarm networks.
    NetworkId,
    "NetworkID"
);
impl NetworkId {
    /// Whether the engine named the network as Swarm does: 25 lowercase
    /// base-36 characters (swarmkit's IDs); local networks have 64 hex
    /// digits.
    pub fn is_swarm(&self) -> bool {
        self.0.len() == 25
            && self
                .0
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    }
}

id_type!(
    /// An endpoint ID (64 hex digits).
    EndpointId,
    "EndpointID"
);

/// An ID that is empty, too long, or has characters no engine ID has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field} {value:?}: expected 1 to 128 letters, digits, '-', '_' or '.'")]
pub struct InvalidId {
    field: &'static str,
    value: String,
}

fn validate_id(field: &'static str, s: &str) -> Result<(), InvalidId> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(InvalidId {
            field,
            value: s.to_string(),
        })
    }
}

/// Who allocates resources (`Scope`) and how far connectivity reaches
/// (`ConnectivityScope`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Per node.
    #[default]
    Local,
    /// Cluster wide (the Swarm manager allocates).
    Global,
}

impl std::str::FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "local" => Ok(Scope::Local),
            "global" => Ok(Scope::Global),
            other => Err(format!(
                "invalid scope {other:?}: expected \"local\" or \"global\""
            )),
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scope::Local => "local",
            Scope::Global => "global",
        })
    }
}

/// `/NetworkDriver.GetCapabilities` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilitiesResponse {
    /// `local` or `global`; `global` makes the Swarm manager allocate.
    #[serde(rename = "Scope")]
    pub scope: Scope,
    /// Reach of connectivity; `global` enables cluster-wide service discovery.
    #[serde(rename = "ConnectivityScope")]
    pub connectivity_scope: Scope,
    /// Docker >= 28: ask the driver whether to reserve gateway addresses.
    #[serde(rename = "GwAllocChecker", default)]
    pub gw_alloc_checker: bool,
}

/// IPAM data of one subnet, as the engine passes it to the network driver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamData {
    /// Address space of the pool (`local`, `global`, `LocalDefault`...).
    #[serde(rename = "AddressSpace", default)]
    pub address_space: String,
    /// The subnet.
    #[serde(
        rename = "Pool",
        deserialize_with = "parsed",
        serialize_with = "crate::serde_util::display"
    )]
    pub pool: IpNet,
    /// The gateway with the pool's prefix length, when one was reserved.
    #[serde(
        rename = "Gateway",
        default,
        deserialize_with = "empty_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub gateway: Option<IpNet>,
    /// `--aux-address` entries, each with the pool's prefix length.
    #[serde(
        rename = "AuxAddresses",
        default,
        deserialize_with = "aux_addresses",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub aux_addresses: BTreeMap<String, IpNet>,
}

impl IpamData {
    /// Check that the pool is of the family of the list it came in
    /// (`IPv4Data` or `IPv6Data`) and that the gateway and the auxiliary
    /// addresses lie inside it. The engine checks this itself before it
    /// calls; a request that breaks it would make Join answer a gateway the
    /// container cannot reach.
    pub fn check(&self, v6: bool) -> Result<(), String> {
        let (list, family) = if v6 {
            ("IPv6Data", "IPv6")
        } else {
            ("IPv4Data", "IPv4")
        };
        let pool = self.pool.trunc();
        if matches!(pool, IpNet::V6(_)) != v6 {
            return Err(format!("{list} pool {} is not an {family} pool", self.pool));
        }
        if let Some(gw) = &self.gateway
            && !pool.contains(&gw.addr())
        {
            return Err(format!("gateway {gw} is not in pool {}", self.pool));
        }
        if let Some((name, aux)) = self
            .aux_addresses
            .iter()
            .find(|(_, aux)| !pool.contains(&aux.addr()))
        {
            return Err(format!(
                "aux address {name}={aux} is not in pool {}",
                self.pool
            ));
        }
        Ok(())
    }
}

/// `IPv4Data`: `null` is empty, and every entry passes [`IpamData::check`].
fn ipv4_data<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<IpamData>, D::Error> {
    checked_ipam_data(d, false)
}

/// `IPv6Data`: `null` is empty, and every entry passes [`IpamData::check`].
fn ipv6_data<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<IpamData>, D::Error> {
    checked_ipam_data(d, true)
}

fn checked_ipam_data<'de, D: serde::Deserializer<'de>>(
    d: D,
    v6: bool,
) -> Result<Vec<IpamData>, D::Error> {
    let list: Vec<IpamData> = null_default(d)?;
    for data in &list {
        data.check(v6).map_err(serde::de::Error::custom)?;
    }
    Ok(list)
}

fn aux_addresses<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, IpNet>, D::Error> {
    string_map(d)?
        .into_iter()
        .map(|(k, v)| {
            v.parse()
                .map(|net| (k.clone(), net))
                .map_err(|e| serde::de::Error::custom(format!("aux address {k}={v:?}: {e}")))
        })
        .collect()
}

/// `/NetworkDriver.GwAllocCheck` request (Docker >= 28).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GwAllocCheckRequest {
    /// The same options CreateNetwork will get.
    #[serde(rename = "Options", default)]
    pub options: NetworkOptions,
}

/// `/NetworkDriver.GwAllocCheck` response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GwAllocCheckResponse {
    /// Do not reserve an IPv4 gateway unless the user gave one.
    #[serde(rename = "SkipIPv4")]
    pub skip_ipv4: bool,
    /// Do not reserve an IPv6 gateway unless the user gave one.
    #[serde(rename = "SkipIPv6")]
    pub skip_ipv6: bool,
}

/// `/NetworkDriver.AllocateNetwork` request (Swarm manager, global scope).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocateNetworkRequest {
    /// The Swarm network.
    #[serde(rename = "NetworkID")]
    pub network_id: NetworkId,
    /// Driver options of the network spec (a flat string map).
    #[serde(rename = "Options", default, deserialize_with = "string_map")]
    pub options: BTreeMap<String, String>,
    /// IPv4 pools the manager allocated.
    #[serde(rename = "IPv4Data", default, deserialize_with = "ipv4_data")]
    pub ipv4_data: Vec<IpamData>,
    /// Always null from current engines.
    #[serde(rename = "IPv6Data", default, deserialize_with = "ipv6_data")]
    pub ipv6_data: Vec<IpamData>,
}

/// `/NetworkDriver.AllocateNetwork` response: the options every node's
/// CreateNetwork will receive as `com.docker.network.generic`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocateNetworkResponse {
    /// Driver state options.
    #[serde(rename = "Options", default, deserialize_with = "string_map")]
    pub options: BTreeMap<String, String>,
}

/// A request naming only a network: FreeNetwork, DeleteNetwork.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRequest {
    /// The network.
    #[serde(rename = "NetworkID")]
    pub network_id: NetworkId,
}

/// `/NetworkDriver.FreeNetwork` request.
pub type FreeNetworkRequest = NetworkRequest;
/// `/NetworkDriver.DeleteNetwork` request.
pub type DeleteNetworkRequest = NetworkRequest;

/// `/NetworkDriver.CreateNetwork` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateNetworkRequest {
    /// The network.
    #[serde(rename = "NetworkID")]
    pub network_id: NetworkId,
    /// Driver options and engine flags.
    #[serde(rename = "Options", default)]
    pub options: NetworkOptions,
    /// IPv4 subnets.
    #[serde(rename = "IPv4Data", default, deserialize_with = "ipv4_data")]
    pub ipv4_data: Vec<IpamData>,
    /// IPv6 subnets.
    #[serde(rename = "IPv6Data", default, deserialize_with = "ipv6_data")]
    pub ipv6_data: Vec<IpamData>,
}

/// `/NetworkDriver.DiscoverNew` and `DiscoverDelete` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscoveryNotification {
    /// 1 = node discovery (the only type forwarded to remote drivers).
    #[serde(rename = "DiscoveryType", default)]
    pub discovery_type: u32,
    /// Type-specific data.
    #[serde(rename = "DiscoveryData", default)]
    pub discovery_data: serde_json::Value,
}

/// The node discovery type.
pub const NODE_DISCOVERY: u32 = 1;

/// `DiscoveryData` of a node discovery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeDiscoveryData {
    /// The node's address.
    #[serde(rename = "Address", default)]
    pub address: String,
    /// The address the node binds to.
    #[serde(rename = "BindAddress", default)]
    pub bind_address: String,
    /// Whether this is the local node.
    #[serde(rename = "Self", default)]
    pub is_self: bool,
}

impl DiscoveryNotification {
    /// The node data, for node discoveries.
    pub fn node(&self) -> Option<NodeDiscoveryData> {
        if self.discovery_type != NODE_DISCOVERY {
            return None;
        }
        serde_json::from_value(self.discovery_data.clone()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(ipv4: &str, ipv6: &str) -> Result<CreateNetworkRequest, String> {
        let body = format!(r#"{{"NetworkID":"n1","IPv4Data":{ipv4},"IPv6Data":{ipv6}}}"#);
        crate::decode("CreateNetwork", body.as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn gateway_and_aux_addresses_must_be_in_the_pool() {
        let ok = create(
            r#"[{"AddressSpace":"local","Pool":"10.96.0.0/24","Gateway":"10.96.0.1/24","AuxAddresses":{"a":"10.96.0.5/24"}}]"#,
            r#"[{"AddressSpace":"local","Pool":"fd00:95::/64","Gateway":"fd00:95::1/64"}]"#,
        );
        assert!(ok.is_ok(), "{ok:?}");
        let err = create(
            r#"[{"AddressSpace":"local","Pool":"10.80.0.0/24","Gateway":"10.99.0.1/24"}]"#,
            "[]",
        )
        .unwrap_err();
        assert!(
            err.contains("gateway 10.99.0.1/24") && err.contains("10.80.0.0/24"),
            "{err}"
        );
        let err = create(
            r#"[{"AddressSpace":"local","Pool":"10.80.0.0/24","AuxAddresses":{"x":"10.98.0.5/24"}}]"#,
            "null",
        )
        .unwrap_err();
        assert!(err.contains("x=10.98.0.5/24"), "{err}");
        let err = create(
            "[]",
            r#"[{"AddressSpace":"local","Pool":"fd00::/64","Gateway":"fd01::1/64"}]"#,
        )
        .unwrap_err();
        assert!(err.contains("fd01::1/64"), "{err}");
    }

    #[test]
    fn pools_must_be_of_their_lists_family() {
        let err = create(r#"[{"Pool":"fd00::/64"}]"#, "[]").unwrap_err();
        assert!(err.contains("IPv4Data pool fd00::/64"), "{err}");
        let err = create("[]", r#"[{"Pool":"10.0.0.0/24"}]"#).unwrap_err();
        assert!(err.contains("IPv6Data pool 10.0.0.0/24"), "{err}");
        let err = crate::decode::<AllocateNetworkRequest>(
            "AllocateNetwork",
            br#"{"NetworkID":"n1","IPv4Data":[{"Pool":"10.0.0.0/24","Gateway":"10.0.1.1/24"}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("gateway 10.0.1.1/24"), "{err}");
    }
}
