//! DHCP leases of the endpoints of `dhcp=on` networks: taken before
//! CreateEndpoint answers, stored beside the endpoint, extended by
//! [`Driver::run_renewals`], given back at DeleteEndpoint.
//!
//! The exchanges themselves are the `dhcp` crate's; this module decides
//! who asks (client identifier, hardware address), keeps the answers
//! durable and says when a lease is lost.

use crate::names::random_mac;
use crate::options::LinkKind;
use crate::records::{LEASES, LeaseRecord, NetworkRecord};
use crate::state::put;
use crate::{DhcpKind, DhcpOutcome, Driver, DriverError};
use dhcp::{ClientId, DhcpError, Parent};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often the renewal task looks for leases at T1.
const RENEWAL_TICK: Duration = Duration::from_secs(1);
/// Longest wait before an unanswered renewal is tried again.
const RETRY_MAX_SECS: u64 = 60;

/// Option 61 of endpoint `eid`: type 0 (not a hardware address, RFC 2132
/// 9.14) and a name only this endpoint has. ipvlan endpoints share the
/// parent's MAC, so the server tells them apart by this alone.
pub(crate) fn client_id(eid: &str) -> Vec<u8> {
    let mut id = vec![0u8];
    id.extend_from_slice(b"ipvlan-rs:");
    id.extend(eid.bytes().take(64));
    id
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl LeaseRecord {
    fn client(&self) -> ClientId {
        ClientId {
            client_id: self.client_id.clone(),
            hardware: self.hardware,
            hostname: self.hostname.clone(),
        }
    }

    /// Whether the lease ran out (by the wall clock: it survives restarts).
    pub(crate) fn expired(&self, now: u64) -> bool {
        self.lease.expires_at().is_some_and(|end| now >= end)
    }
}

/// Whether containers of `kind` have MACs of their own (and so a `chaddr`
/// of their own): macvlan, except passthru, which takes the parent's.
pub(crate) fn own_mac(kind: &LinkKind) -> bool {
    matches!(kind, LinkKind::MacVlan { .. }) && !kind.is_passthru()
}

/// Refuses `record` if another lease of this plugin (`leases`, by key)
/// holds its address. Servers that key leases by MAC alone (busybox
/// udhcpd) answer two ipvlan endpoints, which share the parent's MAC,
/// with one address: the first to be recorded keeps it.
pub(crate) fn check_address_unshared(
    leases: &HashMap<String, LeaseRecord>,
    key: &str,
    record: &LeaseRecord,
    parent: &str,
) -> Result<(), DriverError> {
    let holder = leases
        .iter()
        .find(|(k, l)| k.as_str() != key && !l.lost && l.lease.address == record.lease.address);
    match holder {
        None => Ok(()),
        Some((k, l)) => Err(DriverError::DhcpAddressShared {
            network: record.network.clone(),
            server: record.lease.server,
            parent: parent.to_string(),
            address: record.lease.address,
            holder: match k.strip_prefix("host-link:") {
                Some(_) => format!("the host link of network {}", l.network),
                None => format!("endpoint {k}"),
            },
        }),
    }
}

impl Driver {
    /// `network`'s parent as the DHCP client needs it, found and brought
    /// up as Join finds it ([`Driver::parent_up`]: renamed or not).
    async fn dhcp_parent(&self, network: &NetworkRecord) -> Result<Parent, DriverError> {
        let link = self.parent_up(network).await?;
        let mac = link
            .mac
            .ok_or_else(|| DriverError::ParentWithoutMac(link.name.clone()))?;
        Ok(Parent {
            name: link.name,
            index: link.index,
            mac,
            mtu: link.mtu,
        })
    }

    /// Leases an address for endpoint `eid` of `network`. A macvlan
    /// endpoint asks with the MAC its link will have (`user_mac`, or one
    /// chosen now), so the server's binding names the container's MAC.
    pub(crate) async fn acquire_lease(
        &self,
        network: &NetworkRecord,
        eid: &str,
        user_mac: Option<[u8; 6]>,
        hostname: Option<String>,
    ) -> Result<LeaseRecord, DriverError> {
        let dhcp_error = |source| DriverError::Dhcp {
            network: network.id.clone(),
            source,
        };
        let parent = self.dhcp_parent(network).await?;
        let hardware = match own_mac(&network.options.kind) {
            true => user_mac.unwrap_or_else(random_mac),
            false => parent.mac,
        };
        let client = ClientId {
            client_id: client_id(eid),
            hardware,
            hostname,
        };
        let lease = dhcp::acquire(&parent, &client, &self.config.dhcp).await;
        self.count_exchange(DhcpKind::Acquire, &lease);
        if matches!(lease, Err(DhcpError::AddressInUse { .. })) {
            self.counters
                .dhcp
                .exchange(DhcpKind::Decline, DhcpOutcome::Ok);
        }
        let lease = lease.map_err(dhcp_error)?;
        tracing::info!(network = %network.id, endpoint = eid, address = %lease.address, prefix = lease.prefix_len, router = ?lease.router, server = %lease.server, lease_secs = lease.lease_secs, "DHCP lease obtained");
        Ok(LeaseRecord {
            endpoint: eid.to_string(),
            network: network.id.clone(),
            client_id: client.client_id,
            hardware,
            hostname: client.hostname,
            lease,
            lost: false,
        })
    }

    /// Gives a lease back (DHCPRELEASE). Best effort: a release that cannot
    /// be sent leaves the lease to run out at the server, and is logged.
    pub(crate) async fn release_lease(&self, network: &NetworkRecord, record: &LeaseRecord) {
        if record.lost {
            return;
        }
        let sent = match self.dhcp_parent(network).await {
            Ok(p) => {
                let sent =
                    dhcp::release(&p, &record.client(), &record.lease, &self.config.dhcp).await;
                self.count_exchange(DhcpKind::Release, &sent);
                sent.map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        match sent {
            Ok(()) => {
                tracing::info!(endpoint = %record.endpoint, address = %record.lease.address, "DHCP lease released")
            }
            Err(error) => {
                tracing::warn!(endpoint = %record.endpoint, address = %record.lease.address, %error, "could not release the DHCP lease; the server keeps it until it runs out")
            }
        }
    }

    /// Logs the leases that ran out while the plugin was down (called at
    /// open; [`Driver::run_renewals`] then asks for them again).
    pub(crate) fn report_expired(leases: &HashMap<String, LeaseRecord>) {
        let now = now_secs();
        for l in leases.values().filter(|l| !l.lost && l.expired(now)) {
            tracing::error!(endpoint = %l.endpoint, network = %l.network, address = %l.lease.address, "the DHCP lease of endpoint {} ({}) ran out while the plugin was down; asking the server for the address again", l.endpoint, l.lease.address);
        }
    }

    /// Renews endpoint `eid`'s lease now (RENEWING: unicast to its server,
    /// whose answer comes back addressed to the container), whatever its
    /// T1; for tests and diagnostics. Returns when the lease now ends.
    pub async fn renew_lease_now(&self, eid: &str) -> Result<Option<u64>, DriverError> {
        let (record, network) = {
            let state = self.state.lock().await;
            let record = state.leases.get(eid).cloned();
            let network = record
                .as_ref()
                .and_then(|r| state.networks.get(&r.network))
                .cloned();
            match (record, network) {
                (Some(r), Some(n)) => (r, n),
                _ => return Err(DriverError::NoLease(eid.to_string())),
            }
        };
        let p = self.dhcp_parent(&network).await?;
        let lease = dhcp::renew(&p, &record.client(), &record.lease, &self.config.dhcp).await;
        self.count_exchange(DhcpKind::Renew, &lease);
        let lease = lease.map_err(|source| DriverError::Dhcp {
            network: record.network.clone(),
            source,
        })?;
        let until = lease.expires_at();
        self.store_lease(LeaseRecord { lease, ..record }).await;
        Ok(until)
    }

    /// Extends every lease at its T1 (RENEWING), T2 (REBINDING) or, once
    /// run out, by INIT-REBOOT (then from INIT, naming the address, if no
    /// server answers), for as long as the driver lives. Run it on
    /// the plugin's runtime after start-up; due leases are extended
    /// concurrently.
    pub async fn run_renewals(self: Arc<Self>) {
        let mut retry_at: HashMap<String, u64> = HashMap::new();
        loop {
            tokio::time::sleep(RENEWAL_TICK).await;
            let now = now_secs();
            let due: Vec<(LeaseRecord, NetworkRecord)> = {
                let state = self.state.lock().await;
                state
                    .leases
                    .values()
                    .filter(|l| !l.lost)
                    .filter(|l| l.lease.renew_at().is_some_and(|t1| now >= t1))
                    .filter(|l| retry_at.get(&l.endpoint).is_none_or(|at| now >= *at))
                    .filter_map(|l| {
                        let network = state.networks.get(&l.network)?.clone();
                        Some((l.clone(), network))
                    })
                    .collect()
            };
            retry_at.retain(|eid, _| due.iter().any(|(l, _)| &l.endpoint == eid));
            let results = futures::future::join_all(
                due.iter()
                    .map(|(l, network)| self.extend_lease(l, network, now)),
            )
            .await;
            for ((l, _), retry) in due.iter().zip(results) {
                match retry {
                    Some(at) => retry_at.insert(l.endpoint.clone(), at),
                    None => retry_at.remove(&l.endpoint),
                };
            }
        }
    }

    /// One extension of `record`; the time to try again if it went
    /// unanswered. A lease the server refused (DHCPNAK), or one that ran
    /// out and whose INIT-REBOOT nobody answered (non-authoritative
    /// servers ignore clients they do not know), is asked for again from
    /// INIT ([`dhcp::reclaim`]): the container keeps its address, so only
    /// that address will do. If no server gives it back, the lease is lost.
    async fn extend_lease(
        &self,
        record: &LeaseRecord,
        network: &NetworkRecord,
        now: u64,
    ) -> Option<u64> {
        let eid = record.endpoint.as_str();
        // not beside this endpoint's DeleteEndpoint, which releases it
        let _turn = self.endpoint_turns.one(eid).await;
        let address = record.lease.address;
        let expired = record.expired(now);
        let rebinding = record.lease.rebind_at().is_some_and(|t2| now >= t2);
        let p = match self.dhcp_parent(network).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(endpoint = eid, %address, error = %e, "cannot extend the DHCP lease now");
                return Some(now + retry_delay(record, now));
            }
        };
        let (client, lease, settings) = (record.client(), &record.lease, &self.config.dhcp);
        let (kind, result) = match (expired, rebinding) {
            (true, _) => (
                DhcpKind::Reboot,
                dhcp::reboot(&p, &client, lease, settings).await,
            ),
            (false, true) => (
                DhcpKind::Rebind,
                dhcp::rebind(&p, &client, lease, settings).await,
            ),
            (false, false) => (
                DhcpKind::Renew,
                dhcp::renew(&p, &client, lease, settings).await,
            ),
        };
        self.count_exchange(kind, &result);
        let refused = matches!(result, Err(DhcpError::Nak { .. }));
        let (result, reclaimed) = match result {
            Err(e) if reclaim_after(&e, expired) => {
                tracing::warn!(endpoint = eid, %address, error = %e, "DHCP lease of endpoint {eid} not extended; asking the server to offer {address} again");
                let again = dhcp::reclaim(&p, &client, lease, settings).await;
                self.count_exchange(DhcpKind::Reclaim, &again);
                (again, true)
            }
            other => (other, false),
        };
        match result {
            Ok(lease) => {
                let until = lease.expires_at();
                let renewed = LeaseRecord {
                    lease,
                    ..record.clone()
                };
                if self.store_lease(renewed).await {
                    match reclaimed {
                        true => {
                            tracing::info!(endpoint = eid, %address, until = ?until, "DHCP lease regained: the server granted endpoint {eid} its address {address} again")
                        }
                        false => {
                            tracing::info!(endpoint = eid, %address, until = ?until, "DHCP lease extended")
                        }
                    }
                }
                None
            }
            // the server refused, or holds the address for nobody we can
            // ask for: asking again would not change its mind
            Err(e) if gives_up(refused, &e) => {
                match refused {
                    true => {
                        tracing::error!(endpoint = eid, %address, error = %e, "the DHCP server refused to extend the lease of endpoint {eid} ({address}) and did not grant the address again; its container keeps an address the server no longer holds for it")
                    }
                    false => {
                        tracing::error!(endpoint = eid, %address, error = %e, "the DHCP lease of endpoint {eid} ({address}) has run out and no server grants the address again; its container keeps an address the server no longer holds for it")
                    }
                }
                self.store_lease(LeaseRecord {
                    lost: true,
                    ..record.clone()
                })
                .await;
                None
            }
            Err(e) => {
                if expired {
                    tracing::error!(endpoint = eid, %address, error = %e, "the DHCP lease of endpoint {eid} ({address}) has run out and no server extends it");
                } else {
                    tracing::warn!(endpoint = eid, %address, error = %e, "DHCP lease not extended yet; trying again");
                }
                Some(now + retry_delay(record, now))
            }
        }
    }

    /// Counts one exchange for `GET /metrics`.
    fn count_exchange<T>(&self, kind: DhcpKind, result: &Result<T, DhcpError>) {
        self.counters.dhcp.exchange(kind, DhcpOutcome::of(result));
    }

    /// Stores `record` if its endpoint still has a lease (it may have been
    /// deleted meanwhile); whether it did.
    async fn store_lease(&self, record: LeaseRecord) -> bool {
        let mut state = self.state.lock().await;
        if !state.leases.contains_key(&record.endpoint) {
            return false;
        }
        let op = match put(LEASES, &record.endpoint, &record) {
            Ok(op) => op,
            Err(e) => {
                tracing::error!(endpoint = %record.endpoint, error = %e, "cannot store the DHCP lease");
                return false;
            }
        };
        let commit = self.store.submit(vec![op]);
        state.leases.insert(record.endpoint.clone(), record);
        drop(state);
        match commit.durable().await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "cannot store the DHCP lease");
                false
            }
        }
    }
}

/// Whether an extension that failed with `error` is followed by asking for
/// the address from INIT ([`dhcp::reclaim`]): after a refusal, and after
/// an INIT-REBOOT of a run-out lease that nobody answered (servers that are
/// not authoritative ignore clients they have no lease for). Unanswered
/// renewals of a current lease are only tried again later.
fn reclaim_after(error: &DhcpError, expired: bool) -> bool {
    match error {
        DhcpError::Nak { .. } => true,
        DhcpError::NoServer { .. } => expired,
        _ => false,
    }
}

/// Whether the lease is lost after its reclaim failed with `error`
/// (`refused`: the extension before it was NAKed): a server said no, or
/// offered only other addresses. Silence is tried again later, unless a
/// server had just refused the lease.
fn gives_up(refused: bool, error: &DhcpError) -> bool {
    refused || matches!(error, DhcpError::NotOffered { .. } | DhcpError::Nak { .. })
}

/// How long to wait before trying an unanswered extension again: half the
/// time left to the next deadline (RFC 2131 4.4.5), at least a second, at
/// most a minute.
fn retry_delay(record: &LeaseRecord, now: u64) -> u64 {
    let next = [record.lease.rebind_at(), record.lease.expires_at()]
        .into_iter()
        .flatten()
        .find(|t| *t > now);
    next.map_or(RETRY_MAX_SECS, |t| (t - now) / 2)
        .clamp(1, RETRY_MAX_SECS)
}

/// The address and prefix of a lease as the engine takes them.
pub(crate) fn lease_address(lease: &dhcp::Lease) -> Option<ipnet::IpNet> {
    ipnet::Ipv4Net::new(lease.address, lease.prefix_len)
        .ok()
        .map(ipnet::IpNet::V4)
}

/// The lease's router as the endpoint's gateway.
pub(crate) fn lease_gateway(lease: &dhcp::Lease) -> Option<std::net::IpAddr> {
    lease.router.map(|r: Ipv4Addr| r.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_link::host_link_lease_key;
    use std::sync::Mutex;

    /// What a subscriber wrote, shared with the test.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The log lines `f` writes.
    fn logged(f: impl FnOnce()) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
    }

    fn record(endpoint: &str, address: [u8; 4], granted_at: u64, lost: bool) -> LeaseRecord {
        LeaseRecord {
            endpoint: endpoint.into(),
            network: "net1".into(),
            client_id: client_id(endpoint),
            hardware: [2, 0, 0, 0, 0, 1],
            hostname: None,
            lease: dhcp::Lease {
                address: address.into(),
                prefix_len: 24,
                router: None,
                server: Ipv4Addr::new(10, 77, 0, 1),
                server_mac: [2, 0, 0, 0, 0, 9],
                lease_secs: 120,
                renew_secs: 60,
                rebind_secs: 105,
                granted_at,
            },
            lost,
        }
    }

    #[test]
    fn refused_or_run_out_and_unanswered_leases_are_asked_for_from_init() {
        let parent = || "hp0".to_string();
        let address = Ipv4Addr::new(10, 77, 0, 57);
        let nak = DhcpError::Nak {
            parent: parent(),
            address,
            server: Ipv4Addr::new(10, 77, 0, 1),
            message: String::new(),
        };
        let silence = DhcpError::NoServer {
            parent: parent(),
            waited: Duration::from_secs(5),
        };
        let other = DhcpError::NotOffered {
            parent: parent(),
            address,
            offered: Ipv4Addr::new(10, 77, 0, 99),
        };
        // a NAK, current or run out: ask from INIT
        assert!(reclaim_after(&nak, false) && reclaim_after(&nak, true));
        // silence: only once the lease ran out (INIT-REBOOT unanswered)
        assert!(reclaim_after(&silence, true));
        assert!(!reclaim_after(&silence, false));
        // the reclaim failed: lost if anyone said no or offered another
        assert!(gives_up(false, &other) && gives_up(false, &nak));
        assert!(gives_up(true, &silence));
        // a run-out lease nobody answers at all: tried again later
        assert!(!gives_up(false, &silence));
    }

    #[test]
    fn a_lease_that_ran_out_while_the_plugin_was_down_is_logged_naming_it() {
        let now = now_secs();
        let leases: HashMap<String, LeaseRecord> = [
            // granted an hour ago, for two minutes: run out
            record("ep-expired", [10, 77, 0, 57], now - 3600, false),
            // granted just now: current
            record("ep-current", [10, 77, 0, 58], now, false),
            // run out, but already given up on: said before
            record("ep-lost", [10, 77, 0, 59], now - 3600, true),
        ]
        .into_iter()
        .map(|r| (r.endpoint.clone(), r))
        .collect();
        assert!(leases["ep-expired"].expired(now));
        assert!(!leases["ep-current"].expired(now));
        let log = logged(|| Driver::report_expired(&leases));
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 1, "{log}");
        let line = lines[0];
        assert!(line.contains("ERROR"), "{line}");
        assert!(
            line.contains("the DHCP lease of endpoint ep-expired (10.77.0.57) ran out while the plugin was down"),
            "{line}"
        );
        assert!(line.contains("network=net1"), "{line}");
    }

    #[test]
    fn an_address_another_lease_holds_is_refused_naming_the_holder() {
        let mut leases = HashMap::new();
        leases.insert("e1".to_string(), record("e1", [10, 0, 0, 5], 1, false));
        let hl = host_link_lease_key("net1");
        leases.insert(hl.clone(), record(&hl, [10, 0, 0, 6], 1, false));
        leases.insert("gone".to_string(), record("gone", [10, 0, 0, 7], 1, true));
        // the endpoint's own lease (a repeated create), a free address and
        // one only a lost lease had are fine
        for (key, a) in [
            ("e1", [10, 0, 0, 5]),
            ("e2", [10, 0, 0, 8]),
            ("e2", [10, 0, 0, 7]),
        ] {
            check_address_unshared(&leases, key, &record(key, a, 1, false), "eth0").unwrap();
        }
        for (a, holder) in [
            ([10, 0, 0, 5], "endpoint e1"),
            ([10, 0, 0, 6], "the host link of network net1"),
        ] {
            let err = check_address_unshared(&leases, "e2", &record("e2", a, 1, false), "eth0")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(holder) && err.contains("eth0") && err.contains("kind=macvlan"),
                "{err}"
            );
        }
    }
}
