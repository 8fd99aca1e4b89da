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
/// The message quotes the body around the error, so that a bad value the
/// JSON error cannot name (an array or object of the wrong type, a syntax
/// error) is still shown.
#[derive(Debug, thiserror::Error)]
#[error("invalid {call} request: {source}{near}")]
pub struct DecodeError {
    call: &'static str,
    #[source]
    source: serde_json::Error,
    near: String,
}

/// Bytes of the body quoted on each side of an error's position.
const NEAR: usize = 20;

/// ` near `...`` with the body around the (1-based) `line`/`column` of a
/// JSON error, or nothing when there is nothing to show.
fn near(body: &[u8], line: usize, column: usize) -> String {
    let line_start: usize = body
        .split(|b| *b == b'\n')
        .take(line.saturating_sub(1))
        .map(|l| l.len() + 1)
        .sum();
    let at = line_start.saturating_add(column).min(body.len());
    let from = at.saturating_sub(NEAR);
    let to = at.saturating_add(NEAR).min(body.len());
    let text: String = String::from_utf8_lossy(body.get(from..to).unwrap_or_default())
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.trim().is_empty() {
        return String::new();
    }
    let (pre, post) = (
        if from > 0 { "..." } else { "" },
        if to < body.len() { "..." } else { "" },
    );
    format!(" near `{pre}{text}{post}`")
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
    serde_json::from_slice(body).map_err(|source| DecodeError {
        call,
        near: near(body, source.line(), source.column()),
        source,
    })
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

    fn message(body: &str) -> String {
        decode::<crate::ipam::RequestAddressRequest>("RequestAddress", body.as_bytes())
            .err()
            .map(|e| e.to_string())
            .unwrap()
    }

    #[test]
    fn decode_error_quotes_the_body_around_the_bad_value() {
        // serde_json cannot name an array where a map belongs
        let text = message(r#"{"PoolID":"local/10.81.0.0/30","Options":[1,2,3]}"#);
        assert!(text.contains("[1,2,3]"), "{text}");
        assert!(text.contains("near `..."), "{text}");
        let text = message("{\"PoolID\":\n  \"p\",\n  \"Options\": {\"a\": {\"b\": 1}}}");
        assert!(text.contains("line 3"), "{text}");
        assert!(text.contains(r#"{"b": 1}"#), "{text}");
        // control characters are not echoed
        let text = message("{\"PoolID\":\u{1}}");
        assert!(!text.contains('\u{1}'), "{text:?}");
        // a short body is shown whole, without ellipses
        let text = message("{");
        assert!(text.ends_with("near `{`"), "{text}");
        assert_eq!(near(b"   ", 1, 2), "");
        // short windows on multi-byte text stay valid UTF-8
        let text = message(&format!(r#"{{"PoolID":"{}","Options":7}}"#, "é".repeat(30)));
        assert!(text.contains("Options"), "{text}");
    }
}
