//! The in-memory IPAM state and the store operations that mirror each change.
//!
//! Every mutating method validates first and changes memory only once it
//! cannot fail, returning the [`Op`]s that make the change durable.

use crate::range::{bounds, from_int, reserved_in, reserved_role, to_int, usable};
use crate::{DefaultPool, GLOBAL_SPACE, IpamError, LOCAL_SPACE, PoolLease};
use ipnet::IpNet;
use protocol::options::IPAM_SERIAL;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use store::{Op, Store};

const POOLS: &str = "pools";
const ADDRESSES: &str = "addresses";
pub(crate) const TABLES: &[&str] = &[POOLS, ADDRESSES];

/// An address space: allocations in one never collide with each other, and
/// never affect the other space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddressSpace {
    /// Per node networks.
    Local,
    /// Swarm networks, allocated by the manager.
    Global,
}

impl AddressSpace {
    /// Parse the engine's address-space name.
    pub fn parse(s: &str) -> Result<AddressSpace, IpamError> {
        match s {
            LOCAL_SPACE => Ok(AddressSpace::Local),
            GLOBAL_SPACE => Ok(AddressSpace::Global),
            other => Err(IpamError::UnknownAddressSpace(other.to_string())),
        }
    }

    fn name(self) -> &'static str {
        match self {
            AddressSpace::Local => LOCAL_SPACE,
            AddressSpace::Global => GLOBAL_SPACE,
        }
    }

    fn tag(self) -> u8 {
        match self {
            AddressSpace::Local => 0,
            AddressSpace::Global => 1,
        }
    }
}

/// The opaque pool ID given to the engine: `SPACE/POOL[/SUBPOOL]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolId(Arc<str>);

impl PoolId {
    fn new(space: AddressSpace, pool: &IpNet, sub_pool: Option<&IpNet>) -> PoolId {
        let id = match sub_pool {
            Some(sub) => format!("{}/{pool}/{sub}", space.name()),
            None => format!("{}/{pool}", space.name()),
        };
        PoolId(id.into())
    }

    /// The ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PoolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A pool as stored on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PoolRecord {
    space: AddressSpace,
    pool: IpNet,
    #[serde(default)]
    sub_pool: Option<IpNet>,
    /// Leases outstanding: networks may share an identical pool.
    refs: u32,
    /// Whether dynamic allocation continues after the last address handed
    /// out (serial) rather than from the lowest free one.
    serial: bool,
    /// Where the next serial allocation starts looking.
    #[serde(default)]
    cursor: Option<IpAddr>,
}

struct Pool {
    id: PoolId,
    owner: Owner,
    record: PoolRecord,
    /// Usable dynamic range, inclusive.
    lo: u128,
    hi: u128,
}

impl Pool {
    fn new(id: PoolId, owner: Owner, record: PoolRecord) -> Result<Pool, IpamError> {
        let range = record.sub_pool.unwrap_or(record.pool);
        let (lo, hi) = usable(&record.pool, &range).ok_or_else(|| IpamError::EmptyRange {
            range,
            pool: record.pool,
            why: reserved_in(&record.pool, &range),
        })?;
        Ok(Pool {
            id,
            owner,
            record,
            lo,
            hi,
        })
    }

    fn cursor(&self) -> u128 {
        self.record
            .cursor
            .map(to_int)
            .filter(|c| (self.lo..=self.hi).contains(c))
            .unwrap_or(self.lo)
    }
}

impl PoolRecord {
    /// The store write of this record as pool `id`; a record that cannot be
    /// encoded is an error for the caller, never an empty value on disk.
    fn put(&self, id: &PoolId) -> Result<Op, IpamError> {
        let value = serde_json::to_vec(self).map_err(|source| IpamError::Encode {
            pool: id.as_str().to_string(),
            source,
        })?;
        Ok(Op::Put {
            table: POOLS,
            key: id.as_str().as_bytes().to_vec(),
            value,
        })
    }
}

/// The pool that allocated an address, as an index into [`Owners`]: every
/// allocated address carries one, and 4 bytes instead of a `PoolId`'s 16
/// keep an IPv6 entry near 40 bytes of memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Owner(u32);

/// Pool IDs by [`Owner`] index. An index lives as long as any address or
/// pool refers to it: a pool's release frees its addresses, then its index.
#[derive(Default)]
struct Owners {
    ids: Vec<Option<PoolId>>,
    index: HashMap<PoolId, Owner>,
    free: Vec<u32>,
}

impl Owners {
    fn intern(&mut self, id: &PoolId) -> Owner {
        if let Some(owner) = self.index.get(id) {
            return *owner;
        }
        let owner = match self.free.pop() {
            Some(i) => {
                if let Some(slot) = self.ids.get_mut(i as usize) {
                    *slot = Some(id.clone());
                }
                Owner(i)
            }
            None => {
                // more than 4 billion pools cannot be leased at once
                let i = u32::try_from(self.ids.len()).unwrap_or(u32::MAX);
                self.ids.push(Some(id.clone()));
                Owner(i)
            }
        };
        self.index.insert(id.clone(), owner);
        owner
    }

    fn id(&self, owner: Owner) -> Option<&PoolId> {
        self.ids.get(owner.0 as usize)?.as_ref()
    }

    /// Called once no address and no pool refers to `owner`.
    fn forget(&mut self, owner: Owner) {
        if let Some(id) = self.ids.get_mut(owner.0 as usize).and_then(Option::take) {
            self.index.remove(&id);
            self.free.push(owner.0);
        }
    }
}

/// Allocated addresses of one space, each with the pool that allocated it
/// (released with it).
#[derive(Default)]
struct Allocations {
    v4: BTreeMap<u32, Owner>,
    v6: BTreeMap<u128, Owner>,
}

impl Allocations {
    fn get(&self, addr: IpAddr) -> Option<Owner> {
        match addr {
            IpAddr::V4(a) => self.v4.get(&u32::from(a)).copied(),
            IpAddr::V6(a) => self.v6.get(&u128::from(a)).copied(),
        }
    }

    fn insert(&mut self, addr: IpAddr, owner: Owner) {
        match addr {
            IpAddr::V4(a) => self.v4.insert(u32::from(a), owner),
            IpAddr::V6(a) => self.v6.insert(u128::from(a), owner),
        };
    }

    fn remove(&mut self, addr: IpAddr) {
        match addr {
            IpAddr::V4(a) => self.v4.remove(&u32::from(a)),
            IpAddr::V6(a) => self.v6.remove(&u128::from(a)),
        };
    }

    fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// The lowest free address in `lo..=hi`: walks only the run of
    /// allocated addresses that starts at `lo`.
    fn first_free(&self, v6: bool, lo: u128, hi: u128) -> Option<u128> {
        if lo > hi {
            return None;
        }
        if v6 {
            first_gap(self.v6.range(lo..=hi).map(|(k, _)| *k), lo, hi)
        } else {
            let (l, h) = (u32::try_from(lo).ok()?, u32::try_from(hi).ok()?);
            first_gap(self.v4.range(l..=h).map(|(k, _)| u128::from(*k)), lo, hi)
        }
    }

    /// Addresses in `net` allocated through `owner`.
    fn owned_in(&self, net: &IpNet, owner: Owner) -> Vec<IpAddr> {
        let (lo, hi) = bounds(net);
        let keep = |o: &Owner| *o == owner;
        match net {
            IpNet::V4(_) => {
                let (l, h) = (
                    u32::try_from(lo).unwrap_or(0),
                    u32::try_from(hi).unwrap_or(u32::MAX),
                );
                self.v4
                    .range(l..=h)
                    .filter(|(_, o)| keep(o))
                    .map(|(k, _)| from_int(u128::from(*k), net))
                    .collect()
            }
            IpNet::V6(_) => self
                .v6
                .range(lo..=hi)
                .filter(|(_, o)| keep(o))
                .map(|(k, _)| from_int(*k, net))
                .collect(),
        }
    }
}

fn first_gap(taken: impl Iterator<Item = u128>, lo: u128, hi: u128) -> Option<u128> {
    let mut candidate = lo;
    for k in taken {
        if k != candidate {
            break;
        }
        if candidate == hi {
            return None;
        }
        candidate += 1;
    }
    Some(candidate)
}

fn address_key(space: AddressSpace, addr: IpAddr) -> Vec<u8> {
    let mut key = Vec::with_capacity(18);
    key.push(space.tag());
    match addr {
        IpAddr::V4(a) => {
            key.push(4);
            key.extend_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            key.push(6);
            key.extend_from_slice(&a.octets());
        }
    }
    key
}

fn parse_address_key(key: &[u8]) -> Option<(AddressSpace, IpAddr)> {
    let space = match key.first()? {
        0 => AddressSpace::Local,
        1 => AddressSpace::Global,
        _ => return None,
    };
    let addr = match (key.get(1)?, key.get(2..)?) {
        (4, b) => IpAddr::from(<[u8; 4]>::try_from(b).ok()?),
        (6, b) => IpAddr::from(<[u8; 16]>::try_from(b).ok()?),
        _ => return None,
    };
    Some((space, addr))
}

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
    pub(crate) fn claim(&mut self, id: &str, addr: IpAddr) -> Result<(IpNet, Vec<Op>), IpamError> {
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
        let alloc = self.spaces.entry(space).or_default();
        match alloc.get(addr) {
            // The Swarm manager's allocator is the authority for the global
            // space and re-claims every address a pool holds when a manager
            // becomes leader: a claim through the same pool is idempotent.
            Some(holder) if holder == owner && space == AddressSpace::Global => {
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

impl std::borrow::Borrow<str> for PoolId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_found_after_runs() {
        assert_eq!(first_gap([5, 6, 7].into_iter(), 5, 10), Some(8));
        assert_eq!(first_gap([6, 7].into_iter(), 5, 10), Some(5));
        assert_eq!(first_gap([5, 6].into_iter(), 5, 6), None);
        assert_eq!(first_gap(std::iter::empty(), 3, 3), Some(3));
    }

    #[test]
    fn address_keys_round_trip() {
        for (space, addr) in [
            (AddressSpace::Local, "10.0.0.1".parse().unwrap()),
            (AddressSpace::Global, "fd00::5".parse().unwrap()),
        ] {
            assert_eq!(
                parse_address_key(&address_key(space, addr)),
                Some((space, addr))
            );
        }
        assert_eq!(parse_address_key(&[9, 4, 1, 2, 3, 4]), None);
    }
}
