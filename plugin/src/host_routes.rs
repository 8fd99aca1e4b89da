//! Host routes read from procfs, so pools the IPAM chooses do not shadow
//! networks the host already reaches.

use ipam::HostRoutes;
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Reads `/proc/net/route` and `/proc/net/ipv6_route` on each call.
pub struct ProcRoutes;

impl HostRoutes for ProcRoutes {
    fn prefixes(&self) -> Vec<IpNet> {
        let v4 = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
        let v6 = std::fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default();
        parse_v4(&v4).into_iter().chain(parse_v6(&v6)).collect()
    }
}

/// `Iface Destination Gateway Flags RefCnt Use Metric Mask ...`, hex in host
/// (little-endian) byte order.
fn parse_v4(text: &str) -> Vec<IpNet> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let dst = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            let addr = Ipv4Addr::from(u32::from_be(dst));
            IpNet::new(IpAddr::V4(addr), u32::from_be(mask).leading_ones() as u8).ok()
        })
        .collect()
}

/// `dst dst_len src src_len next_hop metric refcnt use flags iface`, hex.
fn parse_v6(text: &str) -> Vec<IpNet> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let dst = u128::from_str_radix(f.first()?, 16).ok()?;
            let len = u8::from_str_radix(f.get(1)?, 16).ok()?;
            IpNet::new(IpAddr::V6(Ipv6Addr::from(dst)), len).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_net_route() {
        let text = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                    eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        let nets = parse_v4(text);
        assert_eq!(
            nets,
            vec![
                "0.0.0.0/0".parse::<IpNet>().unwrap(),
                "192.168.0.0/24".parse().unwrap()
            ]
        );
    }

    #[test]
    fn parses_proc_net_ipv6_route() {
        let text = "fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n";
        assert_eq!(parse_v6(text), vec!["fd00::/64".parse::<IpNet>().unwrap()]);
    }
}
