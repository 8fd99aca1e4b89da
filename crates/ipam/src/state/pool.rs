//! Pool identity and records: spaces, pool IDs, stored records, and pool IDs interned as owners.

use super::restore::Restore;
use crate::range::{reserved_in, to_int, usable};
use crate::{GLOBAL_SPACE, IpamError, LOCAL_SPACE};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use store::Op;

pub(super) const POOLS: &str = "pools";

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

    pub(super) fn name(self) -> &'static str {
        match self {
            AddressSpace::Local => LOCAL_SPACE,
            AddressSpace::Global => GLOBAL_SPACE,
        }
    }

    pub(super) fn tag(self) -> u8 {
        match self {
            AddressSpace::Local => 0,
            AddressSpace::Global => 1,
        }
    }
}

/// The opaque pool ID given to the engine: `SPACE/POOL[/SUBPOOL]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolId(pub(super) Arc<str>);

impl PoolId {
    pub(super) fn new(space: AddressSpace, pool: &IpNet, sub_pool: Option<&IpNet>) -> PoolId {
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
pub(super) struct PoolRecord {
    pub(super) space: AddressSpace,
    pub(super) pool: IpNet,
    #[serde(default)]
    pub(super) sub_pool: Option<IpNet>,
    /// Leases outstanding: networks may share an identical pool.
    pub(super) refs: u32,
    /// Whether dynamic allocation continues after the last address handed
    /// out (serial) rather than from the lowest free one.
    pub(super) serial: bool,
    /// Where the next serial allocation starts looking.
    #[serde(default)]
    pub(super) cursor: Option<IpAddr>,
    /// Swarm networks whose allocation leased this pool (global space;
    /// AllocateNetwork names them): a restore that leases the pool again
    /// for one of these counts no second lease.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub(super) networks: BTreeSet<String>,
}

pub(super) struct Pool {
    pub(super) id: PoolId,
    pub(super) owner: Owner,
    pub(super) record: PoolRecord,
    /// Usable dynamic range, inclusive.
    pub(super) lo: u128,
    pub(super) hi: u128,
    /// While a Swarm leader restores its allocations (see
    /// [`super::State::claim`] and [`Restore`]).
    pub(super) restore: Option<Restore>,
}

impl Pool {
    pub(super) fn new(id: PoolId, owner: Owner, record: PoolRecord) -> Result<Pool, IpamError> {
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
            restore: None,
        })
    }

    pub(super) fn cursor(&self) -> u128 {
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
    pub(super) fn put(&self, id: &PoolId) -> Result<Op, IpamError> {
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
pub(super) struct Owner(pub(super) u32);

/// Pool IDs by [`Owner`] index. An index lives as long as any address or
/// pool refers to it: a pool's release frees its addresses, then its index.
#[derive(Default)]
pub(super) struct Owners {
    ids: Vec<Option<PoolId>>,
    index: HashMap<PoolId, Owner>,
    free: Vec<u32>,
}

impl Owners {
    pub(super) fn intern(&mut self, id: &PoolId) -> Owner {
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

    pub(super) fn id(&self, owner: Owner) -> Option<&PoolId> {
        self.ids.get(owner.0 as usize)?.as_ref()
    }

    /// Called once no address and no pool refers to `owner`.
    pub(super) fn forget(&mut self, owner: Owner) {
        if let Some(id) = self.ids.get_mut(owner.0 as usize).and_then(Option::take) {
            self.index.remove(&id);
            self.free.push(owner.0);
        }
    }
}

impl std::borrow::Borrow<str> for PoolId {
    fn borrow(&self) -> &str {
        &self.0
    }
}
