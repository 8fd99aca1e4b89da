//! Released container links kept for reuse while a network churns.
//!
//! Creating a container link and deleting it cost the kernel ~200 us of CPU
//! each, and the delete holds the rtnl lock through an RCU grace period,
//! which every other link operation on the host waits for. When endpoints
//! come and go quickly (a service scaling, a batch of short jobs), a link
//! released by DeleteEndpoint is, within milliseconds, followed by a Join
//! that needs one just like it. So a released link is kept as a *spare*
//! for a short window and handed to the next endpoint of the same network
//! instead of being deleted and re-created.
//!
//! The rule for "churning": at the moment of a release, the network's last
//! two endpoint creations both lie within the window before it. Creations
//! arriving at least two per window right now predict that another will
//! follow within the window, which is when a spare pays:
//! - a service scaling up, a batch of short jobs, parallel `docker run --rm`
//!   (creations back to back): released links are kept and reused;
//! - a service scaling down, a rolling update step, a lone or sequential
//!   `docker run --rm` whose container lives longer than the window, a
//!   short-lived container beside long-running ones: the older creation is
//!   out of the window, nothing is kept, and no link outlives its endpoint.
//!   A sequential `docker run` loop spends hundreds of milliseconds in the
//!   engine per run, far more than a link costs, so it loses nothing.
//!
//! Invariants:
//! - A link becomes a spare only if the network is churning (above) and the
//!   link has exactly
//!   the shape of a link freshly created on that network (the *template*,
//!   taken at the network's first Join): same kind, mode, parent, MTU,
//!   flags, queue and offload settings, no alias, altname or XDP program.
//!   Moving a link between namespaces already drops its addresses, routes,
//!   neighbours, per-device sysctls and queueing disciplines; anything else
//!   a container changed makes the shape differ, and the link is deleted.
//!   One thing escapes the shape: BPF programs attached through tcx survive
//!   a move and are not link attributes. Only a container allowed to load
//!   BPF (CAP_BPF or CAP_SYS_ADMIN) can leave one; where such containers
//!   run, `LINK_REUSE_MS=0` turns reuse off.
//! - A macvlan spare gets a new random MAC when it is reused, as a new link
//!   would.
//! - A spare lives at most one window, then goes to the reaper; DeleteNetwork
//!   and shutdown delete spares at once. Spares are kept in memory only: after
//!   a crash they are links of no endpoint, which reconcile deletes.
//! - At most [`MAX_SPARES`] per network.

use crate::link::LinkShape;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Most spares one network keeps.
pub(crate) const MAX_SPARES: usize = 16;

/// A released link kept for reuse.
#[derive(Debug, Clone)]
pub(crate) struct Spare {
    /// Distinguishes this parking from an earlier one of the same link.
    pub id: u64,
    pub name: String,
    pub index: u32,
    /// The parent's index and the MTU when the link was released: a parent
    /// re-created or given another MTU since makes the spare unfit.
    pub parent: Option<u32>,
    pub mtu: Option<u32>,
}

#[derive(Default)]
struct NetworkSpares {
    spares: Vec<Spare>,
    /// When the network's last two endpoints were created (older first).
    creates: [Option<Instant>; 2],
    /// The shape of a link just created on this network.
    template: Option<LinkShape>,
}

/// The spares of every network.
#[derive(Default)]
pub(crate) struct Spares {
    networks: HashMap<String, NetworkSpares>,
    next_id: u64,
}

impl Spares {
    /// Notes an endpoint created on `network` at `now`.
    pub fn created(&mut self, network: &str, now: Instant) {
        let n = self.networks.entry(network.to_string()).or_default();
        n.creates = [n.creates[1], Some(now)];
    }

    /// The network's template, if a fresh link was seen.
    pub fn template(&self, network: &str) -> Option<&LinkShape> {
        self.networks.get(network)?.template.as_ref()
    }

    /// Records the shape of a link just created on `network`.
    pub fn set_template(&mut self, network: &str, shape: LinkShape) {
        self.networks
            .entry(network.to_string())
            .or_default()
            .template = Some(shape);
    }

    /// Why a released link of `network` with `shape` may not be kept
    /// (`None`: it may).
    pub fn refusal(
        &self,
        network: &str,
        shape: &LinkShape,
        now: Instant,
        window: Duration,
    ) -> Option<String> {
        let Some(n) = self.networks.get(network) else {
            return Some("no endpoint created on the network yet".into());
        };
        let churning = n.creates[0].is_some_and(|t| now.duration_since(t) <= window);
        if !churning {
            return Some("the network is not churning".into());
        }
        if n.spares.len() >= MAX_SPARES {
            return Some(format!("the network already keeps {MAX_SPARES} spares"));
        }
        match &n.template {
            None => Some("no fresh link seen on the network yet".into()),
            Some(t) => t.difference(shape).map(|d| format!("changed: {d}")),
        }
    }

    /// Keeps a link as a spare of `network`; returns its parking id.
    pub fn park(&mut self, network: &str, mut spare: Spare) -> u64 {
        self.next_id += 1;
        spare.id = self.next_id;
        self.networks
            .entry(network.to_string())
            .or_default()
            .spares
            .push(spare);
        self.next_id
    }

    /// Takes the most recently parked spare of `network`.
    pub fn claim(&mut self, network: &str) -> Option<Spare> {
        self.networks.get_mut(network)?.spares.pop()
    }

    /// Takes the spare parked as `id`, if it is still parked.
    pub fn expire(&mut self, network: &str, id: u64) -> Option<Spare> {
        let spares = &mut self.networks.get_mut(network)?.spares;
        let at = spares.iter().position(|s| s.id == id)?;
        Some(spares.remove(at))
    }

    /// Forgets `network`, returning its spares.
    pub fn remove_network(&mut self, network: &str) -> Vec<Spare> {
        self.networks
            .remove(network)
            .map(|n| n.spares)
            .unwrap_or_default()
    }

    /// Names of the links `network` keeps as spares.
    pub fn names(&self, network: &str) -> Vec<String> {
        self.networks
            .get(network)
            .map(|n| n.spares.iter().map(|s| s.name.clone()).collect())
            .unwrap_or_default()
    }

    /// Takes every spare of every network.
    pub fn drain(&mut self) -> Vec<Spare> {
        self.networks
            .values_mut()
            .flat_map(|n| std::mem::take(&mut n.spares))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spare(name: &str) -> Spare {
        Spare {
            id: 0,
            name: name.into(),
            index: 7,
            parent: Some(2),
            mtu: Some(1500),
        }
    }

    #[test]
    fn a_link_is_kept_only_while_the_network_churns_and_only_with_a_template() {
        let window = Duration::from_millis(100);
        let mut s = Spares::default();
        let t0 = Instant::now();
        let shape = LinkShape::default();
        assert!(s.refusal("n", &shape, t0, window).is_some());
        s.created("n", t0);
        // one create is not churn: a lone `docker run --rm` deletes its link
        let one = s.refusal("n", &shape, t0, window).unwrap();
        assert!(one.contains("not churning"), "{one}");
        s.created("n", t0 + Duration::from_millis(10));
        let no_template = s.refusal("n", &shape, t0 + window, window).unwrap();
        assert!(no_template.contains("no fresh link"), "{no_template}");
        s.set_template("n", shape.clone());
        assert_eq!(s.refusal("n", &shape, t0 + window, window), None);
        // the older of the last two creates left the window
        let later = t0 + window + Duration::from_millis(1);
        assert!(s.refusal("n", &shape, later, window).is_some());
    }

    #[test]
    fn spares_are_claimed_newest_first_expire_by_id_and_are_capped() {
        let mut s = Spares::default();
        let now = Instant::now();
        s.created("n", now);
        s.created("n", now);
        s.set_template("n", LinkShape::default());
        let a = s.park("n", spare("a"));
        let b = s.park("n", spare("b"));
        assert_ne!(a, b);
        assert_eq!(s.claim("n").map(|x| x.name), Some("b".into()));
        assert!(
            s.expire("n", b).is_none(),
            "a claimed spare does not expire"
        );
        assert_eq!(s.expire("n", a).map(|x| x.name), Some("a".into()));
        assert!(s.claim("n").is_none() && s.claim("other").is_none());
        for i in 0..MAX_SPARES {
            s.park("n", spare(&format!("s{i}")));
        }
        let full = s
            .refusal("n", &LinkShape::default(), now, Duration::from_secs(1))
            .unwrap();
        assert!(full.contains("already keeps"), "{full}");
        assert_eq!(s.drain().len(), MAX_SPARES);
        s.park("n", spare("x"));
        assert_eq!(s.remove_network("n").len(), 1);
        assert!(s.template("n").is_none());
    }
}
