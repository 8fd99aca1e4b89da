//! What the plugin acknowledged, as the host and the guest both track it:
//! the calls the load makes, their outcomes, and the state those outcomes
//! add up to. The host keeps the authoritative copy across boots (the disk
//! under test cannot hold it) and hands it to each boot; the guest checks
//! the plugin against it, resolves the one call in flight at the cut, and
//! applies its own acknowledgements to choose the next calls.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The IPAM pool of the load: small, so that a boot checks every address.
pub const POOL: &str = "10.77.0.0/27";
/// Its PoolID (derived from the pool by the IPAM).
pub const POOL_ID: &str = "local/10.77.0.0/27";
/// Its assignable host numbers (.0 and .31 are reserved).
pub const HOSTS: std::ops::RangeInclusive<u8> = 1..=30;
/// Networks the load creates (and never deletes).
pub const MAX_NETWORKS: u32 = 3;
/// Live endpoints the load keeps at most.
const MAX_ENDPOINTS: usize = 24;
/// Deleted endpoints a boot checks are still gone (the most recent).
const GONE_KEPT: usize = 64;

/// One durable call of the load.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "call")]
pub enum Call {
    /// `IpamDriver.RequestPool` of [`POOL`].
    RequestPool,
    /// `IpamDriver.RequestAddress` of any address of the pool.
    RequestAddress,
    /// `IpamDriver.ReleaseAddress` of 10.77.0.`host`.
    ReleaseAddress {
        /// Host number in the pool.
        host: u8,
    },
    /// `NetworkDriver.CreateNetwork` of network `net` (no parent: the driver
    /// creates a dummy parent, and re-creates it at each start).
    CreateNetwork {
        /// Network number.
        net: u32,
    },
    /// `NetworkDriver.CreateEndpoint`.
    CreateEndpoint {
        /// Network number.
        net: u32,
        /// Endpoint number.
        ep: u64,
    },
    /// `NetworkDriver.DeleteEndpoint`.
    DeleteEndpoint {
        /// Network number.
        net: u32,
        /// Endpoint number.
        ep: u64,
    },
}

/// A call as the load makes it: `dup` sends the same request twice at once
/// (the engine retries), and the first answer counts as the acknowledgement.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Position in the whole run (all boots).
    pub seq: u64,
    /// The call.
    #[serde(flatten)]
    pub call: Call,
    /// Sent twice concurrently.
    pub dup: bool,
}

/// What a call did.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Succeeded (for an allocation: see `Address`).
    Done,
    /// RequestAddress handed out 10.77.0.`n`.
    Address(u8),
    /// RequestAddress found the pool full.
    Exhausted,
    /// (Only for the call in flight at a cut.) It left no trace.
    NotApplied,
}

/// The acknowledged state.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Model {
    /// The pool was leased.
    pub pool: bool,
    /// Host numbers of the pool's allocated addresses.
    pub held: BTreeSet<u8>,
    /// Networks created.
    pub networks: BTreeSet<u32>,
    /// Live endpoints: number -> network.
    pub endpoints: BTreeMap<u64, u32>,
    /// Recently deleted endpoints: number -> network.
    pub gone: BTreeMap<u64, u32>,
    /// The call sent but not acknowledged when the last boot ended.
    pub in_flight: Option<Step>,
    /// Next step number and next endpoint number.
    pub next_seq: u64,
    /// Next endpoint number.
    pub next_ep: u64,
    /// Acknowledged calls so far (all boots).
    pub acked: u64,
}

impl Model {
    /// A call is about to be sent.
    pub fn begin(&mut self, step: &Step) {
        self.next_seq = self.next_seq.max(step.seq + 1);
        if let Call::CreateEndpoint { ep, .. } = step.call {
            self.next_ep = self.next_ep.max(ep + 1);
        }
        self.in_flight = Some(step.clone());
    }

    /// The call in flight ended with `outcome`. An `Err` is a finding: the
    /// plugin contradicted what it acknowledged before.
    pub fn apply(&mut self, outcome: &Outcome) -> Result<(), String> {
        let Some(step) = self.in_flight.take() else {
            return Err(format!("outcome {outcome:?} without a call in flight"));
        };
        if *outcome != Outcome::NotApplied {
            self.acked += 1;
        }
        match (&step.call, outcome) {
            (_, Outcome::NotApplied) => {}
            (Call::RequestPool, Outcome::Done) => self.pool = true,
            (Call::RequestAddress, Outcome::Address(h)) => {
                if !self.held.insert(*h) {
                    return Err(format!(
                        "step {}: RequestAddress handed out 10.77.0.{h}, which an acknowledged allocation holds: the address is held twice",
                        step.seq
                    ));
                }
            }
            (Call::RequestAddress, Outcome::Exhausted) => {
                if self.held.len() < HOSTS.count() {
                    return Err(format!(
                        "step {}: RequestAddress found the pool full, but only {} of its {} addresses are held by acknowledged allocations ({:?})",
                        step.seq,
                        self.held.len(),
                        HOSTS.count(),
                        self.held
                    ));
                }
            }
            (Call::ReleaseAddress { host }, Outcome::Done) => {
                self.held.remove(host);
            }
            (Call::CreateNetwork { net }, Outcome::Done) => {
                self.networks.insert(*net);
            }
            (Call::CreateEndpoint { net, ep }, Outcome::Done) => {
                self.endpoints.insert(*ep, *net);
                self.gone.remove(ep);
            }
            (Call::DeleteEndpoint { net, ep }, Outcome::Done) => {
                self.endpoints.remove(ep);
                self.gone.insert(*ep, *net);
                while self.gone.len() > GONE_KEPT {
                    self.gone.pop_first();
                }
            }
            (call, outcome) => return Err(format!("{call:?} cannot end in {outcome:?}")),
        }
        Ok(())
    }

    /// The next call of the load.
    pub fn choose(&self, rng: &mut Rng) -> Step {
        let mut next_net = (0..MAX_NETWORKS).filter(|n| !self.networks.contains(n));
        let call = loop {
            if !self.pool {
                break Call::RequestPool;
            }
            if let Some(net) = next_net.next()
                && (self.networks.is_empty() || rng.below(10) == 0)
            {
                break Call::CreateNetwork { net };
            }
            match rng.below(100) {
                0..35 if self.held.len() < 26 => break Call::RequestAddress,
                // now and then into a full pool
                35..37 => break Call::RequestAddress,
                37..60 if !self.held.is_empty() => {
                    let held: Vec<u8> = self.held.iter().copied().collect();
                    break Call::ReleaseAddress {
                        host: held[rng.below(held.len() as u64) as usize],
                    };
                }
                60..80 if self.endpoints.len() < MAX_ENDPOINTS && !self.networks.is_empty() => {
                    let nets: Vec<u32> = self.networks.iter().copied().collect();
                    break Call::CreateEndpoint {
                        net: nets[rng.below(nets.len() as u64) as usize],
                        ep: self.next_ep,
                    };
                }
                80..100 if !self.endpoints.is_empty() => {
                    let eps: Vec<(u64, u32)> =
                        self.endpoints.iter().map(|(e, n)| (*e, *n)).collect();
                    let (ep, net) = eps[rng.below(eps.len() as u64) as usize];
                    break Call::DeleteEndpoint { net, ep };
                }
                _ => {}
            }
        };
        // a duplicate of an allocation would be a second allocation
        let dup = call != Call::RequestAddress && rng.below(4) == 0;
        Step {
            seq: self.next_seq,
            call,
            dup,
        }
    }
}

/// The Docker-style 64-hex-digit ID of network `net`.
pub fn network_id(net: u32) -> String {
    hex_id(0x6e65_7400_0000_0000 | u64::from(net))
}

/// The ID of endpoint `ep`.
pub fn endpoint_id(ep: u64) -> String {
    hex_id(ep.wrapping_add(0x6570_0000_0000_0000))
}

/// Random-looking (as the engine's IDs are) and unique per input.
fn hex_id(seed: u64) -> String {
    let mut r = Rng(seed);
    (0..4).map(|_| format!("{:016x}", r.next())).collect()
}

/// SplitMix64: small, seedable, good enough to pick calls and cut moments.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(seq: u64, call: Call) -> Step {
        Step {
            seq,
            call,
            dup: false,
        }
    }

    #[test]
    fn an_address_handed_out_twice_is_a_finding() {
        let mut m = Model::default();
        m.begin(&step(0, Call::RequestAddress));
        m.apply(&Outcome::Address(5)).unwrap();
        m.begin(&step(1, Call::RequestAddress));
        let err = m.apply(&Outcome::Address(5)).unwrap_err();
        assert!(err.contains("held twice"), "{err}");
    }

    #[test]
    fn a_full_pool_with_free_addresses_in_the_model_is_a_finding() {
        let mut m = Model::default();
        m.begin(&step(0, Call::RequestAddress));
        assert!(m.apply(&Outcome::Exhausted).is_err());
    }

    #[test]
    fn deletions_are_remembered_and_ids_stay_distinct() {
        let mut m = Model::default();
        m.begin(&step(0, Call::CreateEndpoint { net: 0, ep: 7 }));
        m.apply(&Outcome::Done).unwrap();
        m.begin(&step(1, Call::DeleteEndpoint { net: 0, ep: 7 }));
        m.apply(&Outcome::Done).unwrap();
        assert!(m.endpoints.is_empty());
        assert_eq!(m.gone.get(&7), Some(&0));
        assert_eq!(m.next_ep, 8);
        assert_eq!(m.acked, 2);
        assert_ne!(endpoint_id(1), endpoint_id(2));
        assert_ne!(network_id(1), network_id(2));
        assert_eq!(endpoint_id(1).len(), 64);
    }

    #[test]
    fn the_load_starts_with_the_pool_and_a_network() {
        let mut m = Model::default();
        let mut rng = Rng(1);
        let s = m.choose(&mut rng);
        assert_eq!(s.call, Call::RequestPool);
        m.begin(&s);
        m.apply(&Outcome::Done).unwrap();
        let s = m.choose(&mut rng);
        assert_eq!(s.call, Call::CreateNetwork { net: 0 });
    }
}
