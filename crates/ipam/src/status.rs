//! What the IPAM holds, for an operator (`GET /status`, `/metrics`): a
//! snapshot, read under the state lock and computed from the allocations
//! (work grows with allocated addresses, never with pool size).

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The IPAM's address spaces and pools.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamStatus {
    /// Each address space that holds a pool or an address.
    pub spaces: Vec<SpaceStatus>,
    /// Each pool leased to the engine, by ID.
    pub pools: Vec<PoolStatus>,
}

/// One address space.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceStatus {
    /// `local` or `global`.
    pub name: String,
    /// Pools leased in it.
    pub pools: usize,
    /// Addresses allocated in it (including those a released pool's
    /// addresses kept reserved).
    pub allocated: usize,
}

/// One pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolStatus {
    /// The PoolID the engine holds (`SPACE/SUBNET[/RANGE]`).
    pub id: String,
    /// Its address space.
    pub space: String,
    /// The subnet.
    pub subnet: IpNet,
    /// The `--ip-range` dynamic addresses come from, if one was given.
    pub range: Option<IpNet>,
    /// Leases outstanding (networks sharing this pool).
    pub leases: u32,
    /// Addresses this pool allocated (gateway, `--ip`, dynamic).
    pub allocated: usize,
    /// Addresses the dynamic range still has free in the space (an
    /// overlapping pool's allocations count as taken).
    pub free: u128,
}
