//! `protocol::Request::decode` for every call, on arbitrary bytes.
//!
//! Input: the first byte picks the call (`Call::ALL[b % 22]`), the rest is
//! the request body. Checked:
//! - decoding never panics, whatever the bytes;
//! - a refusal renders as a message that names the call;
//! - an accepted request re-encodes to JSON that decodes again, to the same
//!   value (floats aside: serde_json's default float parsing is not exact);
//! - the typed views the server uses on a request (MAC address, driver
//!   options, address kind, discovery data) never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::{Call, Request};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let call = Call::ALL[usize::from(which) % Call::ALL.len()];
    match Request::decode(call, body) {
        Ok(req) => check(call, &req),
        Err(e) => {
            let text = e.to_string();
            assert!(
                text.starts_with(&format!("invalid {} request: ", call.method())),
                "{text}"
            );
        }
    }
});

fn has_float(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Number(n) => n.is_f64(),
        serde_json::Value::Array(a) => a.iter().any(has_float),
        serde_json::Value::Object(o) => o.values().any(has_float),
        _ => false,
    }
}

/// Encode, decode again, and compare.
fn round_trip<T>(call: Call, value: &T)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let json = serde_json::to_vec(value).expect("a decoded request encodes");
    let again: T = match protocol::decode(call.method(), &json) {
        Ok(v) => v,
        Err(e) => panic!(
            "{value:?} encodes to {} which does not decode: {e}",
            String::from_utf8_lossy(&json)
        ),
    };
    let tree: serde_json::Value = serde_json::from_slice(&json).expect("encoded JSON parses");
    if !has_float(&tree) {
        assert_eq!(&again, value, "{}", String::from_utf8_lossy(&json));
    }
}

fn check(call: Call, req: &Request) {
    match req {
        Request::Activate
        | Request::GetCapabilities
        | Request::IpamGetCapabilities
        | Request::GetDefaultAddressSpaces => {}
        Request::GwAllocCheck(r) => round_trip(call, r),
        Request::AllocateNetwork(r) => round_trip(call, r),
        Request::FreeNetwork(r) | Request::DeleteNetwork(r) => round_trip(call, r),
        Request::CreateNetwork(r) => {
            round_trip(call, r);
            for d in &r.ipv4_data {
                assert!(d.check(false).is_ok(), "{d:?}");
            }
            for d in &r.ipv6_data {
                assert!(d.check(true).is_ok(), "{d:?}");
            }
        }
        Request::CreateEndpoint(r) => {
            round_trip(call, r);
            let _ = r.options.mac_address();
            let _ = r.options.driver_options();
            let _ = r.options.has_port_mappings();
        }
        Request::EndpointOperInfo(r)
        | Request::DeleteEndpoint(r)
        | Request::Leave(r)
        | Request::RevokeExternalConnectivity(r) => round_trip(call, r),
        Request::Join(r) => {
            round_trip(call, r);
            let _ = r.options.mac_address();
            let _ = r.options.driver_options();
        }
        Request::DiscoverNew(n) | Request::DiscoverDelete(n) => {
            round_trip(call, n);
            let _ = n.node();
        }
        Request::ProgramExternalConnectivity(r) => {
            round_trip(call, r);
            let _ = r.options.has_port_mappings();
        }
        Request::RequestPool(r) => round_trip(call, r),
        Request::ReleasePool(r) => round_trip(call, r),
        Request::RequestAddress(r) => {
            round_trip(call, r);
            let _ = r.address_options().kind();
        }
        Request::ReleaseAddress(r) => round_trip(call, r),
    }
}
