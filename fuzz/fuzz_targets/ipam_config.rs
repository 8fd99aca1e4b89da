//! The IPAM's own parsing: `DEFAULT_POOLS` entries (`ipam::DefaultPool`,
//! `BASE/LEN:SIZE`) and the typed view of RequestAddress options. The IPAM
//! requests themselves are decoded by `protocol` (target `decode`).
//!
//! Input: text. Checked: no panic; an accepted default pool is
//! well-formed (size between the base's length and the family's maximum,
//! base truncated) and prints back to text that parses to the same value.

#![no_main]

use ipam::DefaultPool;
use libfuzzer_sys::fuzz_target;
use protocol::options::AddressOptions;
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for entry in text.split(',') {
        match entry.parse::<DefaultPool>() {
            Ok(p) => {
                assert!(p.size >= p.base.prefix_len() && p.size <= p.base.max_prefix_len());
                assert_eq!(p.base, p.base.trunc());
                let again: DefaultPool = p.to_string().parse().expect("printed pool parses");
                assert_eq!(again, p);
            }
            Err(e) => assert!(!e.is_empty()),
        }
    }
    // RequestAddress options: key=value lines
    let map: BTreeMap<String, String> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let _ = AddressOptions::from_map(&map).kind();
});
