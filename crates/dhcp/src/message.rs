//! DHCP messages: the requests we send and the checks a reply must pass
//! (no I/O; the wire format is dhcproto's).

use crate::{ClientId, DhcpError, Mac};
use dhcproto::v4::{DhcpOption, DhcpOptions, Flags, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable};
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::time::{SystemTime, UNIX_EPOCH};

/// What a server granted, as kept between exchanges (and stored by the
/// caller across restarts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The address.
    pub address: Ipv4Addr,
    /// Its prefix length (from the subnet mask).
    pub prefix_len: u8,
    /// The first router the server named (the default route).
    pub router: Option<Ipv4Addr>,
    /// The server identifier.
    pub server: Ipv4Addr,
    /// MAC the server's answer came from (renewals are sent there).
    pub server_mac: Mac,
    /// Lease time in seconds (`u32::MAX`: infinite).
    pub lease_secs: u32,
    /// T1: seconds after `granted_at` when renewal starts.
    pub renew_secs: u32,
    /// T2: seconds after `granted_at` when rebinding starts.
    pub rebind_secs: u32,
    /// When the REQUEST the server granted was first sent (seconds since
    /// the Unix epoch; RFC 2131 4.4.1 counts the lease's times from there).
    pub granted_at: u64,
}

impl Lease {
    /// Seconds since the epoch when the lease ends (`None`: never).
    pub fn expires_at(&self) -> Option<u64> {
        (self.lease_secs != u32::MAX).then(|| self.granted_at + u64::from(self.lease_secs))
    }
    /// Seconds since the epoch of T1 (`None`: never).
    pub fn renew_at(&self) -> Option<u64> {
        (self.lease_secs != u32::MAX).then(|| self.granted_at + u64::from(self.renew_secs))
    }
    /// Seconds since the epoch of T2 (`None`: never).
    pub fn rebind_at(&self) -> Option<u64> {
        (self.lease_secs != u32::MAX).then(|| self.granted_at + u64::from(self.rebind_secs))
    }
}

/// Seconds since the Unix epoch, now.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What a request is for; decides its addresses and options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Request {
    /// INIT: asking for any address, or preferably `requested` (option 50).
    Discover {
        requested: Option<Ipv4Addr>,
    },
    /// SELECTING: the offer of `server` for `address`.
    Select {
        address: Ipv4Addr,
        server: Ipv4Addr,
    },
    /// RENEWING / REBINDING: `ciaddr` is ours.
    Extend {
        address: Ipv4Addr,
    },
    /// INIT-REBOOT: asking for an address we held before.
    Reboot {
        address: Ipv4Addr,
    },
    Release {
        address: Ipv4Addr,
        server: Ipv4Addr,
    },
    Decline {
        address: Ipv4Addr,
        server: Ipv4Addr,
    },
}

/// The option that ends the option list.
const END: u8 = 255;

/// Option 57 on a link of `mtu` (unknown: Ethernet's 1500): the longest
/// DHCP message we take. Replies are not reassembled from fragments, so
/// one must fit a single IP datagram, less the IP and UDP headers (1472 on
/// Ethernet), but never below RFC 2132's least, 576. Servers put what does
/// not fit in the `file` and `sname` fields (option 52), which
/// [`check_reply`] reads.
pub(crate) fn max_message_size(mtu: Option<u32>) -> u16 {
    let datagram = mtu.unwrap_or(1500).saturating_sub(20 + 8);
    u16::try_from(datagram).unwrap_or(u16::MAX).max(576)
}

/// Where the `sname` and `file` fields sit in a DHCP message (RFC 2131 2).
const SNAME: std::ops::Range<usize> = 44..108;
const FILE: std::ops::Range<usize> = 108..236;

/// The options we ask servers for.
const WANTED: [OptionCode; 5] = [
    OptionCode::SubnetMask,
    OptionCode::Router,
    OptionCode::AddressLeaseTime,
    OptionCode::Renewal,
    OptionCode::Rebinding,
];

/// Encodes the request `kind` of transaction `xid`. `broadcast` asks the
/// server to broadcast its answer (RFC 2131 4.1): replies to an address
/// not yet configured anywhere could not reach us otherwise. `max_size`
/// is option 57 ([`max_message_size`]).
pub(crate) fn encode_request(
    kind: Request,
    xid: u32,
    client: &ClientId,
    broadcast: bool,
    max_size: u16,
) -> Result<Vec<u8>, DhcpError> {
    let zero = Ipv4Addr::UNSPECIFIED;
    let ciaddr = match kind {
        Request::Extend { address } | Request::Release { address, .. } => address,
        _ => zero,
    };
    let mut msg = Message::new_with_id(xid, ciaddr, zero, zero, zero, &client.hardware);
    msg.set_opcode(Opcode::BootRequest);
    if broadcast && ciaddr.is_unspecified() {
        msg.set_flags(Flags::default().set_broadcast());
    }
    let (mtype, requested, server) = match kind {
        Request::Discover { requested } => (MessageType::Discover, requested, None),
        Request::Select { address, server } => (MessageType::Request, Some(address), Some(server)),
        Request::Extend { .. } => (MessageType::Request, None, None),
        Request::Reboot { address } => (MessageType::Request, Some(address), None),
        Request::Release { server, .. } => (MessageType::Release, None, Some(server)),
        Request::Decline { address, server } => (MessageType::Decline, Some(address), Some(server)),
    };
    let opts = msg.opts_mut();
    opts.insert(DhcpOption::MessageType(mtype));
    opts.insert(DhcpOption::ClientIdentifier(client.client_id.clone()));
    if let Some(address) = requested {
        opts.insert(DhcpOption::RequestedIpAddress(address));
    }
    if let Some(server) = server {
        opts.insert(DhcpOption::ServerIdentifier(server));
    }
    if !matches!(kind, Request::Release { .. } | Request::Decline { .. }) {
        opts.insert(DhcpOption::ParameterRequestList(WANTED.to_vec()));
        opts.insert(DhcpOption::MaxMessageSize(max_size));
        if let Some(name) = &client.hostname {
            opts.insert(DhcpOption::Hostname(name.clone()));
        }
    }
    msg.to_vec().map_err(|e| DhcpError::Encode(e.to_string()))
}

/// A reply that passed the checks of [`check_reply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    Offer(Grant),
    Ack(Grant),
    Nak { server: Ipv4Addr, message: String },
}

/// What an OFFER or ACK grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    pub(crate) address: Ipv4Addr,
    pub(crate) prefix_len: u8,
    pub(crate) router: Option<Ipv4Addr>,
    pub(crate) server: Ipv4Addr,
    pub(crate) lease_secs: u32,
    pub(crate) renew_secs: Option<u32>,
    pub(crate) rebind_secs: Option<u32>,
    /// The server sent no subnet mask: `prefix_len` is the address's
    /// classful default (worth a warning when the grant is taken).
    pub(crate) mask_from_class: bool,
}

impl Grant {
    /// The lease this ACK makes, by a server answering from `server_mac`,
    /// to a REQUEST first sent at `sent_at` (seconds since the epoch): RFC
    /// 2131 4.4.1 counts the lease from the request, not from the answer,
    /// so that the client's idea of the end is never after the server's.
    pub(crate) fn lease(&self, server_mac: Mac, sent_at: u64) -> Lease {
        let lease = self.lease_secs;
        // RFC 2131 4.4.5: T1 = 0.5, T2 = 0.875 of the lease by default
        let renew = self.renew_secs.unwrap_or(lease / 2).min(lease);
        let rebind = self
            .rebind_secs
            .unwrap_or((u64::from(lease) * 7 / 8) as u32)
            .clamp(renew, lease);
        Lease {
            address: self.address,
            prefix_len: self.prefix_len,
            router: self.router,
            server: self.server,
            server_mac,
            lease_secs: lease,
            renew_secs: renew,
            rebind_secs: rebind,
            granted_at: sent_at,
        }
    }
}

/// The prefix length of a contiguous subnet mask.
fn prefix_of(mask: Ipv4Addr) -> Option<u8> {
    let bits = u32::from(mask);
    let len = bits.leading_ones();
    (bits.checked_shl(len).unwrap_or(0) == 0 && (1..=32).contains(&len)).then_some(len as u8)
}

/// Whether `address` can be a host's under prefix `len`: a unicast address,
/// not the subnet's network or broadcast address (except in /31 and /32).
fn usable(address: Ipv4Addr, len: u8) -> bool {
    if address.is_unspecified()
        || address.is_broadcast()
        || address.is_multicast()
        || address.is_loopback()
    {
        return false;
    }
    if len >= 31 {
        return true;
    }
    let host_mask = u32::MAX >> len;
    let host = u32::from(address) & host_mask;
    host != 0 && host != host_mask
}

/// Whether `a` and `b` are in one subnet of prefix `len`.
fn same_subnet(a: Ipv4Addr, b: Ipv4Addr, len: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    u32::from(a) & mask == u32::from(b) & mask
}

/// Decodes a DHCP payload and returns it if it answers transaction `xid`
/// of `client`; `None` for anything else (another client's traffic, a
/// request, a malformed or inconsistent reply).
pub(crate) fn check_reply(payload: &[u8], xid: u32, client: &ClientId) -> Option<Reply> {
    // the decoder reads options up to the end of what it is given: a cut
    // message would pass without the options it lost (the client
    // identifier among them). RFC 2131 ends the list with END, then pad.
    let unpadded = payload.iter().rposition(|&b| b != 0)?;
    if payload[unpadded] != END {
        return None;
    }
    let msg = Message::decode(&mut Decoder::new(payload)).ok()?;
    if msg.opcode() != Opcode::BootReply || msg.xid() != xid {
        return None;
    }
    if msg.chaddr().get(..6) != Some(&client.hardware[..]) {
        return None;
    }
    let opts = &all_options(&msg, payload)?;
    // RFC 6842: servers echo it; a foreign one is another endpoint's reply
    if let Some(DhcpOption::ClientIdentifier(id)) = opts.get(OptionCode::ClientIdentifier)
        && id != &client.client_id
    {
        return None;
    }
    let server = match opts.get(OptionCode::ServerIdentifier) {
        Some(DhcpOption::ServerIdentifier(s)) => Some(*s),
        _ => None,
    };
    match opts.msg_type()? {
        MessageType::Nak => Some(Reply::Nak {
            server: server.unwrap_or(Ipv4Addr::UNSPECIFIED),
            message: match opts.get(OptionCode::Message) {
                Some(DhcpOption::Message(m)) => m.clone(),
                _ => String::new(),
            },
        }),
        kind @ (MessageType::Offer | MessageType::Ack) => {
            let grant = grant_of(msg.yiaddr(), opts, server?)?;
            Some(match kind {
                MessageType::Offer => Reply::Offer(grant),
                _ => Reply::Ack(grant),
            })
        }
        _ => None,
    }
}

/// The options of `msg` (decoded from `payload`) with those a server put
/// in its `file` and `sname` fields, as option 52 says (RFC 2132 9.3):
/// dhcproto reads the options field only, and an overloaded reply would
/// lose the rest. The options field's own win over the fields' (RFC 2131
/// 4.1 reads it first, then `file`, then `sname`).
fn all_options(msg: &Message, payload: &[u8]) -> Option<DhcpOptions> {
    let mut opts = msg.opts().clone();
    let overload = match opts.get(OptionCode::OptionOverload) {
        Some(DhcpOption::OptionOverload(which)) => *which,
        _ => return Some(opts),
    };
    // 1: file holds options, 2: sname does, 3: both
    for (bit, field) in [(1, FILE), (2, SNAME)] {
        if overload & bit == 0 {
            continue;
        }
        let extra = DhcpOptions::decode(&mut Decoder::new(payload.get(field)?)).ok()?;
        for (code, option) in extra.iter() {
            if opts.get(*code).is_none() {
                opts.insert(option.clone());
            }
        }
    }
    Some(opts)
}

/// The grant of an OFFER or ACK of `address`, if its mask and router agree.
fn grant_of(address: Ipv4Addr, opts: &DhcpOptions, server: Ipv4Addr) -> Option<Grant> {
    let (prefix_len, mask_from_class) = match opts.get(OptionCode::SubnetMask) {
        Some(DhcpOption::SubnetMask(mask)) => (prefix_of(*mask)?, false),
        // busybox udhcpd sends none unless configured to: take the
        // address's class, as systemd-networkd does, rather than refuse
        _ => (classful_prefix(address)?, true),
    };
    if !usable(address, prefix_len) {
        return None;
    }
    let router = match opts.get(OptionCode::Router) {
        Some(DhcpOption::Router(routers)) => routers.first().copied(),
        _ => None,
    };
    // a router the address cannot reach on-link would be a dead default route
    if let Some(router) = router
        && (!same_subnet(address, router, prefix_len) || router == address)
    {
        return None;
    }
    let lease_secs = match opts.get(OptionCode::AddressLeaseTime) {
        Some(DhcpOption::AddressLeaseTime(t)) => *t,
        _ => return None,
    };
    let secs = |code| match opts.get(code) {
        Some(DhcpOption::Renewal(t) | DhcpOption::Rebinding(t)) => Some(*t),
        _ => None,
    };
    Some(Grant {
        address,
        prefix_len,
        router,
        server,
        lease_secs,
        renew_secs: secs(OptionCode::Renewal),
        rebind_secs: secs(OptionCode::Rebinding),
        mask_from_class,
    })
}

/// The prefix of `address`'s class (RFC 791: A /8, B /16, C /24); `None`
/// for classes D and E, which hosts are not given.
fn classful_prefix(address: Ipv4Addr) -> Option<u8> {
    match address.octets()[0] {
        0..=127 => Some(8),
        128..=191 => Some(16),
        192..=223 => Some(24),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const XID: u32 = 0x1234_5678;

    fn client() -> ClientId {
        ClientId {
            client_id: b"\0endpoint-one".to_vec(),
            hardware: [2, 0, 0, 0, 0, 1],
            hostname: Some("web-1".into()),
        }
    }

    /// A server's answer, as dnsmasq would send it.
    fn reply(kind: MessageType, edit: impl FnOnce(&mut Message)) -> Vec<u8> {
        let c = client();
        let zero = Ipv4Addr::UNSPECIFIED;
        let mut msg = Message::new_with_id(
            XID,
            zero,
            Ipv4Addr::new(192, 168, 7, 57),
            zero,
            zero,
            &c.hardware,
        );
        msg.set_opcode(Opcode::BootReply);
        let opts = msg.opts_mut();
        opts.insert(DhcpOption::MessageType(kind));
        opts.insert(DhcpOption::ServerIdentifier(Ipv4Addr::new(192, 168, 7, 1)));
        opts.insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)));
        opts.insert(DhcpOption::Router(vec![Ipv4Addr::new(192, 168, 7, 254)]));
        opts.insert(DhcpOption::AddressLeaseTime(120));
        opts.insert(DhcpOption::ClientIdentifier(c.client_id.clone()));
        edit(&mut msg);
        msg.to_vec().unwrap()
    }

    #[test]
    fn a_good_offer_and_ack_are_taken() {
        let Some(Reply::Offer(grant)) =
            check_reply(&reply(MessageType::Offer, |_| {}), XID, &client())
        else {
            panic!("offer refused")
        };
        assert_eq!(grant.address, Ipv4Addr::new(192, 168, 7, 57));
        assert_eq!(grant.prefix_len, 24);
        assert_eq!(grant.router, Some(Ipv4Addr::new(192, 168, 7, 254)));
        let lease = grant.lease([2, 0, 0, 0, 0, 9], 1_000_000);
        assert_eq!((lease.renew_secs, lease.rebind_secs), (60, 105));
        // the times count from when the REQUEST went out
        assert_eq!(lease.granted_at, 1_000_000);
        assert_eq!(lease.renew_at(), Some(1_000_060));
        assert_eq!(lease.expires_at(), Some(1_000_120));
        assert!(matches!(
            check_reply(&reply(MessageType::Ack, |_| {}), XID, &client()),
            Some(Reply::Ack(_))
        ));
        // servers that do not echo the client identifier (before RFC 6842)
        let plain = reply(MessageType::Ack, |m| {
            m.opts_mut().remove(OptionCode::ClientIdentifier);
        });
        assert!(matches!(
            check_reply(&plain, XID, &client()),
            Some(Reply::Ack(_))
        ));
    }

    #[test]
    fn a_nak_is_reported_with_its_message() {
        let nak = reply(MessageType::Nak, |m| {
            m.set_yiaddr(Ipv4Addr::UNSPECIFIED);
            m.opts_mut()
                .insert(DhcpOption::Message("wrong network".into()));
        });
        assert_eq!(
            check_reply(&nak, XID, &client()),
            Some(Reply::Nak {
                server: Ipv4Addr::new(192, 168, 7, 1),
                message: "wrong network".into()
            })
        );
    }

    #[test]
    fn hostile_replies_are_ignored() {
        let c = client();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "wrong xid",
                reply(MessageType::Ack, |m| {
                    m.set_xid(XID + 1);
                }),
            ),
            (
                "foreign client id",
                reply(MessageType::Ack, |m| {
                    m.opts_mut()
                        .insert(DhcpOption::ClientIdentifier(b"\0endpoint-two".to_vec()));
                }),
            ),
            (
                "another chaddr",
                reply(MessageType::Ack, |m| {
                    m.set_chaddr(&[2, 0, 0, 0, 0, 2]);
                }),
            ),
            (
                "a request, not a reply",
                reply(MessageType::Ack, |m| {
                    m.set_opcode(Opcode::BootRequest);
                }),
            ),
            (
                "network address",
                reply(MessageType::Offer, |m| {
                    m.set_yiaddr(Ipv4Addr::new(192, 168, 7, 0));
                }),
            ),
            (
                "broadcast address",
                reply(MessageType::Offer, |m| {
                    m.set_yiaddr(Ipv4Addr::new(192, 168, 7, 255));
                }),
            ),
            (
                "no address",
                reply(MessageType::Ack, |m| {
                    m.set_yiaddr(Ipv4Addr::UNSPECIFIED);
                }),
            ),
            (
                "multicast address",
                reply(MessageType::Ack, |m| {
                    m.set_yiaddr(Ipv4Addr::new(224, 0, 0, 1));
                }),
            ),
            (
                "router outside the mask",
                reply(MessageType::Ack, |m| {
                    m.set_yiaddr(Ipv4Addr::new(10, 1, 2, 3));
                }),
            ),
            (
                "non-contiguous mask",
                reply(MessageType::Ack, |m| {
                    m.opts_mut()
                        .insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 0, 255, 0)));
                }),
            ),
            (
                "no mask, and a class E address",
                reply(MessageType::Ack, |m| {
                    m.opts_mut().remove(OptionCode::SubnetMask);
                    m.set_yiaddr(Ipv4Addr::new(240, 0, 0, 7));
                    m.opts_mut().remove(OptionCode::Router);
                }),
            ),
            (
                "no lease time",
                reply(MessageType::Ack, |m| {
                    m.opts_mut().remove(OptionCode::AddressLeaseTime);
                }),
            ),
            (
                "no server identifier",
                reply(MessageType::Offer, |m| {
                    m.opts_mut().remove(OptionCode::ServerIdentifier);
                }),
            ),
            (
                "no message type",
                reply(MessageType::Ack, |m| {
                    m.opts_mut().remove(OptionCode::MessageType);
                }),
            ),
            ("an inform answer type", reply(MessageType::Inform, |_| {})),
            ("empty", Vec::new()),
            ("garbage", vec![0xff; 300]),
        ];
        let good = reply(MessageType::Ack, |_| {});
        for (why, bytes) in &cases {
            assert_eq!(check_reply(bytes, XID, &c), None, "{why}");
        }
        // every truncation of a good reply: ignored, never a panic
        for len in 0..good.len() {
            assert_eq!(
                check_reply(&good[..len], XID, &c),
                None,
                "truncated to {len}"
            );
        }
        // padding after the end is not truncation
        let mut padded = good.clone();
        padded.extend_from_slice(&[0; 20]);
        assert!(matches!(check_reply(&padded, XID, &c), Some(Reply::Ack(_))));
    }

    #[test]
    fn requests_carry_the_client_id_hostname_and_flags() {
        let c = client();
        let bytes =
            encode_request(Request::Discover { requested: None }, XID, &c, true, 1472).unwrap();
        let msg = Message::decode(&mut Decoder::new(&bytes)).unwrap();
        assert_eq!(msg.xid(), XID);
        assert!(msg.flags().broadcast());
        assert_eq!(&msg.chaddr()[..6], &c.hardware);
        assert_eq!(
            msg.opts().get(OptionCode::ClientIdentifier),
            Some(&DhcpOption::ClientIdentifier(c.client_id.clone()))
        );
        assert_eq!(
            msg.opts().get(OptionCode::Hostname),
            Some(&DhcpOption::Hostname("web-1".into()))
        );
        let address = Ipv4Addr::new(192, 168, 7, 57);
        let renew = encode_request(Request::Extend { address }, XID, &c, true, 1472).unwrap();
        let msg = Message::decode(&mut Decoder::new(&renew)).unwrap();
        assert_eq!(msg.ciaddr(), address);
        // the answer goes to ciaddr: no broadcast needed
        assert!(!msg.flags().broadcast());
        let server = Ipv4Addr::new(192, 168, 7, 1);
        let release =
            encode_request(Request::Release { address, server }, XID, &c, true, 1472).unwrap();
        let msg = Message::decode(&mut Decoder::new(&release)).unwrap();
        assert_eq!(msg.opts().msg_type(), Some(MessageType::Release));
        assert_eq!(msg.opts().get(OptionCode::Hostname), None);
        // a DISCOVER for an address we still hold names it (option 50)
        let requested = Some(address);
        let bytes = encode_request(Request::Discover { requested }, XID, &c, true, 1472).unwrap();
        let msg = Message::decode(&mut Decoder::new(&bytes)).unwrap();
        assert_eq!(msg.opts().msg_type(), Some(MessageType::Discover));
        assert_eq!(
            msg.opts().get(OptionCode::RequestedIpAddress),
            Some(&DhcpOption::RequestedIpAddress(address))
        );
        assert_eq!(msg.ciaddr(), Ipv4Addr::UNSPECIFIED);
    }

    /// `options` encoded as an option area, END included.
    fn option_bytes(options: Vec<DhcpOption>) -> Vec<u8> {
        let opts: DhcpOptions = options.into_iter().collect();
        opts.to_vec().unwrap()
    }

    #[test]
    fn options_in_overloaded_file_and_sname_fields_are_read() {
        // the options field keeps the type, the server and option 52; the
        // mask and lease time are in `file`, the router in `sname`
        let mut bytes = reply(MessageType::Ack, |m| {
            let opts = m.opts_mut();
            for code in [
                OptionCode::SubnetMask,
                OptionCode::Router,
                OptionCode::AddressLeaseTime,
            ] {
                opts.remove(code);
            }
            opts.insert(DhcpOption::OptionOverload(3));
        });
        let file = option_bytes(vec![
            DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 0, 0)),
            DhcpOption::AddressLeaseTime(3600),
        ]);
        let sname = option_bytes(vec![DhcpOption::Router(vec![Ipv4Addr::new(
            192, 168, 0, 1,
        )])]);
        bytes[FILE.start..FILE.start + file.len()].copy_from_slice(&file);
        bytes[SNAME.start..SNAME.start + sname.len()].copy_from_slice(&sname);
        let Some(Reply::Ack(grant)) = check_reply(&bytes, XID, &client()) else {
            panic!("overloaded ACK refused")
        };
        assert_eq!(grant.prefix_len, 16);
        assert_eq!(grant.lease_secs, 3600);
        assert_eq!(grant.router, Some(Ipv4Addr::new(192, 168, 0, 1)));

        // option 52 saying `file` only: `sname` is a name, not options
        let mut file_only = bytes.clone();
        let overload_at = file_only.windows(3).rposition(|w| w == [52, 1, 3]).unwrap();
        file_only[overload_at + 2] = 1;
        let Some(Reply::Ack(grant)) = check_reply(&file_only, XID, &client()) else {
            panic!("file-overloaded ACK refused")
        };
        assert_eq!(grant.router, None);

        // the options field's own values win over the fields'
        let mut both = reply(MessageType::Ack, |m| {
            m.opts_mut().insert(DhcpOption::OptionOverload(1));
        });
        both[FILE.start..FILE.start + file.len()].copy_from_slice(&file);
        let Some(Reply::Ack(grant)) = check_reply(&both, XID, &client()) else {
            panic!("ACK refused")
        };
        assert_eq!((grant.prefix_len, grant.lease_secs), (24, 120));
    }

    #[test]
    fn the_largest_message_we_take_fits_one_datagram_of_the_parent() {
        assert_eq!(max_message_size(None), 1472);
        assert_eq!(max_message_size(Some(1500)), 1472);
        assert_eq!(max_message_size(Some(1400)), 1372);
        assert_eq!(max_message_size(Some(9000)), 8972);
        // never below the least RFC 2132 allows
        assert_eq!(max_message_size(Some(576)), 576);
        assert_eq!(max_message_size(Some(0)), 576);
        assert_eq!(max_message_size(Some(u32::MAX)), u16::MAX);
    }

    #[test]
    fn discover_and_request_announce_the_largest_message_we_take() {
        let c = client();
        let address = Ipv4Addr::new(192, 168, 7, 57);
        let server = Ipv4Addr::new(192, 168, 7, 1);
        for kind in [
            Request::Discover { requested: None },
            Request::Select { address, server },
            Request::Extend { address },
            Request::Reboot { address },
        ] {
            let bytes = encode_request(kind, XID, &c, true, 1472).unwrap();
            let msg = Message::decode(&mut Decoder::new(&bytes)).unwrap();
            assert_eq!(
                msg.opts().get(OptionCode::MaxMessageSize),
                Some(&DhcpOption::MaxMessageSize(1472)),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn without_a_subnet_mask_the_address_class_gives_the_prefix() {
        let no_mask = |address: Ipv4Addr, router: Ipv4Addr| {
            let bytes = reply(MessageType::Ack, |m| {
                m.set_yiaddr(address);
                m.opts_mut().remove(OptionCode::SubnetMask);
                m.opts_mut().insert(DhcpOption::Router(vec![router]));
            });
            match check_reply(&bytes, XID, &client()) {
                Some(Reply::Ack(g)) => Some((g.prefix_len, g.mask_from_class)),
                _ => None,
            }
        };
        let a = |a, b, c, d| Ipv4Addr::new(a, b, c, d);
        assert_eq!(no_mask(a(10, 1, 2, 3), a(10, 0, 0, 1)), Some((8, true)));
        assert_eq!(
            no_mask(a(172, 16, 5, 9), a(172, 16, 0, 1)),
            Some((16, true))
        );
        assert_eq!(
            no_mask(a(192, 168, 7, 57), a(192, 168, 7, 1)),
            Some((24, true))
        );
        // the router must still be on-link under the guessed prefix
        assert_eq!(no_mask(a(192, 168, 7, 57), a(192, 168, 8, 1)), None);
        // with a mask, the mask
        let Some(Reply::Ack(g)) = check_reply(&reply(MessageType::Ack, |_| {}), XID, &client())
        else {
            panic!("ACK refused")
        };
        assert_eq!((g.prefix_len, g.mask_from_class), (24, false));
    }

    #[test]
    fn masks() {
        assert_eq!(prefix_of(Ipv4Addr::new(255, 255, 255, 0)), Some(24));
        assert_eq!(prefix_of(Ipv4Addr::new(255, 255, 255, 255)), Some(32));
        assert_eq!(prefix_of(Ipv4Addr::new(0, 0, 0, 0)), None);
        assert_eq!(prefix_of(Ipv4Addr::new(255, 0, 255, 0)), None);
        assert!(usable(Ipv4Addr::new(10, 0, 0, 0), 31));
        assert!(!usable(Ipv4Addr::new(10, 0, 0, 0), 30));
    }
}
