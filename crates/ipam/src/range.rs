//! Address arithmetic: addresses as integers, pools as inclusive ranges.

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address as an integer within its family.
pub fn to_int(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The address of integer `n` in the family of `like`.
pub fn from_int(n: u128, like: &IpNet) -> IpAddr {
    match like {
        IpNet::V4(_) => IpAddr::V4(Ipv4Addr::from(u32::try_from(n).unwrap_or(u32::MAX))),
        IpNet::V6(_) => IpAddr::V6(Ipv6Addr::from(n)),
    }
}

/// First and last address of a prefix, as integers.
pub fn bounds(net: &IpNet) -> (u128, u128) {
    (to_int(net.network()), to_int(net.broadcast()))
}

/// Why an address inside a pool can never be handed out.
pub fn reserved_role(pool: &IpNet, addr: IpAddr) -> Option<&'static str> {
    let (first, last) = bounds(pool);
    let n = to_int(addr);
    match pool {
        // /31 and /32 have no network or broadcast address (RFC 3021)
        IpNet::V4(p) if p.prefix_len() < 31 && n == first => Some("network address"),
        IpNet::V4(p) if p.prefix_len() < 31 && n == last => Some("broadcast address"),
        // the all-zero host is the Subnet-Router anycast address (RFC 4291 2.6.1)
        IpNet::V6(p) if p.prefix_len() < 127 && n == first => Some("subnet-router anycast address"),
        _ => None,
    }
}

/// The usable addresses of `pool` within `range` (a sub-pool or the pool
/// itself), as an inclusive integer range; `None` if nothing is usable.
pub fn usable(pool: &IpNet, range: &IpNet) -> Option<(u128, u128)> {
    let (mut lo, mut hi) = bounds(range);
    let (first, last) = bounds(pool);
    if reserved_role(pool, from_int(first, pool)).is_some() {
        lo = lo.max(first + 1);
    }
    if reserved_role(pool, from_int(last, pool)).is_some() {
        hi = hi.min(last - 1);
    }
    (lo <= hi).then_some((lo, hi))
}

/// What each address of `range` is in `pool`, for a range in which nothing
/// is usable (at most two addresses: the pool's first and last), e.g.
/// "10.0.0.255 is the broadcast address".
pub fn reserved_in(pool: &IpNet, range: &IpNet) -> String {
    let (lo, hi) = bounds(range);
    (lo..=hi.min(lo.saturating_add(1)))
        .map(|n| {
            let addr = from_int(n, range);
            match reserved_role(pool, addr) {
                Some(role) => format!("{addr} is the {role}"),
                None => format!("{addr} is usable"),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn v4_pools_skip_network_and_broadcast() {
        let p = net("10.0.0.0/24");
        assert_eq!(
            usable(&p, &p),
            Some((
                to_int("10.0.0.1".parse().unwrap()),
                to_int("10.0.0.254".parse().unwrap())
            ))
        );
        assert_eq!(
            reserved_role(&p, "10.0.0.0".parse().unwrap()),
            Some("network address")
        );
        assert_eq!(
            reserved_role(&p, "10.0.0.255".parse().unwrap()),
            Some("broadcast address")
        );
        assert_eq!(reserved_role(&p, "10.0.0.1".parse().unwrap()), None);
    }

    #[test]
    fn point_to_point_and_host_pools_use_every_address() {
        let p31 = net("192.168.135.0/31");
        assert_eq!(
            usable(&p31, &p31),
            Some((
                to_int("192.168.135.0".parse().unwrap()),
                to_int("192.168.135.1".parse().unwrap())
            ))
        );
        let p32 = net("192.168.135.7/32");
        assert_eq!(usable(&p32, &p32).map(|(a, b)| b - a), Some(0));
    }

    #[test]
    fn sub_pool_keeps_its_edges_but_not_the_pools() {
        let p = net("10.96.0.0/24");
        let upper = net("10.96.0.128/25");
        assert_eq!(
            usable(&p, &upper),
            Some((
                to_int("10.96.0.128".parse().unwrap()),
                to_int("10.96.0.254".parse().unwrap())
            ))
        );
        let lower = net("10.96.0.0/25");
        assert_eq!(
            usable(&p, &lower).map(|r| r.0),
            Some(to_int("10.96.0.1".parse().unwrap()))
        );
    }

    #[test]
    fn v6_skips_the_anycast_address_only() {
        let p = net("fd00::/64");
        let (lo, hi) = usable(&p, &p).unwrap();
        assert_eq!(from_int(lo, &p).to_string(), "fd00::1");
        assert_eq!(from_int(hi, &p).to_string(), "fd00::ffff:ffff:ffff:ffff");
    }
}
