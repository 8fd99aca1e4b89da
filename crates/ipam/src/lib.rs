//! IP address management for ipvlan-rs: address spaces, pools, sub-pools
//! and addresses, with every acknowledged change durable.
//!
//! Job: answer the engine's IpamDriver calls (RequestPool, ReleasePool,
//! RequestAddress, ReleaseAddress) from a state that survives crashes.
//!
//! Invariants:
//! - No address is ever handed out twice within an address space, even when
//!   several pools (networks) of that space overlap: allocations are kept per
//!   address space, not per pool.
//! - An IPv4 pool's network and broadcast addresses (except in /31 and /32)
//!   and an IPv6 pool's subnet-router anycast address are never handed out.
//! - Dynamic addresses come from the sub-pool when there is one; specific
//!   addresses (gateway, aux, `--ip`) may lie anywhere in the pool.
//! - A change is acknowledged (the call returns `Ok`) only once it is on disk.
//! - Work per call is independent of pool size: nothing is sized by the pool,
//!   memory grows with allocated addresses only.
//!
//! Knows nothing of HTTP or netlink; host routes to avoid when choosing a
//! pool come in through [`HostRoutes`].

mod range;
mod state;
mod status;

pub use state::{AddressSpace, PoolId};
pub use status::{IpamStatus, PoolStatus, SpaceStatus};

use ipnet::IpNet;
use protocol::ipam::{
    ReleaseAddressRequest, ReleasePoolRequest, RequestAddressRequest, RequestPoolRequest,
};
use protocol::options::AddressKind;
use state::State;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use store::{Store, StoreError};

pub use protocol::ipam::{GLOBAL_SPACE, LOCAL_SPACE};

/// An IPAM call that could not be served. Messages name the bad value.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    /// Neither `local` nor `global`.
    #[error("unknown address space {0:?}: expected \"local\" or \"global\"")]
    UnknownAddressSpace(String),
    /// A pool of the other family than the request's `V6` flag.
    #[error("pool {pool} is {family}, but the request asked for {asked}")]
    FamilyMismatch {
        /// The pool.
        pool: IpNet,
        /// The pool's family.
        family: &'static str,
        /// The family asked for.
        asked: &'static str,
    },
    /// The whole address range asked for as a pool.
    #[error("invalid pool {0}: {1}")]
    InvalidPool(IpNet, &'static str),
    /// An `--ip-range` (or a whole pool) holding only reserved addresses.
    #[error(
        "ip range {range} of subnet {pool} has no usable address: {why}; give a range with at least one host address"
    )]
    EmptyRange {
        /// The range.
        range: IpNet,
        /// The pool it is in.
        pool: IpNet,
        /// Which reserved address each of the range's addresses is.
        why: String,
    },
    /// `--ip-range` not inside `--subnet`.
    #[error("ip range {sub_pool} is not inside subnet {pool}")]
    SubPoolOutsidePool {
        /// The sub-pool.
        sub_pool: IpNet,
        /// The pool.
        pool: IpNet,
    },
    /// No default pool is free.
    #[error(
        "no free {family} pool left in the default ranges ({ranges}); give --subnet or widen DEFAULT_POOLS"
    )]
    NoFreePool {
        /// The family asked for.
        family: &'static str,
        /// The configured default ranges.
        ranges: String,
    },
    /// A PoolID this IPAM never gave out (or already released).
    #[error("unknown pool {0:?}")]
    UnknownPool(String),
    /// An address outside the pool.
    #[error("address {address} is not in pool {pool}")]
    OutOfPool {
        /// The address asked for.
        address: IpAddr,
        /// The pool.
        pool: IpNet,
    },
    /// The network/broadcast/anycast address.
    #[error("address {address} is the {role} of pool {pool} and cannot be assigned")]
    Reserved {
        /// The address asked for.
        address: IpAddr,
        /// Which reserved address it is.
        role: &'static str,
        /// The pool.
        pool: IpNet,
    },
    /// Already allocated in this address space.
    #[error("address {address} is already in use in address space {space:?}")]
    InUse {
        /// The address asked for.
        address: IpAddr,
        /// The address space.
        space: String,
    },
    /// Allocated in this address space through another pool.
    #[error("address {address} is already in use by pool {holder} in address space {space:?}")]
    HeldByPool {
        /// The address asked for.
        address: IpAddr,
        /// The pool that holds it (its ID: space, subnet and range).
        holder: String,
        /// The address space.
        space: String,
    },
    /// Every usable address of the range is allocated.
    #[error("no available addresses in {range} (pool {pool})")]
    Exhausted {
        /// The range dynamic addresses come from.
        range: IpNet,
        /// The pool.
        pool: IpNet,
    },
    /// The state could not be made durable.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A pool record could not be encoded for the state file; nothing was
    /// stored.
    #[error("could not encode pool {pool} for the state file: {source}")]
    Encode {
        /// The pool's ID.
        pool: String,
        /// The encoder's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// The state file holds something this build cannot read.
    #[error("corrupt IPAM state: {0}")]
    Corrupt(String),
}

/// Networks the host already routes, which a chosen pool must not overlap.
pub trait HostRoutes: Send + Sync {
    /// Destination prefixes of the host's routes (default routes may be
    /// included; they are ignored).
    fn prefixes(&self) -> Vec<IpNet>;
}

/// No host routes (tests, or hosts where they cannot be read).
pub struct NoHostRoutes;

impl HostRoutes for NoHostRoutes {
    fn prefixes(&self) -> Vec<IpNet> {
        Vec::new()
    }
}

/// Where pools come from when RequestPool names none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultPool {
    /// The range to carve pools from.
    pub base: IpNet,
    /// Prefix length of each pool.
    pub size: u8,
}

impl std::str::FromStr for DefaultPool {
    type Err = String;

    /// `BASE/LEN:SIZE`, e.g. `172.30.0.0/16:24`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (base, size) = s
            .rsplit_once(':')
            .filter(|(b, _)| b.contains('/'))
            .ok_or_else(|| {
                format!("invalid default pool {s:?}: expected BASE/LEN:SIZE, e.g. 172.30.0.0/16:24")
            })?;
        let base: IpNet = base
            .parse()
            .map_err(|e| format!("invalid default pool {s:?}: {e}"))?;
        let size: u8 = size
            .parse()
            .map_err(|_| format!("invalid default pool {s:?}: size {size:?} is not a number"))?;
        if size < base.prefix_len() || size > base.max_prefix_len() {
            return Err(format!(
                "invalid default pool {s:?}: size /{size} must be between /{} and /{}",
                base.prefix_len(),
                base.max_prefix_len()
            ));
        }
        Ok(DefaultPool {
            base: base.trunc(),
            size,
        })
    }
}

impl std::fmt::Display for DefaultPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.base, self.size)
    }
}

/// IPAM settings.
#[derive(Debug, Clone)]
pub struct IpamConfig {
    /// Ranges for pools chosen by the IPAM (both families).
    pub default_pools: Vec<DefaultPool>,
}

impl Default for IpamConfig {
    fn default() -> Self {
        IpamConfig {
            default_pools: ["172.30.0.0/16:24", "fdc9:b4a1:7e2d::/48:64"]
                .iter()
                .filter_map(|s| s.parse().ok())
                .collect(),
        }
    }
}

/// A pool lease handed to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolLease {
    /// The opaque PoolID.
    pub id: PoolId,
    /// The pool.
    pub pool: IpNet,
}

/// The allocator. Share it behind an `Arc`; calls may run concurrently.
pub struct Ipam {
    state: Mutex<State>,
    store: Store,
    config: IpamConfig,
    host: Arc<dyn HostRoutes>,
}

/// Schema of the state file: 1 = pools + addresses tables.
pub const SCHEMA: u64 = 1;

impl Ipam {
    /// Open (or create) the state file at `path` and load it.
    pub fn open(
        path: &Path,
        config: IpamConfig,
        host: Arc<dyn HostRoutes>,
    ) -> Result<Ipam, IpamError> {
        let store = Store::open(path, SCHEMA, state::TABLES)?;
        let state = State::load(&store)?;
        tracing::info!(
            path = %path.display(),
            pools = state.pool_count(),
            addresses = state.address_count(),
            "IPAM state loaded"
        );
        Ok(Ipam {
            state: Mutex::new(state),
            store,
            config,
            host,
        })
    }

    /// Spaces and pools with their allocated and free counts, for an
    /// operator. Holds the state lock for O(allocated addresses).
    pub fn status(&self) -> IpamStatus {
        self.lock().status()
    }

    /// Reports each durable write of the IPAM's state file to `observer`.
    pub fn observe_commits(&self, observer: store::CommitObserver) {
        self.store.observe_commits(observer);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied change:
        // every mutation is computed first and applied in one step.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lease a pool (`RequestPool`).
    pub async fn request_pool(&self, req: &RequestPoolRequest) -> Result<PoolLease, IpamError> {
        let space = AddressSpace::parse(&req.address_space)?;
        let (lease, commit) = {
            let mut state = self.lock();
            let pool = match req.pool {
                Some(pool) => pool,
                None => state.choose_pool(
                    &space,
                    req.v6,
                    &self.config.default_pools,
                    &self.host.prefixes(),
                )?,
            };
            let (lease, ops) = state.lease_pool(
                space,
                pool,
                req.sub_pool,
                req.v6,
                &req.options,
                std::time::Instant::now(),
            )?;
            (lease, self.store.submit(ops))
        };
        commit.durable().await?;
        tracing::info!(pool_id = %lease.id, pool = %lease.pool, "pool leased");
        Ok(lease)
    }

    /// Release a pool lease (`ReleasePool`); unknown or empty IDs change nothing.
    pub async fn release_pool(&self, req: &ReleasePoolRequest) -> Result<(), IpamError> {
        // nothing to release (a repeated release): the empty submission
        // answers once the first copy is durable
        let (commit, released) = {
            let mut state = self.lock();
            match state.release_pool(&req.pool_id)? {
                Some(ops) => (self.store.submit(ops), true),
                None => (self.store.submit(Vec::new()), false),
            }
        };
        commit.durable().await?;
        if released {
            tracing::info!(pool_id = %req.pool_id, "pool released");
        } else {
            tracing::debug!(pool_id = %req.pool_id, "release of unknown pool ignored");
        }
        Ok(())
    }

    /// Allocate an address (`RequestAddress`); returns it with the pool's
    /// prefix length.
    pub async fn request_address(&self, req: &RequestAddressRequest) -> Result<IpNet, IpamError> {
        let opts = req.address_options();
        let (address, commit) = {
            let mut state = self.lock();
            let (address, ops) = match (req.address, opts.kind()) {
                (Some(address), _) => {
                    state.claim(&req.pool_id, address, std::time::Instant::now())?
                }
                (None, AddressKind::Gateway) => state.allocate(&req.pool_id, false)?,
                (None, AddressKind::Other) => {
                    state.allocate(&req.pool_id, opts.serial.unwrap_or(true))?
                }
            };
            (address, self.store.submit(ops))
        };
        commit.durable().await?;
        tracing::debug!(pool_id = %req.pool_id, %address, endpoint = ?opts.endpoint_name, "address allocated");
        Ok(address)
    }

    /// Release an address (`ReleaseAddress`); unknown pools or addresses,
    /// and addresses allocated through another pool, change nothing.
    pub async fn release_address(&self, req: &ReleaseAddressRequest) -> Result<(), IpamError> {
        let Some(address) = req.address else {
            return Ok(());
        };
        // nothing to release (a repeated release): the empty submission
        // answers once the first copy is durable
        let (commit, released) = {
            let mut state = self.lock();
            match state.release(&req.pool_id, address) {
                Some(ops) => (self.store.submit(ops), true),
                None => (self.store.submit(Vec::new()), false),
            }
        };
        commit.durable().await?;
        if released {
            tracing::debug!(pool_id = %req.pool_id, %address, "address released");
        }
        Ok(())
    }

    /// Whether `address` is allocated in `space` (for tests and checks).
    pub fn is_allocated(&self, space: &str, address: IpAddr) -> bool {
        AddressSpace::parse(space).is_ok_and(|s| self.lock().is_allocated(&s, address))
    }

    /// Number of allocated addresses over all spaces.
    pub fn address_count(&self) -> usize {
        self.lock().address_count()
    }

    /// Whether the store has failed (the process should restart).
    pub fn failed(&self) -> bool {
        self.store.failed()
    }

    /// Flush and close the state file.
    pub fn close(&self) {
        self.store.close();
    }
}
