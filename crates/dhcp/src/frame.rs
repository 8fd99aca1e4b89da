//! Ethernet frames around DHCP messages and ARP probes (etherparse's
//! headers and checksums; no I/O).

use crate::Mac;
use etherparse::{
    ArpEthIpv4Packet, ArpOperation, LinkSlice, NetSlice, PacketBuilder, SlicedPacket,
    TransportSlice,
};
use std::net::Ipv4Addr;

pub(crate) const BROADCAST_MAC: Mac = [0xff; 6];
const SERVER_PORT: u16 = 67;
const CLIENT_PORT: u16 = 68;
/// Hop limit of what we send (RFC 2131 leaves it to the client).
const TTL: u8 = 64;

/// An Ethernet/IPv4/UDP frame from the client port to the server port.
pub(crate) fn udp_frame(
    src_mac: Mac,
    dst_mac: Mac,
    src_ip: Ipv4Addr,
    dst_ip: Ipv4Addr,
    payload: &[u8],
) -> Option<Vec<u8>> {
    let builder = PacketBuilder::ethernet2(src_mac, dst_mac)
        .ipv4(src_ip.octets(), dst_ip.octets(), TTL)
        .udp(CLIENT_PORT, SERVER_PORT);
    let mut frame = Vec::with_capacity(builder.size(payload.len()));
    builder.write(&mut frame, payload).ok()?;
    Some(frame)
}

/// An ARP probe (RFC 5227: sender address 0.0.0.0) for `target`.
pub(crate) fn arp_probe(src_mac: Mac, target: Ipv4Addr) -> Option<Vec<u8>> {
    let arp = ArpEthIpv4Packet {
        operation: ArpOperation::REQUEST,
        sender_mac: src_mac,
        sender_ipv4: [0; 4],
        target_mac: [0; 6],
        target_ipv4: target.octets(),
    };
    let builder = PacketBuilder::ethernet2(src_mac, BROADCAST_MAC).arp(arp.into());
    let mut frame = Vec::with_capacity(builder.size());
    builder.write(&mut frame).ok()?;
    Some(frame)
}

/// The DHCP payload of a server->client UDP frame and the MAC it came
/// from; `None` for every other frame (and for truncated ones).
pub(crate) fn dhcp_payload(frame: &[u8]) -> Option<(&[u8], Mac)> {
    let packet = SlicedPacket::from_ethernet(frame).ok()?;
    let Some(LinkSlice::Ethernet2(eth)) = &packet.link else {
        return None;
    };
    let Some(NetSlice::Ipv4(ip)) = &packet.net else {
        return None;
    };
    // fragments are not reassembled: DHCP replies fit one frame
    if ip.is_payload_fragmented() {
        return None;
    }
    let Some(TransportSlice::Udp(udp)) = &packet.transport else {
        return None;
    };
    if udp.source_port() != SERVER_PORT || udp.destination_port() != CLIENT_PORT {
        return None;
    }
    Some((udp.payload(), eth.source()))
}

/// The MAC of a host claiming `address` in this ARP frame (a reply, or
/// another host's probe or announcement of it), unless it is `ours`.
pub(crate) fn arp_claim(frame: &[u8], address: Ipv4Addr, ours: Mac) -> Option<Mac> {
    let packet = SlicedPacket::from_ethernet(frame).ok()?;
    let Some(NetSlice::Arp(arp)) = &packet.net else {
        return None;
    };
    let arp = arp.to_packet().try_eth_ipv4().ok()?;
    (arp.sender_ipv4 == address.octets() && arp.sender_mac != ours).then_some(arp.sender_mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: Mac = [2, 0, 0, 0, 0, 1];
    const SERVER: Mac = [2, 0, 0, 0, 0, 0x99];

    /// A frame as a server would send it: UDP from `sport` to `dport`.
    fn server_frame(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let builder = PacketBuilder::ethernet2(SERVER, BROADCAST_MAC)
            .ipv4([192, 168, 7, 1], [255; 4], 64)
            .udp(sport, dport);
        let mut frame = Vec::new();
        builder.write(&mut frame, payload).unwrap();
        frame
    }

    #[test]
    fn server_frames_give_their_payload_and_source() {
        let frame = server_frame(67, 68, b"dhcp");
        assert_eq!(dhcp_payload(&frame), Some((&b"dhcp"[..], SERVER)));
        assert_eq!(dhcp_payload(&server_frame(67, 69, b"dhcp")), None);
        assert_eq!(dhcp_payload(&server_frame(68, 67, b"dhcp")), None);
        // our own request, seen on the way out
        let ours = udp_frame(
            CLIENT,
            BROADCAST_MAC,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::BROADCAST,
            b"x",
        )
        .unwrap();
        assert_eq!(dhcp_payload(&ours), None);
        for len in 0..frame.len() {
            assert_eq!(dhcp_payload(&frame[..len]), None, "truncated to {len}");
        }
    }

    #[test]
    fn arp_claims_are_read_and_our_probe_is_not_one() {
        let address = Ipv4Addr::new(192, 168, 7, 57);
        let probe = arp_probe(CLIENT, address).unwrap();
        // a probe says nothing about who holds it
        assert_eq!(arp_claim(&probe, address, CLIENT), None);
        let reply = ArpEthIpv4Packet {
            operation: ArpOperation::REPLY,
            sender_mac: SERVER,
            sender_ipv4: address.octets(),
            target_mac: CLIENT,
            target_ipv4: [0; 4],
        };
        let builder = PacketBuilder::ethernet2(SERVER, CLIENT).arp(reply.into());
        let mut frame = Vec::new();
        builder.write(&mut frame).unwrap();
        assert_eq!(arp_claim(&frame, address, CLIENT), Some(SERVER));
        assert_eq!(
            arp_claim(&frame, Ipv4Addr::new(192, 168, 7, 58), CLIENT),
            None
        );
        assert_eq!(arp_claim(&frame[..20], address, CLIENT), None);
    }
}
