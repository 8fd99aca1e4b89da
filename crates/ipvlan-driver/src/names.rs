//! Names of the links this driver makes, and the randomness behind link
//! groups and MACs.

use std::collections::HashSet;

/// Name prefix of container links in the host namespace.
pub const SLAVE_PREFIX: &str = "ivr";
/// Name prefix of dummy parents.
pub const DUMMY_PREFIX: &str = "ivd";
/// Name prefix of host links (`-o host_link`).
pub const HOST_LINK_PREFIX: &str = "ivh";
/// Alias prefix of parents this driver created.
pub const ALIAS_PREFIX: &str = "ipvlan-rs:";

/// Host-side name of an endpoint's link.
pub fn slave_name(endpoint_id: &str) -> String {
    format!(
        "{SLAVE_PREFIX}{}",
        endpoint_id.chars().take(12).collect::<String>()
    )
}

/// A host-side link name for `endpoint_id` that no other live endpoint
/// uses: 12-character windows of the ID in turn (IDs sharing a prefix
/// still get distinct links), then a counter.
pub(crate) fn unique_slave_name(endpoint_id: &str, taken: &HashSet<String>) -> String {
    let chars: Vec<char> = endpoint_id.chars().collect();
    let windows = chars
        .chunks(12)
        .map(|w| format!("{SLAVE_PREFIX}{}", w.iter().collect::<String>()));
    let counter = (0u64..).map(|n| format!("{SLAVE_PREFIX}x{n:011x}"));
    windows
        .chain(counter)
        .find(|name| !taken.contains(name.as_str()))
        .unwrap_or_else(|| slave_name(endpoint_id))
}

/// Name of a network's dummy parent.
pub fn dummy_name(network_id: &str) -> String {
    network_link_name(DUMMY_PREFIX, network_id)
}

/// Name of a network's host link.
pub fn host_link_name(network_id: &str) -> String {
    network_link_name(HOST_LINK_PREFIX, network_id)
}

/// `prefix` + 12 characters of the network ID: 15 bytes, the kernel's limit.
fn network_link_name(prefix: &str, network_id: &str) -> String {
    format!(
        "{prefix}{}",
        network_id.chars().take(12).collect::<String>()
    )
}

pub(crate) fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    random_bytes(&mut b);
    u32::from_be_bytes(b)
}

/// Fills `buf` from /dev/urandom; without it, from the clock and pid, which
/// still differ between instances and calls.
pub(crate) fn random_bytes(buf: &mut [u8]) {
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| {
        use std::io::Read;
        f.read_exact(buf)
    });
    if read.is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let seed = (nanos ^ u128::from(std::process::id())).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for (b, s) in buf.iter_mut().zip(seed.to_le_bytes().iter().cycle()) {
            *b = *s;
        }
    }
}

/// A random unicast, locally administered MAC, as the kernel gives a new
/// macvlan link.
pub(crate) fn random_mac() -> [u8; 6] {
    let mut mac = [0u8; 6];
    random_bytes(&mut mac);
    mac[0] = (mac[0] & 0xfe) | 0x02;
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slave_names_fit_and_stay_unique() {
        let a = "2d8f9f27cfc80e68eb2a47f12e21c334c81901d1abdf85fff2ba94fb012ff37c";
        assert_eq!(slave_name(a), "ivr2d8f9f27cfc8");
        assert!(slave_name(a).len() <= 15);
        let mut taken = std::collections::HashSet::new();
        taken.insert("ivr2d8f9f27cfc8".to_string());
        let b = unique_slave_name(a, &taken);
        assert_eq!(b, "ivr0e68eb2a47f1");
        taken.insert(b);
        let short = unique_slave_name("2d8f9f27cfc8", &taken);
        assert!(short.starts_with("ivrx") && short.len() == 15, "{short}");
    }
}
