//! NetworkDriver join calls: Join's request and response (interface, gateways, static
//! routes) and ProgramExternalConnectivity.

use super::{EndpointId, NetworkId};
use crate::options::EndpointOptions;
use crate::serde_util::{empty_none, null_default, parsed};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

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
