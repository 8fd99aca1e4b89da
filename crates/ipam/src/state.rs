//! The in-memory IPAM state and the store operations that mirror each change.
//!
//! Every mutating method validates first and changes memory only once it
//! cannot fail, returning the [`Op`]s that make the change durable.

mod addresses;
mod pool;
mod usage;

use crate::range::{from_int, reserved_role};
use crate::{DefaultPool, IpamError, PoolLease};
use addresses::{ADDRESSES, Allocations, address_key, parse_address_key};
use ipnet::IpNet;
use pool::{Owner, Owners, POOLS, Pool, PoolRecord};
use protocol::options::IPAM_SERIAL;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Instant;
use store::{Op, Store};

pub use pool::{AddressSpace, PoolId};

/// How long after its last re-claim (or its lease) a global pool still
/// takes a claim of an address it holds as a Swarm leader's re-claim, when
/// no new allocation ended that earlier. A restore claims one address after
/// another without pause; a pool that saw no re-claim for this long is not
/// being restored.
const RECLAIM_QUIET: std::time::Duration = std::time::Duration::from_secs(120);

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
                // on the same subnet): see `claim`
                tracing::info!(pool_id = %id, "global pool leased again: pinned addresses it holds are taken as a Swarm leader's re-claims until its next new allocation");
                existing.reclaims_since = Some(now);
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
        };
        // checked before interning, so that a refused pool leaves no owner
        let mut entry = Pool::new(id.clone(), Owner(u32::MAX), record)?;
        let op = entry.record.put(&id)?;
        entry.owner = self.owners.intern(&id);
        self.pools.insert(id.clone(), entry);
        Ok((PoolLease { id, pool }, vec![op]))
    }

    /// The writes that release one lease of pool `id`, applied; `None` if
    /// the pool is unknown.
    pub(crate) fn release_pool(&mut self, id: &str) -> Result<Option<Vec<Op>>, IpamError> {
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
            && pool
                .reclaims_since
                .is_some_and(|since| now.saturating_duration_since(since) <= RECLAIM_QUIET);
        let alloc = self.spaces.entry(space).or_default();
        match alloc.get(addr) {
            // A manager that becomes leader starts an allocator afresh: it
            // leases every network's pool again, then re-claims every address
            // it holds (gateways, VIPs, tasks, `--ip` attachments), all before
            // any new allocation. A claim through the pool that holds the
            // address is such a re-claim while that lasts; after it, the same
            // claim is a second `--ip` of an address in use and is refused.
            Some(holder) if holder == owner && reclaiming => {
                if let Some(pool) = self.pools.get_mut(id) {
                    pool.reclaims_since = Some(now);
                }
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
        Ok((
            cidr,
            vec![Op::Put {
                table: ADDRESSES,
                key: address_key(space, addr),
                value,
            }],
        ))
    }

    /// Allocate any free address of the pool's dynamic range.
    pub(crate) fn allocate(
        &mut self,
        id: &str,
        serial_requested: bool,
    ) -> Result<(IpNet, Vec<Op>), IpamError> {
        // a leader's allocator asks for new addresses only once it has
        // re-claimed every address it restores
        if let Some(pool) = self.pools.get_mut(id)
            && pool.reclaims_since.take().is_some()
        {
            tracing::info!(
                pool_id = id,
                "global pool: a Swarm leader's re-claims ended with its first new allocation"
            );
        }
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
    use super::*;

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
        let err = state.claim(&id, addr, late).unwrap_err();
        assert!(matches!(err, IpamError::InUse { .. }), "{err:?}");
    }
}
