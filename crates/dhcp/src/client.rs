//! The exchanges: acquiring a lease (DISCOVER/OFFER/REQUEST/ACK, with an
//! ARP probe and DECLINE), extending it (RENEWING, REBINDING,
//! INIT-REBOOT) and releasing it.

use crate::frame::{self, BROADCAST_MAC};
use crate::message::{
    Grant, Lease, Reply, Request, check_reply, encode_request, max_message_size, now_secs,
};
use crate::socket::PacketSocket;
use crate::{ClientId, DhcpError, Mac, Parent, Settings, mac_text};
use std::hash::{BuildHasher, Hasher, RandomState};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::time::{Instant, timeout_at};

/// 64 random bits (std's per-call random hasher keys are enough: xids
/// only need to differ between exchanges, jitter between clients).
fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(u64::from(std::process::id()));
    hasher.finish()
}

/// A fresh transaction ID.
fn random_xid() -> u32 {
    random_u64() as u32
}

/// A random factor in [-1, 1] for [`retransmit_wait`].
fn random_jitter() -> f64 {
    // 53 bits: exactly representable, so the factor spans the range evenly
    (random_u64() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

/// Longest wait between retransmissions (RFC 2131 4.1: 64 s).
const RETRANSMIT_MAX: Duration = Duration::from_secs(64);

/// How long to wait for an answer to send number `attempt` (0 for the
/// first) before sending again: RFC 2131 4.1's randomized exponential
/// backoff, `base` doubled per attempt up to [`RETRANSMIT_MAX`], moved by
/// `jitter` (in [-1, 1]) times half of `base` (with the default 1 s:
/// 1, 2, 4, 8 s each +-0.5 s). Clients that start together drift apart
/// instead of retransmitting in lockstep. The caller clamps the wait to
/// the exchange's deadline.
fn retransmit_wait(base: Duration, attempt: u32, jitter: f64) -> Duration {
    let doubled = base
        .checked_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX))
        .unwrap_or(RETRANSMIT_MAX)
        .min(RETRANSMIT_MAX.max(base));
    let shift = base.as_secs_f64() / 2.0 * jitter.clamp(-1.0, 1.0);
    Duration::from_secs_f64((doubled.as_secs_f64() + shift).max(0.0))
}

/// One exchange: a socket, a client, a deadline.
struct Exchange<'a> {
    socket: PacketSocket,
    parent: &'a Parent,
    client: &'a ClientId,
    settings: &'a Settings,
    started: Instant,
    deadline: Instant,
}

/// What ends a wait for a reply.
enum Outcome<T> {
    Done(T),
    Nak { server: Ipv4Addr, message: String },
}

/// A message to send, and whose refusal to hear.
#[derive(Clone, Copy)]
struct Ask {
    kind: Request,
    xid: u32,
    src_ip: Ipv4Addr,
    dst: (Mac, Ipv4Addr),
    /// The only server whose DHCPNAK ends the wait (`None`: any server's).
    nak_from: Option<Ipv4Addr>,
}

/// The reply that ended a wait.
struct Answer<T> {
    outcome: Outcome<T>,
    /// The MAC it came from.
    from: Mac,
    /// When the message it answers was first sent (seconds since the
    /// epoch): RFC 2131 4.4.1 counts the lease's times from there.
    sent_at: u64,
}

/// Whether a DHCPNAK from `server` counts when only `nak_from`'s should.
/// RENEWING asks one server: another's NAK (a rogue, a misconfigured
/// neighbour) must not cost the container its lease. REBINDING and
/// INIT-REBOOT ask every server, and any may refuse.
fn nak_counts(nak_from: Option<Ipv4Addr>, server: Ipv4Addr) -> bool {
    nak_from.is_none_or(|only| only == server)
}

impl<'a> Exchange<'a> {
    fn open(
        parent: &'a Parent,
        client: &'a ClientId,
        settings: &'a Settings,
    ) -> Result<Exchange<'a>, DhcpError> {
        // a macvlan endpoint's MAC is on no link yet: let the NIC take it
        let extra = (client.hardware != parent.mac).then_some(client.hardware);
        let socket =
            PacketSocket::open(parent.index, extra).map_err(|e| self_socket_error(parent, e))?;
        let started = Instant::now();
        Ok(Exchange {
            socket,
            parent,
            client,
            settings,
            started,
            deadline: started + settings.timeout,
        })
    }

    fn no_server(&self) -> DhcpError {
        DhcpError::NoServer {
            parent: self.parent.name.clone(),
            waited: self.started.elapsed(),
        }
    }

    /// Sends `kind` of transaction `xid` from `src_ip` to `dst`.
    async fn send(
        &self,
        kind: Request,
        xid: u32,
        src_ip: Ipv4Addr,
        dst: (Mac, Ipv4Addr),
    ) -> Result<(), DhcpError> {
        let max_size = max_message_size(self.parent.mtu);
        let payload = encode_request(kind, xid, self.client, true, max_size)?;
        let frame = frame::udp_frame(self.client.hardware, dst.0, src_ip, dst.1, &payload)
            .ok_or_else(|| DhcpError::Encode("frame too long".into()))?;
        self.socket
            .send(&frame)
            .await
            .map_err(|e| self_socket_error(self.parent, e))
    }

    /// Sends `ask` and waits for a reply `accept` takes (or a NAK that
    /// counts), sending again after [`retransmit_wait`], until the
    /// exchange's deadline (`Ok(None)`).
    async fn transact<T>(
        &self,
        ask: Ask,
        accept: impl Fn(Grant, bool) -> Option<T>,
    ) -> Result<Option<Answer<T>>, DhcpError> {
        let Ask {
            kind,
            xid,
            src_ip,
            dst,
            nak_from,
        } = ask;
        let mut attempt = 0;
        let sent_at = now_secs();
        while Instant::now() < self.deadline {
            self.send(kind, xid, src_ip, dst).await?;
            let wait = retransmit_wait(self.settings.retransmit, attempt, random_jitter());
            attempt = attempt.saturating_add(1);
            let until = (Instant::now() + wait).min(self.deadline);
            let wait = async {
                loop {
                    let frame = self
                        .socket
                        .recv()
                        .await
                        .map_err(|e| self_socket_error(self.parent, e))?;
                    let Some((payload, from)) = frame::dhcp_payload(&frame) else {
                        continue;
                    };
                    let outcome = match check_reply(payload, xid, self.client) {
                        Some(Reply::Offer(g)) => accept(g, false).map(Outcome::Done),
                        Some(Reply::Ack(g)) => {
                            let classful =
                                g.mask_from_class
                                    .then_some((g.address, g.server, g.prefix_len));
                            let taken = accept(g, true);
                            if let (Some((address, server, prefix)), Some(_)) = (classful, &taken) {
                                tracing::warn!(parent = %self.parent.name, %address, %server, prefix, "the DHCP server sent no subnet mask; taking the address's classful prefix /{prefix}");
                            }
                            taken.map(Outcome::Done)
                        }
                        Some(Reply::Nak { server, message }) => {
                            nak_counts(nak_from, server).then_some(Outcome::Nak { server, message })
                        }
                        None => None,
                    };
                    if let Some(outcome) = outcome {
                        return Ok::<_, DhcpError>(Answer {
                            outcome,
                            from,
                            sent_at,
                        });
                    }
                }
            };
            if let Ok(answer) = timeout_at(until, wait).await {
                return answer.map(Some);
            }
        }
        Ok(None)
    }

    /// Sends the REQUEST `ask` for `address` and makes the lease of the
    /// ACK granting it; a NAK that counts, or silence, is the error.
    async fn request(&self, ask: Ask, address: Ipv4Addr) -> Result<Lease, DhcpError> {
        let answer = self
            .transact(ask, |g, ack| (ack && g.address == address).then_some(g))
            .await?;
        match answer {
            Some(Answer {
                outcome: Outcome::Done(grant),
                from,
                sent_at,
            }) => Ok(grant.lease(from, sent_at)),
            Some(Answer {
                outcome: Outcome::Nak { server, message },
                ..
            }) => Err(self.nak(address, server, message)),
            None => Err(self.no_server()),
        }
    }

    /// Who else answers ARP for `address` within the probe time, if anyone.
    async fn probe(&self, address: Ipv4Addr) -> Result<Option<Mac>, DhcpError> {
        if self.settings.arp_probe.is_zero() {
            return Ok(None);
        }
        let frame = frame::arp_probe(self.client.hardware, address)
            .ok_or_else(|| DhcpError::Encode("ARP probe".into()))?;
        self.socket
            .send(&frame)
            .await
            .map_err(|e| self_socket_error(self.parent, e))?;
        let until = Instant::now() + self.settings.arp_probe;
        let wait = async {
            loop {
                let frame = self.socket.recv().await?;
                if let Some(holder) = frame::arp_claim(&frame, address, self.client.hardware) {
                    return Ok::<_, std::io::Error>(holder);
                }
            }
        };
        match timeout_at(until, wait).await {
            Ok(found) => found
                .map(Some)
                .map_err(|e| self_socket_error(self.parent, e)),
            Err(_) => Ok(None),
        }
    }

    fn nak(&self, address: Ipv4Addr, server: Ipv4Addr, message: String) -> DhcpError {
        DhcpError::Nak {
            parent: self.parent.name.clone(),
            address,
            server,
            message: if message.is_empty() {
                message
            } else {
                format!(": {message}")
            },
        }
    }
}

fn self_socket_error(parent: &Parent, source: std::io::Error) -> DhcpError {
    DhcpError::Socket {
        parent: parent.name.clone(),
        source,
    }
}

const ANYWHERE: (Mac, Ipv4Addr) = (BROADCAST_MAC, Ipv4Addr::BROADCAST);

/// Obtains a new lease for `client` on `parent`: DISCOVER, the first
/// acceptable OFFER, REQUEST, ACK, then an ARP probe of the address
/// (DECLINE and start over if another host answers). A NAK starts over.
/// Fails with [`DhcpError::NoServer`] once `settings.timeout` has passed.
pub async fn acquire(
    parent: &Parent,
    client: &ClientId,
    settings: &Settings,
) -> Result<Lease, DhcpError> {
    let ex = Exchange::open(parent, client, settings)?;
    let zero = Ipv4Addr::UNSPECIFIED;
    let mut declined: Option<DhcpError> = None;
    loop {
        // RFC 2131 4.4.1: the REQUEST answering an OFFER keeps its xid
        let xid = random_xid();
        let discover = Ask {
            kind: Request::Discover { requested: None },
            xid,
            src_ip: zero,
            dst: ANYWHERE,
            nak_from: None,
        };
        let offer = ex
            .transact(discover, |g, ack| (!ack).then_some(g))
            .await?
            .map(|a| a.outcome);
        let Some(Outcome::Done(offer)) = offer else {
            // a NAK never answers a DISCOVER; only silence gets here
            return Err(declined.unwrap_or_else(|| ex.no_server()));
        };
        let select = Ask {
            kind: Request::Select {
                address: offer.address,
                server: offer.server,
            },
            // only the server we chose answers (RFC 2131 4.3.2)
            nak_from: Some(offer.server),
            ..discover
        };
        let answer = ex
            .transact(select, |g, ack| {
                (ack && g.address == offer.address).then_some(g)
            })
            .await?;
        let (grant, from, sent_at) = match answer {
            Some(Answer {
                outcome: Outcome::Done(grant),
                from,
                sent_at,
            }) => (grant, from, sent_at),
            Some(Answer {
                outcome: Outcome::Nak { server, message },
                ..
            }) => {
                tracing::debug!(parent = %parent.name, address = %offer.address, %server, %message, "DHCPNAK to our request; starting over");
                continue;
            }
            None => return Err(declined.unwrap_or_else(|| ex.no_server())),
        };
        if let Some(holder) = ex.probe(grant.address).await? {
            tracing::warn!(parent = %parent.name, address = %grant.address, holder = %mac_text(&holder), "offered address answers ARP; declining it");
            let decline = Request::Decline {
                address: grant.address,
                server: grant.server,
            };
            ex.send(decline, random_xid(), zero, ANYWHERE).await?;
            declined = Some(DhcpError::AddressInUse {
                parent: parent.name.clone(),
                address: grant.address,
                holder: mac_text(&holder),
            });
            continue;
        }
        return Ok(grant.lease(from, sent_at));
    }
}

/// Asks again, from INIT, for the address of a lease that ran out or was
/// refused while its container keeps using the address (the engine
/// configured it; it cannot change): a DISCOVER naming it (option 50),
/// only an OFFER of that very address taken, then REQUEST/ACK with the
/// OFFER's xid. Non-authoritative servers (ISC dhcpd's default, dnsmasq
/// without --dhcp-authoritative) stay silent at the INIT-REBOOT of a
/// client they do not know, but answer this. No ARP probe: the container
/// itself answers for the address. Fails with [`DhcpError::NotOffered`] if
/// servers offered only other addresses, [`DhcpError::NoServer`] if none
/// answered.
pub async fn reclaim(
    parent: &Parent,
    client: &ClientId,
    lease: &Lease,
    settings: &Settings,
) -> Result<Lease, DhcpError> {
    let ex = Exchange::open(parent, client, settings)?;
    let address = lease.address;
    // the last other address offered (0: none; offers of 0.0.0.0 are refused)
    let other_offer = AtomicU32::new(0);
    let discover = Ask {
        kind: Request::Discover {
            requested: Some(address),
        },
        xid: random_xid(),
        src_ip: Ipv4Addr::UNSPECIFIED,
        dst: ANYWHERE,
        nak_from: None,
    };
    let offer = ex
        .transact(discover, |g, ack| {
            if ack {
                return None;
            }
            if g.address != address {
                other_offer.store(g.address.into(), Ordering::Relaxed);
                return None;
            }
            Some(g)
        })
        .await?;
    let Some(Answer {
        outcome: Outcome::Done(offer),
        ..
    }) = offer
    else {
        return Err(match other_offer.load(Ordering::Relaxed) {
            0 => ex.no_server(),
            offered => DhcpError::NotOffered {
                parent: parent.name.clone(),
                address,
                offered: offered.into(),
            },
        });
    };
    let select = Ask {
        kind: Request::Select {
            address,
            server: offer.server,
        },
        nak_from: Some(offer.server),
        ..discover
    };
    ex.request(select, address).await
}

/// How an extension is sent.
#[derive(Clone, Copy)]
enum Extension {
    /// RENEWING: unicast to the server that granted it.
    Renew,
    /// REBINDING: broadcast, to any server.
    Rebind,
    /// INIT-REBOOT: broadcast, without claiming the address as ours.
    Reboot,
}

impl Extension {
    /// The only server whose DHCPNAK counts (`None`: any server's).
    fn nak_from(self, lease: &Lease) -> Option<Ipv4Addr> {
        match self {
            Extension::Renew => Some(lease.server),
            Extension::Rebind | Extension::Reboot => None,
        }
    }
}

async fn extend(
    how: Extension,
    parent: &Parent,
    client: &ClientId,
    lease: &Lease,
    settings: &Settings,
) -> Result<Lease, DhcpError> {
    let ex = Exchange::open(parent, client, settings)?;
    let address = lease.address;
    let (kind, src_ip, dst) = match how {
        Extension::Renew => (
            Request::Extend { address },
            address,
            (lease.server_mac, lease.server),
        ),
        Extension::Rebind => (Request::Extend { address }, address, ANYWHERE),
        Extension::Reboot => (Request::Reboot { address }, Ipv4Addr::UNSPECIFIED, ANYWHERE),
    };
    let ask = Ask {
        kind,
        xid: random_xid(),
        src_ip,
        dst,
        nak_from: how.nak_from(lease),
    };
    ex.request(ask, address).await
}

/// Extends `lease` at T1: a REQUEST unicast to the server that granted it.
/// The answer is the lease with new times (its server may differ).
pub async fn renew(
    parent: &Parent,
    client: &ClientId,
    lease: &Lease,
    settings: &Settings,
) -> Result<Lease, DhcpError> {
    extend(Extension::Renew, parent, client, lease, settings).await
}

/// Extends `lease` at T2: a REQUEST broadcast to any server.
pub async fn rebind(
    parent: &Parent,
    client: &ClientId,
    lease: &Lease,
    settings: &Settings,
) -> Result<Lease, DhcpError> {
    extend(Extension::Rebind, parent, client, lease, settings).await
}

/// Asks again for the address of a lease that ran out (the plugin was
/// down): INIT-REBOOT, a broadcast REQUEST naming the address.
pub async fn reboot(
    parent: &Parent,
    client: &ClientId,
    lease: &Lease,
    settings: &Settings,
) -> Result<Lease, DhcpError> {
    extend(Extension::Reboot, parent, client, lease, settings).await
}

/// Gives `lease` back (DHCPRELEASE, unicast to its server). The server
/// does not answer; a lost release only leaves the lease to expire.
pub async fn release(
    parent: &Parent,
    client: &ClientId,
    lease: &Lease,
    settings: &Settings,
) -> Result<(), DhcpError> {
    let ex = Exchange::open(parent, client, settings)?;
    let kind = Request::Release {
        address: lease.address,
        server: lease.server,
    };
    ex.send(
        kind,
        random_xid(),
        lease.address,
        (lease.server_mac, lease.server),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retransmissions_back_off_exponentially_with_jitter() {
        let base = Duration::from_secs(1);
        let secs = |attempt, jitter| retransmit_wait(base, attempt, jitter).as_secs_f64();
        // 1, 2, 4, 8 ... s, each moved by up to half a second either way
        for (attempt, nominal) in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (5, 32.0)] {
            assert_eq!(secs(attempt, 0.0), nominal, "attempt {attempt}");
            assert_eq!(secs(attempt, -1.0), nominal - 0.5, "attempt {attempt}");
            assert_eq!(secs(attempt, 1.0), nominal + 0.5, "attempt {attempt}");
        }
        // capped at 64 s, however many attempts
        for attempt in [6, 7, 31, 32, 1000] {
            assert_eq!(secs(attempt, 0.0), 64.0, "attempt {attempt}");
        }
        // out-of-range jitter is clamped, never a negative wait
        assert_eq!(secs(0, -7.0), 0.5);
        assert_eq!(retransmit_wait(Duration::ZERO, 3, -1.0), Duration::ZERO);
    }

    #[test]
    fn while_renewing_only_the_leases_server_may_refuse_it() {
        let ours = Ipv4Addr::new(192, 168, 7, 1);
        let rogue = Ipv4Addr::new(192, 168, 7, 66);
        let lease = Lease {
            address: Ipv4Addr::new(192, 168, 7, 57),
            prefix_len: 24,
            router: None,
            server: ours,
            server_mac: [2, 0, 0, 0, 0, 1],
            lease_secs: 120,
            renew_secs: 60,
            rebind_secs: 105,
            granted_at: 1000,
        };
        let counts = |how: Extension, from| nak_counts(how.nak_from(&lease), from);
        assert!(counts(Extension::Renew, ours));
        assert!(!counts(Extension::Renew, rogue));
        // REBINDING and INIT-REBOOT ask every server: any may refuse
        for how in [Extension::Rebind, Extension::Reboot] {
            assert!(counts(how, ours) && counts(how, rogue));
        }
    }

    #[test]
    fn clients_starting_together_draw_different_jitter() {
        let draws: Vec<f64> = (0..30).map(|_| random_jitter()).collect();
        assert!(draws.iter().all(|j| (-1.0..=1.0).contains(j)), "{draws:?}");
        let distinct: std::collections::HashSet<u64> = draws.iter().map(|j| j.to_bits()).collect();
        assert!(distinct.len() > 25, "{draws:?}");
        // and so 30 exchanges started at once spread their second sends
        let waits: Vec<Duration> = draws
            .iter()
            .map(|&j| retransmit_wait(Duration::from_secs(1), 0, j))
            .collect();
        let earliest = waits.iter().min().unwrap();
        let latest = waits.iter().max().unwrap();
        assert!(
            *latest - *earliest > Duration::from_millis(300),
            "{waits:?}"
        );
    }
}
