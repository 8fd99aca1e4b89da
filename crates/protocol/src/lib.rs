//! Wire types of Docker's remote `NetworkDriver` and `IpamDriver` plugin
//! protocols, exactly as the engine (libnetwork, Docker 20.10 to 29) sends and
//! reads them.
//!
//! Job: turn request bodies into typed values and typed responses into JSON.
//! CIDR and address strings become [`ipnet::IpNet`] / [`std::net::IpAddr`] here,
//! at the edge, so nothing downstream handles raw strings.
//!
//! Invariants:
//! - Decoding is lenient where the engine is loose: unknown keys are ignored,
//!   `null` is accepted wherever the engine may send it, and an empty string
//!   means "not set" for optional addresses.
//! - Decoding is strict where a wrong value would do harm: IDs must be present
//!   and well formed, and addresses must parse.
//! - Every response serializes to a JSON object (never an empty body).
//!
//! This crate performs no I/O and knows nothing of HTTP, netlink or storage.

mod call;
mod error;
pub mod ipam;
mod mac;
pub mod network;
pub mod options;
mod request;
mod serde_util;

pub use call::Call;
pub use error::{DecodeError, ErrorResponse, decode};
pub use mac::{MacAddress, ParseMacError};
pub use network::{EndpointId, NetworkId};
pub use request::Request;

/// Response of the legacy (v1) `/Plugin.Activate` handshake.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ActivateResponse {
    /// The plugin subsystems implemented on this socket.
    #[serde(rename = "Implements")]
    pub implements: Vec<String>,
}

/// A response with no fields: serializes to `{}`, which the engine requires
/// (an empty body on HTTP 200 is a decode error in the engine).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EmptyResponse {}
