//! IpamDriver requests and responses (libnetwork `ipams/remote/api`).
//!
//! IPAM failures travel in the `Error` field, not `Err`: see
//! [`crate::ErrorResponse`], which carries both.

use crate::options::AddressOptions;
use crate::serde_util::{display, empty_none, null_default, string_map};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The plugin's local (per node) address space, as it names it in
/// `GetDefaultAddressSpaces` and the engine then names it in every pool.
pub const LOCAL_SPACE: &str = "local";
/// The plugin's Swarm (manager allocated) address space.
pub const GLOBAL_SPACE: &str = "global";

/// `/IpamDriver.GetCapabilities` response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilitiesResponse {
    /// Ask the engine for a MAC address in RequestAddress.
    #[serde(rename = "RequiresMACAddress", default)]
    pub requires_mac_address: bool,
    /// Ask the engine to replay RequestPool/RequestAddress at daemon start.
    #[serde(rename = "RequiresRequestReplay", default)]
    pub requires_request_replay: bool,
}

/// `/IpamDriver.GetDefaultAddressSpaces` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressSpacesResponse {
    /// Address space of local networks.
    #[serde(rename = "LocalDefaultAddressSpace")]
    pub local_default_address_space: String,
    /// Address space of Swarm (manager-allocated) networks.
    #[serde(rename = "GlobalDefaultAddressSpace")]
    pub global_default_address_space: String,
}

/// `/IpamDriver.RequestPool` request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestPoolRequest {
    /// The address space to allocate in.
    #[serde(rename = "AddressSpace", default, deserialize_with = "null_default")]
    pub address_space: String,
    /// `--subnet`, or unset to let the IPAM choose.
    #[serde(
        rename = "Pool",
        default,
        deserialize_with = "empty_none",
        serialize_with = "crate::serde_util::display_or_empty"
    )]
    pub pool: Option<IpNet>,
    /// `--ip-range`, dynamic addresses come from here.
    #[serde(
        rename = "SubPool",
        default,
        deserialize_with = "empty_none",
        serialize_with = "crate::serde_util::display_or_empty"
    )]
    pub sub_pool: Option<IpNet>,
    /// `--ipam-opt` options.
    #[serde(rename = "Options", default, deserialize_with = "string_map")]
    pub options: BTreeMap<String, String>,
    /// Whether an IPv6 pool is asked for.
    #[serde(rename = "V6", default)]
    pub v6: bool,
}

/// `/IpamDriver.RequestPool` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestPoolResponse {
    /// Opaque ID the engine passes back in later calls.
    #[serde(rename = "PoolID")]
    pub pool_id: String,
    /// The pool (the engine parses it as a prefix).
    #[serde(
        rename = "Pool",
        deserialize_with = "crate::serde_util::parsed",
        serialize_with = "display"
    )]
    pub pool: IpNet,
    /// Extra data, e.g. a gateway the IPAM chose.
    #[serde(rename = "Data", default, deserialize_with = "string_map")]
    pub data: BTreeMap<String, String>,
}

/// `/IpamDriver.ReleasePool` request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleasePoolRequest {
    /// The pool; may be empty (then nothing happens).
    #[serde(rename = "PoolID", default, deserialize_with = "null_default")]
    pub pool_id: String,
}

/// `/IpamDriver.RequestAddress` request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestAddressRequest {
    /// The pool.
    #[serde(rename = "PoolID", default, deserialize_with = "null_default")]
    pub pool_id: String,
    /// A specific address (`--ip`, gateway, aux), or unset for any.
    #[serde(
        rename = "Address",
        default,
        deserialize_with = "ip_or_cidr",
        serialize_with = "crate::serde_util::display_or_empty"
    )]
    pub address: Option<IpAddr>,
    /// Options: `RequestAddressType`, serial allocation, endpoint name...
    #[serde(rename = "Options", default, deserialize_with = "string_map")]
    pub options: BTreeMap<String, String>,
}

impl RequestAddressRequest {
    /// The typed view of the options.
    pub fn address_options(&self) -> AddressOptions {
        AddressOptions::from_map(&self.options)
    }
}

/// `/IpamDriver.RequestAddress` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestAddressResponse {
    /// The address with the pool's prefix length (the engine requires CIDR).
    #[serde(
        rename = "Address",
        deserialize_with = "crate::serde_util::parsed",
        serialize_with = "display"
    )]
    pub address: IpNet,
    /// Extra data.
    #[serde(rename = "Data", default, deserialize_with = "string_map")]
    pub data: BTreeMap<String, String>,
}

/// `/IpamDriver.ReleaseAddress` request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseAddressRequest {
    /// The pool; may be empty (then nothing happens).
    #[serde(rename = "PoolID", default, deserialize_with = "null_default")]
    pub pool_id: String,
    /// The address to release.
    #[serde(
        rename = "Address",
        default,
        deserialize_with = "ip_or_cidr",
        serialize_with = "crate::serde_util::display_or_empty"
    )]
    pub address: Option<IpAddr>,
}

/// An address sent as plain text (what the engine sends) or as CIDR (what
/// some clients echo back from a response); `""` and `null` mean unset.
fn ip_or_cidr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IpAddr>, D::Error> {
    let Some(text) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<IpAddr>()
        .or_else(|_| text.parse::<IpNet>().map(|net| net.addr()))
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("invalid IP address {text:?}")))
}
