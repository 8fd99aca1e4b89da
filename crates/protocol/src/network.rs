//! NetworkDriver requests and responses (libnetwork `drivers/remote/api`).

use crate::MacAddress;
use crate::options::{EndpointOptions, NetworkOptions};
use crate::serde_util::{display_or_empty, empty_none, null_default, parsed, string_map};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Per node.
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

/// The addresses of an endpoint's interface (CIDR; empty means unset).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointInterface {
    /// IPv4 address with prefix length.
    #[serde(
        rename = "Address",
        default,
        deserialize_with = "empty_none",
        serialize_with = "display_or_empty"
    )]
    pub address: Option<IpNet>,
    /// IPv6 address with prefix length.
    #[serde(
        rename = "AddressIPv6",
        default,
        deserialize_with = "empty_none",
        serialize_with = "display_or_empty"
    )]
    pub address_ipv6: Option<IpNet>,
    /// MAC address (only when the user or the IPAM asked for one).
    #[serde(
        rename = "MacAddress",
        default,
        deserialize_with = "empty_none",
        serialize_with = "display_or_empty"
    )]
    pub mac_address: Option<MacAddress>,
}

/// `/NetworkDriver.CreateEndpoint` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateEndpointRequest {
    /// The network.
    #[serde(rename = "NetworkID")]
    pub network_id: NetworkId,
    /// The endpoint.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: EndpointId,
    /// Addresses the engine's IPAM call gave the endpoint.
    #[serde(rename = "Interface", default, deserialize_with = "null_default")]
    pub interface: EndpointInterface,
    /// Endpoint options (driver options, port maps, user MAC).
    #[serde(rename = "Options", default)]
    pub options: EndpointOptions,
}

/// `/NetworkDriver.CreateEndpoint` response. `Interface` stays unset: the
/// driver never changes what the engine's IPAM assigned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateEndpointResponse {
    /// Addresses the driver chose (only where the engine had none).
    #[serde(rename = "Interface", default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<EndpointInterface>,
}

/// A request naming an endpoint: EndpointOperInfo, Leave, DeleteEndpoint,
/// RevokeExternalConnectivity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRequest {
    /// The network.
    #[serde(rename = "NetworkID")]
    pub network_id: NetworkId,
    /// The endpoint.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: EndpointId,
}

/// `/NetworkDriver.EndpointOperInfo` request.
pub type EndpointInfoRequest = EndpointRequest;
/// `/NetworkDriver.Leave` request.
pub type LeaveRequest = EndpointRequest;
/// `/NetworkDriver.DeleteEndpoint` request.
pub type DeleteEndpointRequest = EndpointRequest;
/// `/NetworkDriver.RevokeExternalConnectivity` request.
pub type RevokeExternalConnectivityRequest = EndpointRequest;

/// `/NetworkDriver.EndpointOperInfo` response: free-form facts shown by
/// `docker inspect`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointInfoResponse {
    /// Key/value facts about the endpoint.
    #[serde(rename = "Value", default, deserialize_with = "null_default")]
    pub value: BTreeMap<String, serde_json::Value>,
}

/// `/NetworkDriver.Join` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JoinRequest {
    /// The network.
    #[serde(rename = "NetworkID")]
    pub network_id: NetworkId,
    /// The endpoint.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: EndpointId,
    /// Path of the container's network namespace.
    #[serde(rename = "SandboxKey", default, deserialize_with = "null_default")]
    pub sandbox_key: String,
    /// Sandbox options.
    #[serde(rename = "Options", default)]
    pub options: EndpointOptions,
}

/// The link the engine moves into the container and the name prefix it gets
/// there (`eth` -> `eth0`, `eth1`...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceName {
    /// The link's name in the host namespace.
    #[serde(rename = "SrcName")]
    pub src_name: String,
    /// The name prefix inside the container.
    #[serde(rename = "DstPrefix")]
    pub dst_prefix: String,
}

/// How a static route reaches its destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
pub enum RouteType {
    /// Through `NextHop` (libnetwork `NEXTHOP` = 0).
    NextHop,
    /// Directly on the interface (libnetwork `CONNECTED` = 1).
    Connected,
}

impl From<RouteType> for u8 {
    fn from(t: RouteType) -> u8 {
        match t {
            RouteType::NextHop => 0,
            RouteType::Connected => 1,
        }
    }
}

impl TryFrom<u8> for RouteType {
    type Error = String;

    fn try_from(v: u8) -> Result<Self, String> {
        match v {
            0 => Ok(RouteType::NextHop),
            1 => Ok(RouteType::Connected),
            other => Err(format!("invalid RouteType {other}: expected 0 or 1")),
        }
    }
}

/// A route the engine installs in the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaticRoute {
    /// Destination prefix.
    #[serde(
        rename = "Destination",
        deserialize_with = "parsed",
        serialize_with = "crate::serde_util::display"
    )]
    pub destination: IpNet,
    /// Connected or via a next hop.
    #[serde(rename = "RouteType")]
    pub route_type: RouteType,
    /// Next hop for [`RouteType::NextHop`].
    #[serde(
        rename = "NextHop",
        default,
        deserialize_with = "empty_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub next_hop: Option<IpAddr>,
}

/// `/NetworkDriver.Join` response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinResponse {
    /// The link to move into the container.
    #[serde(
        rename = "InterfaceName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub interface_name: Option<InterfaceName>,
    /// IPv4 default gateway (plain address).
    #[serde(
        rename = "Gateway",
        default,
        deserialize_with = "empty_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub gateway: Option<IpAddr>,
    /// IPv6 default gateway (plain address).
    #[serde(
        rename = "GatewayIPv6",
        default,
        deserialize_with = "empty_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub gateway_ipv6: Option<IpAddr>,
    /// Extra routes.
    #[serde(
        rename = "StaticRoutes",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub static_routes: Vec<StaticRoute>,
    /// Do not attach the container to `docker_gwbridge` for a default route.
    #[serde(rename = "DisableGatewayService", default)]
    pub disable_gateway_service: bool,
}

/// `/NetworkDriver.ProgramExternalConnectivity` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramExternalConnectivityRequest {
    /// The network.
    #[serde(rename = "NetworkID")]
    pub network_id: NetworkId,
    /// The endpoint.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: EndpointId,
    /// Sandbox options (port maps...).
    #[serde(rename = "Options", default)]
    pub options: EndpointOptions,
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
