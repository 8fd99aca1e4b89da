//! NetworkDriver endpoint calls: CreateEndpoint, EndpointOperInfo, DeleteEndpoint and the
//! requests that name only an endpoint.

use super::{EndpointId, NetworkId};
use crate::MacAddress;
use crate::options::EndpointOptions;
use crate::serde_util::{display_or_empty, empty_none, null_default};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
