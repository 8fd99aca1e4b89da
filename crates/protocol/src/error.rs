//! The error envelope and request decoding.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The body of every failed call.
///
/// Network calls read `Err`, IPAM calls read `Error` (libnetwork's
/// `ipams/remote/api` `Response`), and on a non-200 status the engine reads
/// `Err`; carrying both makes one shape right for every call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// Read by the engine for NetworkDriver calls and for non-200 statuses.
    #[serde(rename = "Err")]
    pub err: String,
    /// Read by the engine for IpamDriver calls.
    #[serde(rename = "Error")]
    pub error: String,
}

impl ErrorResponse {
    /// An error envelope carrying `message` in both fields.
    pub fn new(message: impl Into<String>) -> Self {
        let message = message.into();
        ErrorResponse {
            err: message.clone(),
            error: message,
        }
    }
}

/// A request body that could not be decoded into the call's request type.
#[derive(Debug, thiserror::Error)]
#[error("invalid {call} request: {source}")]
pub struct DecodeError {
    call: &'static str,
    #[source]
    source: serde_json::Error,
}

/// Decode a request body for `call` (a method name used in the message).
///
/// The engine sends no `Content-Type` and, for calls without arguments, an
/// empty body; an empty (or all-whitespace) body decodes as `{}`, so request
/// types whose fields are all optional accept it and the others name the
/// missing field.
pub fn decode<T: DeserializeOwned>(call: &'static str, body: &[u8]) -> Result<T, DecodeError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|source| DecodeError { call, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_envelope_carries_both_fields() {
        let json = serde_json::to_value(ErrorResponse::new("boom")).unwrap();
        assert_eq!(json, serde_json::json!({"Err": "boom", "Error": "boom"}));
    }

    #[test]
    fn decode_error_names_the_call() {
        let err = decode::<crate::network::DeleteNetworkRequest>("DeleteNetwork", b"{").err();
        let text = err.map(|e| e.to_string()).unwrap();
        assert!(text.starts_with("invalid DeleteNetwork request:"), "{text}");
    }
}
