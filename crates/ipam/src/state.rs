//! The in-memory IPAM state and the store operations that mirror each change.
//!
//! Every mutating method validates first and changes memory only once it
//! cannot fail, returning the [`Op`]s that make the change durable.

mod addresses;
mod pool;
mod restore;
mod usage;

use crate::range::{from_int, reserved_role};
use crate::{DefaultPool, IpamError, PoolLease};
use addresses::{ADDRESSES, Allocations, address_key, parse_address_key};
use ipnet::IpNet;
use pool::{Owner, Owners, POOLS, Pool, PoolRecord};
use protocol::options::IPAM_SERIAL;
use restore::{PendingLeases, Restore};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::Instant;
use store::{Op, Store};

pub use pool::{AddressSpace, PoolId};

pub(crate) const TABLES: &[&str] = &[POOLS, ADDRESSES];

fn family(v6: bool) -> &'static str {
    if v6 { "IPv6" } else { "IPv4" }
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The whole IPAM state.
#[derive(Default)]
pub(crate) struct State {
    pools: HashMap<PoolId, Pool>,
    spaces: HashMap<AddressSpace, Allocations>,
    owners: Owners,
    pending: PendingLeases,
}

impl State {
    pub(crate) fn load(store: &Store) -> Result<State, IpamError> {
        let mut state = State::default();
        for (key, value) in store.load(POOLS)? {
            let id =
                String::from_utf8(key).map_err(|e| IpamError::Corrupt(format!("pool key: {e}")))?;
            let record: PoolRecord = serde_json::from_slice(&value)
                .map_err(|e| IpamError::Corrupt(format!("pool {id}: {e}")))?;
            let id = PoolId(id.into());
            let owner = state.owners.intern(&id);
            state
                .pools
                .insert(id.clone(), Pool::new(id, owner, record)?);
        }
        for (key, value) in store.load(ADDRESSES)? {
            let (space, addr) = parse_address_key(&key)
                .ok_or_else(|| IpamError::Corrupt(format!("address key {key:?}")))?;
            let owner = String::from_utf8(value)
                .map_err(|e| IpamError::Corrupt(format!("address owner: {e}")))?;
            if !state.pools.contains_key(owner.as_str()) {
                tracing::warn!(%addr, pool_id = %owner, "allocated address of a released pool kept reserved");
            }
            let owner = state.owners.intern(&PoolId(owner.into()));
            state.spaces.entry(space).or_default().insert(addr, owner);
        }
        Ok(state)
    }

    pub(crate) fn pool_count(&self) -> usize {
        self.pools.len()
    }

    pub(crate) fn address_count(&self) -> usize {
        self.spaces.values().map(Allocations::len).sum()
    }

    #[cfg(test)]
    fn pool_leases(&self, id: &str) -> Option<(u32, Vec<String>)> {
        let pool = self.pools.get(id)?;
        Some((
            pool.record.refs,
            pool.record.networks.iter().cloned().collect(),
        ))
    }

    pub(crate) fn is_allocated(&self, space: &AddressSpace, addr: IpAddr) -> bool {
        self.spaces
            .get(space)
            .is_some_and(|a| a.get(addr).is_some())
    }

    /// A free pool from the default ranges: overlapping no pool of any
    /// space and no host route.
    pub(crate) fn choose_pool(
        &self,
        space: &AddressSpace,
        v6: bool,
        defaults: &[DefaultPool],
        host_routes: &[IpNet],
    ) -> Result<IpNet, IpamError> {
        let routes: Vec<&IpNet> = host_routes.iter().filter(|r| r.prefix_len() > 0).collect();
        let candidates = defaults
            .iter()
            .filter(|d| matches!(d.base, IpNet::V6(_)) == v6);
        for default in candidates {
            let Ok(subnets) = default.base.subnets(default.size) else {
                continue;
            };
            for candidate in subnets {
                let used = self
                    .pools
                    .values()
                    .any(|p| overlaps(&p.record.pool, &candidate))
                    || routes.iter().any(|r| overlaps(r, &candidate));
                if !used {
                    tracing::debug!(space = space.name(), pool = %candidate, "chose a default pool");
                    return Ok(candidate);
                }
            }
        }
        let ranges = defaults
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        Err(IpamError::NoFreePool {
            family: family(v6),
            ranges,
        })
    }

    pub(crate) fn lease_pool(
        &mut self,
        space: AddressSpace,
        pool: IpNet,
        sub_pool: Option<IpNet>,
        v6: bool,
        options: &BTreeMap<String, String>,
        now: Instant,
    ) -> Result<(PoolLease, Vec<Op>), IpamError> {
        let pool_v6 = matches!(pool, IpNet::V6(_));
        if pool_v6 != v6 {
            return Err(IpamError::FamilyMismatch {
                pool,
                family: family(pool_v6),
                asked: family(v6),
            });
        }
        if pool.prefix_len() == 0 {
            return Err(IpamError::InvalidPool(
                pool,
                "the whole address range cannot be a pool",
            ));
        }
        let pool = pool.trunc();
        let sub_pool = sub_pool.map(|s| s.trunc());
        if let Some(sub) = sub_pool
            && !(pool.contains(&sub.network())
                && pool.contains(&sub.broadcast())
                && sub.prefix_len() >= pool.prefix_len())
        {
            return Err(IpamError::SubPoolOutsidePool {
                sub_pool: sub,
                pool,
            });
        }
        let id = PoolId::new(space, &pool, sub_pool.as_ref());
        if let Some(existing) = self.pools.get_mut(&id) {
            let mut record = existing.record.clone();
            record.refs = record.refs.saturating_add(1);
            let op = record.put(&id)?;
            existing.record = record;
            if space == AddressSpace::Global {
                // a new leader's allocator restoring (or another network
                // on the same subnet): see `claim`; AllocateNetwork tells
                tracing::info!(pool_id = %id, "global pool leased again: pinned addresses it holds are taken as a Swarm leader's re-claims until its next new allocation, unless AllocateNetwork names a network it never counted");
                match existing.restore.as_mut() {
                    Some(restore) => restore.leased_again(now),
                    None => existing.restore = Some(Restore::new(now)),
                }
                self.pending.push(id.clone(), now);
            }
            return Ok((PoolLease { id, pool }, vec![op]));
        }
        let serial = options
            .get(IPAM_SERIAL)
            .is_none_or(|v| !v.eq_ignore_ascii_case("false"));
        let record = PoolRecord {
            space,
            pool,
            sub_pool,
            refs: 1,
            serial,
            cursor: None,
            networks: BTreeSet::new(),
        };
        // checked before interning, so that a refused pool leaves no owner
        let mut entry = Pool::new(id.clone(), Owner(u32::MAX), record)?;
        let op = entry.record.put(&id)?;
        entry.owner = self.owners.intern(&id);
        self.pools.insert(id.clone(), entry);
        if space == AddressSpace::Global {
            self.pending.push(id.clone(), now);
        }
        Ok((PoolLease { id, pool }, vec![op]))
    }

    /// The pool a network was leased as `subnet` of `space`: the one that
    /// holds `gateway` when one is given and held, else the only pool of
    /// that subnet (pools of one subnet that differ in their sub-pool are
    /// told apart by the gateway alone). Returns its ID and sub-pool.
    pub(crate) fn pool_of_subnet(
        &self,
        space: AddressSpace,
        subnet: IpNet,
        gateway: Option<IpAddr>,
    ) -> Result<Option<(PoolId, Option<IpNet>)>, IpamError> {
        let subnet = subnet.trunc();
        let found = |p: &Pool| (p.id.clone(), p.record.sub_pool);
        let of_gateway = gateway
            .and_then(|g| self.spaces.get(&space)?.get(g))
            .and_then(|owner| self.owners.id(owner))
            .and_then(|id| self.pools.get(id))
            .filter(|p| p.record.pool == subnet);
        if let Some(pool) = of_gateway {
            return Ok(Some(found(pool)));
        }
        let mut candidates = self
            .pools
            .values()
            .filter(|p| p.record.space == space && p.record.pool == subnet);
        match (candidates.next(), candidates.next()) {
            (Some(only), None) => Ok(Some(found(only))),
            (None, _) => Ok(None),
            (Some(_), Some(_)) => Err(IpamError::AmbiguousPool {
                pool: subnet,
                space: space.name().to_string(),
            }),
        }
    }

    /// The writes that release one lease of pool `id`, applied; `None` if
    /// the pool is unknown.
    pub(crate) fn release_pool(&mut self, id: &str) -> Result<Option<Vec<Op>>, IpamError> {
        self.pending.released(id);
        let Some(pool) = self.pools.get_mut(id) else {
            return Ok(None);
        };
        let mut record = pool.record.clone();
        record.refs = record.refs.saturating_sub(1);
        if record.refs > 0 {
            let op = record.put(&pool.id)?;
            pool.record = record;
            return Ok(Some(vec![op]));
        }
        let Some(pool) = self.pools.remove(id) else {
            return Ok(None);
        };
        let mut ops = vec![Op::Delete {
            table: POOLS,
            key: id.as_bytes().to_vec(),
        }];
        if let Some(alloc) = self.spaces.get_mut(&pool.record.space) {
            for addr in alloc.owned_in(&pool.record.pool, pool.owner) {
                tracing::info!(pool_id = id, %addr, "address left in a released pool freed");
                alloc.remove(addr);
                ops.push(Op::Delete {
                    table: ADDRESSES,
                    key: address_key(pool.record.space, addr),
                });
            }
        }
        self.owners.forget(pool.owner);
        Ok(Some(ops))
    }

    fn pool(&self, id: &str) -> Result<&Pool, IpamError> {
        self.pools
            .get(id)
            .ok_or_else(|| IpamError::UnknownPool(id.to_string()))
    }

    /// Reserve a specific address of the pool.
    pub(crate) fn claim(
        &mut self,
        id: &str,
        addr: IpAddr,
        now: Instant,
    ) -> Result<(IpNet, Vec<Op>), IpamError> {
        let pool = self.pool(id)?;
        let (net, space, owner) = (pool.record.pool, pool.record.space, pool.owner);
        let value = pool.id.as_str().as_bytes().to_vec();
        if !net.contains(&addr) {
            return Err(IpamError::OutOfPool {
                address: addr,
                pool: net,
            });
        }
        if let Some(role) = reserved_role(&net, addr) {
            return Err(IpamError::Reserved {
                address: addr,
                role,
                pool: net,
            });
        }
        let cidr = IpNet::new(addr, net.prefix_len()).map_err(|_| IpamError::OutOfPool {
            address: addr,
            pool: net,
        })?;
        let reclaiming = space == AddressSpace::Global
            && pool.restore.as_ref().is_some_and(|r| r.window_open(now));
        let alloc = self.spaces.entry(space).or_default();
        match alloc.get(addr) {
            // A manager that becomes leader starts an allocator afresh: it
            // leases every network's pool again, then re-claims every address
            // it holds (gateways, VIPs, tasks, `--ip` attachments), all before
            // any new allocation. A claim through the pool that holds the
            // address is such a re-claim while that lasts; after it, the same
            // claim is a second `--ip` of an address in use and is refused.
            Some(holder) if holder == owner && reclaiming => {
                self.restore_claimed(id, addr, now);
                return Ok((cidr, Vec::new()));
            }
            Some(holder) if holder == owner => {
                return Err(IpamError::InUse {
                    address: addr,
                    space: space.name().to_string(),
                });
            }
            // an overlapping pool holds it: never a re-claim
            Some(holder) => {
                return Err(IpamError::HeldByPool {
                    address: addr,
                    holder: self
                        .owners
                        .id(holder)
                        .map_or_else(|| "?".to_string(), ToString::to_string),
                    space: space.name().to_string(),
                });
            }
            None => {}
        }
        alloc.insert(addr, owner);
        self.restore_claimed(id, addr, now);
        Ok((
            cidr,
            vec![Op::Put {
                table: ADDRESSES,
                key: address_key(space, addr),
                value,
            }],
        ))
    }

    fn restore_claimed(&mut self, id: &str, addr: IpAddr, now: Instant) {
        if let Some(restore) = self.pools.get_mut(id).and_then(|p| p.restore.as_mut()) {
            restore.claimed(addr, now);
        }
    }

    /// `AllocateNetwork` of Swarm network `network` with IPv4 subnets
    /// `ipv4`: the global leases made since the last one belong to it
    /// (swarmkit leases a network's pools, claims its gateway and calls
    /// AllocateNetwork in one goroutine). A lease for a network the pool
    /// already counts is a new leader's restore: the lease is taken back,
    /// and the pool's restore is confirmed (see [`State::end_restore`]).
    /// One for a network the pool never counted, beside networks it does,
    /// before any of those is allocated again, is a new network on a
    /// subnet in use: the pool's re-claim window closes.
    /// Returns the writes, applied.
    pub(crate) fn network_allocated(
        &mut self,
        network: &str,
        ipv4: &[IpNet],
        now: Instant,
    ) -> Result<Vec<Op>, IpamError> {
        let mut records: BTreeMap<PoolId, PoolRecord> = BTreeMap::new();
        for id in self.pending.take(now) {
            let Some(pool) = self.pools.get(id.as_str()) else {
                continue;
            };
            let net = pool.record.pool;
            // IPv6 subnets are not in AllocateNetwork (swarmkit sends none)
            if matches!(net, IpNet::V4(_)) && !ipv4.iter().any(|s| s.trunc() == net) {
                tracing::debug!(pool_id = %id, network, "global lease of another allocation not matched");
                continue;
            }
            let record = records.entry(id).or_insert_with(|| pool.record.clone());
            if record.networks.contains(network) {
                record.refs = record.refs.saturating_sub(1).max(1);
            } else {
                record.networks.insert(network.to_string());
            }
        }
        let ops = records
            .iter()
            .map(|(id, record)| record.put(id))
            .collect::<Result<Vec<_>, _>>()?;
        for (id, record) in records {
            let Some(pool) = self.pools.get_mut(id.as_str()) else {
                continue;
            };
            let known = pool.record.networks.contains(network);
            if known {
                tracing::info!(pool_id = %id, network, leases = record.refs, "network allocated again by a new Swarm leader: its lease of the pool was counted already");
            }
            if let Some(restore) = pool.restore.as_mut() {
                // the pool counted other networks before this lease, and
                // none of them was allocated again yet
                let counted_others = pool
                    .record
                    .networks
                    .iter()
                    .any(|n| !restore.networks.contains(n));
                if !known && counted_others && !restore.confirmed {
                    tracing::info!(pool_id = %id, network, "global pool leased for a network it never counted: a new network on a subnet in use, so pinned addresses it holds are refused again");
                    restore.new_network(now);
                }
                restore.networks.insert(network.to_string());
                restore.confirmed |= known;
            }
            pool.record = record;
        }
        Ok(ops)
    }

    /// `FreeNetwork`: no pool counts a lease for `network` any more (its
    /// ReleasePool follows). Returns the writes, applied.
    pub(crate) fn network_freed(&mut self, network: &str) -> Result<Vec<Op>, IpamError> {
        let mut changed = Vec::new();
        for pool in self.pools.values() {
            if pool.record.networks.contains(network) {
                let mut record = pool.record.clone();
                record.networks.remove(network);
                changed.push((pool.id.clone(), record));
            }
        }
        let ops = changed
            .iter()
            .map(|(id, record)| record.put(id))
            .collect::<Result<Vec<_>, _>>()?;
        for (id, record) in changed {
            if let Some(pool) = self.pools.get_mut(id.as_str()) {
                pool.record = record;
            }
        }
        Ok(ops)
    }

    /// Before the pool's first new allocation after a restore: swarmkit has
    /// made every restore claim by then. A confirmed restore frees what it
    /// did not claim (freed while another manager led) and forgets networks
    /// it did not name (removed meanwhile) with their leases. Returns the
    /// writes, applied.
    pub(crate) fn end_restore(&mut self, id: &str) -> Result<Vec<Op>, IpamError> {
        let Some(pool) = self.pools.get_mut(id) else {
            return Ok(Vec::new());
        };
        let Some(restore) = pool.restore.take() else {
            return Ok(Vec::new());
        };
        if !restore.confirmed {
            tracing::info!(
                pool_id = id,
                "global pool: a Swarm leader's re-claims ended with its first new allocation"
            );
            return Ok(Vec::new());
        }
        let mut ops = Vec::new();
        let gone: Vec<String> = pool
            .record
            .networks
            .difference(&restore.networks)
            .cloned()
            .collect();
        if !gone.is_empty() {
            let mut record = pool.record.clone();
            for network in &gone {
                record.networks.remove(network);
            }
            let count = u32::try_from(gone.len()).unwrap_or(u32::MAX);
            record.refs = record.refs.saturating_sub(count).max(1);
            ops.push(record.put(&pool.id)?);
            pool.record = record;
        }
        let (space, net, owner, leases) = (
            pool.record.space,
            pool.record.pool,
            pool.owner,
            pool.record.refs,
        );
        let mut freed = 0usize;
        if let Some(alloc) = self.spaces.get_mut(&space) {
            for addr in alloc.owned_in(&net, owner) {
                if restore.claimed.contains(&addr) {
                    continue;
                }
                tracing::debug!(pool_id = id, %addr, "address the restore did not re-claim freed");
                alloc.remove(addr);
                ops.push(Op::Delete {
                    table: ADDRESSES,
                    key: address_key(space, addr),
                });
                freed += 1;
            }
        }
        tracing::info!(
            pool_id = id,
            freed,
            networks_gone = ?gone,
            leases,
            "global pool: a Swarm leader's restore ended with its first new allocation; what it did not re-claim was freed while another manager led and is free again"
        );
        Ok(ops)
    }

    /// Allocate any free address of the pool's dynamic range.
    pub(crate) fn allocate(
        &mut self,
        id: &str,
        serial_requested: bool,
    ) -> Result<(IpNet, Vec<Op>), IpamError> {
        let pool = self.pool(id)?;
        let serial = serial_requested && pool.record.serial;
        let (net, space, lo, hi, cursor) = (
            pool.record.pool,
            pool.record.space,
            pool.lo,
            pool.hi,
            pool.cursor(),
        );
        let (range, owner) = (pool.record.sub_pool.unwrap_or(net), pool.owner);
        let value = pool.id.as_str().as_bytes().to_vec();
        let v6 = matches!(net, IpNet::V6(_));
        let alloc = self.spaces.entry(space).or_default();
        let found = if serial {
            alloc
                .first_free(v6, cursor, hi)
                .or_else(|| alloc.first_free(v6, lo, cursor.saturating_sub(1)))
        } else {
            alloc.first_free(v6, lo, hi)
        };
        let Some(n) = found else {
            return Err(IpamError::Exhausted { range, pool: net });
        };
        let addr = from_int(n, &net);
        let cidr = IpNet::new(addr, net.prefix_len()).map_err(|_| IpamError::OutOfPool {
            address: addr,
            pool: net,
        })?;
        let mut ops = vec![Op::Put {
            table: ADDRESSES,
            key: address_key(space, addr),
            value,
        }];
        let moved_cursor = match self.pools.get_mut(id) {
            Some(pool) if serial => {
                let mut record = pool.record.clone();
                let next = if n >= hi { lo } else { n + 1 };
                record.cursor = Some(from_int(next, &net));
                ops.push(record.put(&pool.id)?);
                Some((pool, record))
            }
            _ => None,
        };
        // applied only now that every write is encoded
        alloc.insert(addr, owner);
        if let Some((pool, record)) = moved_cursor {
            pool.record = record;
        }
        Ok((cidr, ops))
    }

    pub(crate) fn release(&mut self, id: &str, addr: IpAddr) -> Option<Vec<Op>> {
        let pool = self.pools.get(id)?;
        let space = pool.record.space;
        let alloc = self.spaces.get_mut(&space)?;
        match alloc.get(addr) {
            Some(owner) if owner == pool.owner => {
                alloc.remove(addr);
                Some(vec![Op::Delete {
                    table: ADDRESSES,
                    key: address_key(space, addr),
                }])
            }
            Some(owner) => {
                let owner = self.owners.id(owner).map_or("?", PoolId::as_str);
                tracing::warn!(pool_id = id, %addr, owner, "release through another pool ignored");
                None
            }
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::restore::RECLAIM_QUIET;
    use super::*;

    const POOL: &str = "10.88.0.0/24";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// RequestPool in the global space, as swarmkit's allocator asks.
    fn lease(state: &mut State, now: Instant) -> String {
        let (lease, _) = state
            .lease_pool(
                AddressSpace::Global,
                POOL.parse().unwrap(),
                None,
                false,
                &BTreeMap::new(),
                now,
            )
            .unwrap();
        lease.id.to_string()
    }

    /// A network's allocation: its pool, its gateway, AllocateNetwork.
    fn allocate_network(state: &mut State, network: &str, gateway: &str, now: Instant) -> String {
        let id = lease(state, now);
        state.claim(&id, ip(gateway), now).unwrap();
        state
            .network_allocated(network, &[POOL.parse().unwrap()], now)
            .unwrap();
        id
    }

    /// An address-less RequestAddress, as `Ipam::request_address` serves it.
    fn next(state: &mut State, id: &str) -> IpAddr {
        state.end_restore(id).unwrap();
        state.allocate(id, true).unwrap().0.addr()
    }

    /// A claim of `addr` through pool `id` is refused as a second claim.
    fn assert_in_use(state: &mut State, id: &str, addr: IpAddr, now: Instant) {
        let err = state.claim(id, addr, now).unwrap_err();
        assert!(matches!(err, IpamError::InUse { .. }), "{err:?}");
    }

    fn held(state: &State, addr: IpAddr) -> bool {
        state.is_allocated(&AddressSpace::Global, addr)
    }

    fn assert_held(state: &State, addrs: &[IpAddr]) {
        for addr in addrs {
            assert!(held(state, *addr), "{addr} freed");
        }
    }

    /// `addrs` were freed elsewhere: free now, unless the allocation that
    /// swept them handed one out again (`new`).
    fn assert_swept(state: &State, addrs: &[IpAddr], new: IpAddr) {
        for addr in addrs {
            assert_eq!(
                held(state, *addr),
                *addr == new,
                "{addr} freed elsewhere is still held (new address {new})"
            );
        }
    }

    /// A manager leads again with its old copy: what another leader freed
    /// meanwhile is swept at the first new allocation, what it restores is
    /// kept, and the pool counts one lease for its one network.
    #[test]
    fn a_restore_frees_what_it_did_not_re_claim() {
        let mut state = State::default();
        let t0 = Instant::now();
        let id = allocate_network(&mut state, "n1", "10.88.0.1", t0);
        let first: Vec<IpAddr> = (0..3).map(|_| next(&mut state, &id)).collect();
        assert_eq!(first, [ip("10.88.0.2"), ip("10.88.0.3"), ip("10.88.0.4")]);
        // another manager led: it freed .3 and .4 and handed out .9
        let t1 = t0 + RECLAIM_QUIET * 3;
        let again = allocate_network(&mut state, "n1", "10.88.0.1", t1);
        assert_eq!(again, id);
        assert_eq!(
            state.pool_leases(&id).unwrap().0,
            1,
            "restore counted a second lease"
        );
        state.claim(&id, ip("10.88.0.2"), t1).unwrap();
        state.claim(&id, ip("10.88.0.9"), t1).unwrap();
        assert!(
            held(&state, ip("10.88.0.3")),
            "swept before the restore ended"
        );
        let new = next(&mut state, &id);
        assert_swept(&state, &[ip("10.88.0.3"), ip("10.88.0.4")], new);
        assert_held(&state, &[ip("10.88.0.1"), ip("10.88.0.2"), ip("10.88.0.9")]);
        // the restore is over: a second --ip of a held address is refused
        assert_in_use(&mut state, &id, ip("10.88.0.2"), t1);
        // one ReleasePool ends the pool
        assert!(state.release_pool(&id).unwrap().is_some());
        assert!(
            state.pool_leases(&id).is_none(),
            "pool left after its last release"
        );
    }

    /// Two networks on one subnet: one this copy knew, one created while
    /// another manager led. The restore counts each once, keeps what
    /// either re-claims, and forgets a third network removed meanwhile.
    #[test]
    fn a_restore_of_a_subnet_two_networks_share() {
        let mut state = State::default();
        let t0 = Instant::now();
        let id = allocate_network(&mut state, "n1", "10.88.0.1", t0);
        allocate_network(&mut state, "gone", "10.88.0.254", t0);
        let a = next(&mut state, &id);
        let b = next(&mut state, &id);
        assert_eq!(state.pool_leases(&id).unwrap().0, 2);
        let t1 = t0 + RECLAIM_QUIET * 3;
        allocate_network(&mut state, "n1", "10.88.0.1", t1);
        // n2 is new to this copy: its lease counts, its gateway is claimed
        allocate_network(&mut state, "n2", "10.88.0.250", t1);
        state.claim(&id, a, t1).unwrap();
        let c = ip("10.88.0.77");
        state.claim(&id, c, t1).unwrap();
        let new = next(&mut state, &id);
        let (leases, networks) = state.pool_leases(&id).unwrap();
        assert_eq!(
            (leases, networks),
            (2, vec!["n1".to_string(), "n2".to_string()])
        );
        assert_held(&state, &[ip("10.88.0.1"), ip("10.88.0.250"), a, c]);
        // b, and the gateway of the network removed meanwhile
        assert_swept(&state, &[b, ip("10.88.0.254")], new);
        state.release_pool(&id).unwrap();
        assert!(state.pool_leases(&id).is_some());
        state.release_pool(&id).unwrap();
        assert!(
            state.pool_leases(&id).is_none(),
            "pool left after two releases"
        );
    }

    /// A second network on a subnet in use is no restore, though up to its
    /// AllocateNetwork it looks like one (the pool leased again, a gateway
    /// given with `--gateway` claimed, no address-less request). Once its
    /// AllocateNetwork names a network this copy never counted, a `--ip` of
    /// an address the first network holds is a second claim, refused at
    /// once, not up to two minutes later; its allocation frees nothing of
    /// the first network's, and it holds a lease of its own.
    ///
    /// The limit of that: a restore whose pool counts only networks removed
    /// while another manager led (the live ones, created meanwhile, unknown
    /// here) makes the same calls, so its re-claim of an address this copy
    /// still holds for a removed network is refused too: never handed out
    /// twice, kept reserved, nothing swept.
    #[test]
    fn a_new_network_on_a_subnet_in_use_takes_no_re_claim_and_sweeps_nothing() {
        let mut state = State::default();
        let t0 = Instant::now();
        let id = allocate_network(&mut state, "n1", "10.88.0.1", t0);
        let a = next(&mut state, &id);
        let t1 = t0 + RECLAIM_QUIET * 3;
        allocate_network(&mut state, "n2", "10.88.0.250", t1);
        assert_in_use(&mut state, &id, a, t1);
        // the same with the networks sharing their gateway
        let id = allocate_network(&mut state, "n3", "10.88.0.1", t1);
        assert_in_use(&mut state, &id, a, t1);
        // a free address is claimed as ever; the next allocation frees nothing
        state.claim(&id, ip("10.88.0.9"), t1).unwrap();
        next(&mut state, &id);
        assert_held(
            &state,
            &[ip("10.88.0.1"), ip("10.88.0.250"), ip("10.88.0.9"), a],
        );
        assert_eq!(state.pool_leases(&id).unwrap().0, 3);
    }

    /// A restore that allocates a network this copy never counted before
    /// one it counted: the first closes the window, the next lease opens
    /// it again with what was claimed, and the restore goes on as if in
    /// the other order.
    #[test]
    fn a_restore_that_meets_a_network_it_never_counted_first() {
        let mut state = State::default();
        let t0 = Instant::now();
        let id = allocate_network(&mut state, "n1", "10.88.0.1", t0);
        let a = next(&mut state, &id);
        let b = next(&mut state, &id);
        // another manager led: it freed b, created n2 and gave it .77
        let t1 = t0 + RECLAIM_QUIET * 3;
        allocate_network(&mut state, "n2", "10.88.0.250", t1);
        allocate_network(&mut state, "n1", "10.88.0.1", t1);
        let c = ip("10.88.0.77");
        for addr in [a, c, ip("10.88.0.250")] {
            state.claim(&id, addr, t1).unwrap();
        }
        let new = next(&mut state, &id);
        assert_held(&state, &[ip("10.88.0.1"), ip("10.88.0.250"), a, c]);
        assert_swept(&state, &[b], new);
        let (leases, networks) = state.pool_leases(&id).unwrap();
        assert_eq!(
            (leases, networks),
            (2, vec!["n1".to_string(), "n2".to_string()])
        );
    }

    /// Pools leased before network IDs were recorded name no network: their
    /// restore takes re-claims however many networks share them.
    #[test]
    fn a_restore_of_a_pool_that_names_no_network_takes_re_claims() {
        let mut state = State::default();
        let t0 = Instant::now();
        let id = lease(&mut state, t0);
        lease(&mut state, t0);
        state.claim(&id, ip("10.88.0.1"), t0).unwrap();
        let a = next(&mut state, &id);
        // the leases' AllocateNetwork came too late to bind them: the pool
        // names no network, as one leased before this version
        let t1 = t0 + RECLAIM_QUIET * 3;
        state
            .network_allocated("x", &[POOL.parse().unwrap()], t1)
            .unwrap();
        assert_eq!(state.pool_leases(&id).unwrap(), (2, Vec::new()));
        let t2 = t1 + RECLAIM_QUIET * 3;
        allocate_network(&mut state, "n1", "10.88.0.1", t2);
        allocate_network(&mut state, "n2", "10.88.0.1", t2);
        state.claim(&id, a, t2).unwrap();
        next(&mut state, &id);
        assert_held(&state, &[ip("10.88.0.1"), a]);
    }

    /// A new allocation while a restore is still unconfirmed (no
    /// AllocateNetwork yet) ends the window and sweeps nothing; a later
    /// AllocateNetwork of a known network only takes its lease back.
    #[test]
    fn a_new_allocation_during_a_restore_sweeps_nothing() {
        let mut state = State::default();
        let t0 = Instant::now();
        let id = allocate_network(&mut state, "n1", "10.88.0.1", t0);
        let a = next(&mut state, &id);
        let t1 = t0 + RECLAIM_QUIET * 3;
        lease(&mut state, t1);
        state.claim(&id, ip("10.88.0.1"), t1).unwrap();
        next(&mut state, &id);
        state
            .network_allocated("n1", &[POOL.parse().unwrap()], t1)
            .unwrap();
        next(&mut state, &id);
        assert_held(&state, &[a]);
        assert_eq!(state.pool_leases(&id).unwrap().0, 1);
    }

    /// A global lease no AllocateNetwork followed in time (a network made
    /// outside Swarm in the global space) is bound to no later network.
    #[test]
    fn a_stale_global_lease_is_bound_to_no_network() {
        let mut state = State::default();
        let t0 = Instant::now();
        let id = lease(&mut state, t0);
        let later = t0 + RECLAIM_QUIET * 2;
        state
            .network_allocated("n1", &[POOL.parse().unwrap()], later)
            .unwrap();
        assert_eq!(state.pool_leases(&id).unwrap(), (1, Vec::new()));
    }

    /// A node's own calls for a Swarm network (the local space, on any
    /// node, the leader's too) are no part of a restore: AllocateNetwork
    /// binds no local lease, and a local pool leased again takes no claim
    /// of what it holds.
    #[test]
    fn local_leases_are_never_a_swarm_restore() {
        let mut state = State::default();
        let t0 = Instant::now();
        let local = |state: &mut State| {
            let (lease, _) = state
                .lease_pool(
                    AddressSpace::Local,
                    POOL.parse().unwrap(),
                    None,
                    false,
                    &BTreeMap::new(),
                    t0,
                )
                .unwrap();
            lease.id.to_string()
        };
        let id = local(&mut state);
        let a = next(&mut state, &id);
        state
            .network_allocated("n1", &[POOL.parse().unwrap()], t0)
            .unwrap();
        local(&mut state);
        state
            .network_allocated("n1", &[POOL.parse().unwrap()], t0)
            .unwrap();
        assert_eq!(state.pool_leases(&id).unwrap(), (2, Vec::new()));
        assert_in_use(&mut state, &id, a, t0);
        next(&mut state, &id);
        assert!(state.is_allocated(&AddressSpace::Local, a));
    }

    /// A pool leased again takes claims of what it holds as re-claims for a
    /// quiet period after the last one, not for ever: a pool no leader is
    /// restoring refuses a second claim even without a new allocation.
    #[test]
    fn re_claims_end_after_a_quiet_period() {
        let mut state = State::default();
        let t0 = Instant::now();
        let pool: IpNet = "10.88.0.0/24".parse().unwrap();
        let lease = |state: &mut State, now| {
            let (lease, _) = state
                .lease_pool(
                    AddressSpace::Global,
                    pool,
                    None,
                    false,
                    &BTreeMap::new(),
                    now,
                )
                .unwrap();
            lease.id.to_string()
        };
        let addr: IpAddr = "10.88.0.7".parse().unwrap();
        let id = lease(&mut state, t0);
        state.claim(&id, addr, t0).unwrap();
        let id = lease(&mut state, t0);
        // re-claims keep the restore alive, one after another
        let step = RECLAIM_QUIET / 2;
        state.claim(&id, addr, t0 + step).unwrap();
        state.claim(&id, addr, t0 + 2 * step).unwrap();
        let late = t0 + 2 * step + RECLAIM_QUIET + std::time::Duration::from_secs(1);
        assert_in_use(&mut state, &id, addr, late);
    }
}
