//! ipvlan-rs's DHCPv4 client: one lease per endpoint, obtained, renewed and
//! released from the host network namespace over a packet socket on the
//! parent interface.
//!
//! Job: run DHCP exchanges (RFC 2131) for a client the caller identifies
//! (client identifier, hardware address) on a parent the caller names, and
//! return what the server granted. Keeping leases, timers and endpoints is
//! the caller's: this crate knows nothing of Docker, HTTP or the store.
//!
//! Why a packet socket on the parent: the addresses belong to containers,
//! not to the host, and the container's link may not exist yet (macvlan
//! endpoints lease before Join). Frames for an ipvlan/macvlan slave are
//! taken by the slave's receive handler on the parent; only `ETH_P_ALL`
//! taps see them before that. Checked on this kernel with a macvlan slave
//! on a veth parent: an `ETH_P_ALL` socket bound to the parent saw the
//! three unicast datagrams sent to the slave and the broadcasts, an
//! `ETH_P_IP` socket bound to the same parent saw none of the slave's.
//!
//! Invariants:
//! - Each exchange has its own socket and a random transaction ID (a
//!   REQUEST answering an OFFER keeps the OFFER's, RFC 2131 4.4.1); a reply
//!   counts only if it is a well-formed Ethernet/IPv4/UDP 67->68 frame
//!   whose DHCP message carries our xid and hardware address, our client
//!   identifier when it carries one, and (for OFFER/ACK) an address the
//!   subnet mask makes sense of (without a mask, the address's classful
//!   prefix, with a warning). Anything else is ignored, never an error.
//! - A DHCPNAK ends an exchange only if its server may refuse: RENEWING
//!   asks the lease's server alone, SELECTING the chosen one; REBINDING
//!   and INIT-REBOOT any.
//! - A lease's times count from when its REQUEST was first sent.
//! - Every exchange ends within its [`Settings::timeout`]; a silent server
//!   is [`DhcpError::NoServer`], naming the parent.
//! - Exchanges are independent: any number run at once.

mod client;
mod frame;
mod message;
mod socket;

pub use client::{acquire, rebind, reboot, reclaim, release, renew};
pub use message::Lease;

use std::net::Ipv4Addr;
use std::time::Duration;

/// A MAC address as six bytes.
pub type Mac = [u8; 6];

/// The interface the exchanges run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parent {
    /// Its name, for errors.
    pub name: String,
    /// Its interface index.
    pub index: u32,
    /// Its MAC address.
    pub mac: Mac,
    /// Its MTU, if known: bounds the replies we can take (option 57).
    pub mtu: Option<u32>,
}

/// Who asks: one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientId {
    /// Option 61, unique per endpoint (ipvlan endpoints share a MAC).
    pub client_id: Vec<u8>,
    /// `chaddr` and the frames' source MAC: the endpoint's own MAC
    /// (macvlan) or the parent's (ipvlan).
    pub hardware: Mac,
    /// Option 12, when the engine named the container.
    pub hostname: Option<String>,
}

/// Timing of exchanges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// How long one exchange may take before the server counts as silent.
    pub timeout: Duration,
    /// How long to wait for an answer to a first message before sending it
    /// again within `timeout`; each further wait doubles, and each moves
    /// randomly by up to half of this (RFC 2131 4.1), so that clients
    /// started together do not retransmit in lockstep.
    pub retransmit: Duration,
    /// How long to wait for an answer to the ARP probe of a granted
    /// address before taking it (zero: no probe).
    pub arp_probe: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            timeout: Duration::from_secs(5),
            retransmit: Duration::from_secs(1),
            arp_probe: Duration::from_millis(200),
        }
    }
}

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum DhcpError {
    /// No acceptable reply within the bound.
    #[error("no DHCP server answered on {parent} within {waited:?}")]
    NoServer {
        /// The parent interface.
        parent: String,
        /// How long we waited.
        waited: Duration,
    },
    /// The server refused the request (DHCPNAK).
    #[error("the DHCP server {server} refused {address} on {parent} (DHCPNAK{message})")]
    Nak {
        /// The parent interface.
        parent: String,
        /// The address asked for.
        address: Ipv4Addr,
        /// The server that refused.
        server: Ipv4Addr,
        /// The server's message, as ": text", or empty.
        message: String,
    },
    /// Asked for an address again, servers offered only others.
    #[error(
        "no DHCP server on {parent} offers {address} again (offered: {offered}; a server that pings an address before offering it hears the container answer for it)"
    )]
    NotOffered {
        /// The parent interface.
        parent: String,
        /// The address asked for.
        address: Ipv4Addr,
        /// An address a server offered instead.
        offered: Ipv4Addr,
    },
    /// Every address offered answered ARP: another host holds it.
    #[error(
        "the DHCP server on {parent} offered {address}, which another host ({holder}) answers ARP for; declined"
    )]
    AddressInUse {
        /// The parent interface.
        parent: String,
        /// The address.
        address: Ipv4Addr,
        /// The MAC that answered, as text.
        holder: String,
    },
    /// The packet socket could not be opened or used.
    #[error("packet socket on {parent}: {source} (the plugin needs CAP_NET_RAW)")]
    Socket {
        /// The parent interface.
        parent: String,
        /// The system error.
        #[source]
        source: std::io::Error,
    },
    /// A message could not be encoded (a hostname or client identifier too long).
    #[error("encoding a DHCP message: {0}")]
    Encode(String),
}

/// Formats a MAC as `aa:bb:cc:dd:ee:ff`.
pub fn mac_text(mac: &Mac) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
