//! The snapshot of [`crate::IpamStatus`], computed from the state.

use super::State;
use crate::range::bounds;
use crate::status::{IpamStatus, PoolStatus, SpaceStatus};
use ipnet::IpNet;

impl State {
    /// Spaces and pools as they stand. Walks the allocations inside each
    /// pool once: O(allocated addresses), nothing per free address.
    pub(crate) fn status(&self) -> IpamStatus {
        let mut pools: Vec<PoolStatus> = self
            .pools
            .values()
            .map(|pool| {
                let record = &pool.record;
                let v6 = matches!(record.pool, IpNet::V6(_));
                let (first, last) = bounds(&record.pool);
                let (allocated, taken_in_range) =
                    self.spaces.get(&record.space).map_or((0, 0), |space| {
                        let allocated = space
                            .entries(v6, first, last)
                            .filter(|(_, owner)| *owner == pool.owner)
                            .count();
                        (allocated, space.entries(v6, pool.lo, pool.hi).count())
                    });
                let size = pool.hi.saturating_sub(pool.lo).saturating_add(1);
                PoolStatus {
                    id: pool.id.to_string(),
                    space: record.space.name().to_string(),
                    subnet: record.pool,
                    range: record.sub_pool,
                    leases: record.refs,
                    allocated,
                    free: size.saturating_sub(taken_in_range as u128),
                }
            })
            .collect();
        pools.sort_by(|a, b| a.id.cmp(&b.id));
        let mut spaces: Vec<SpaceStatus> = self
            .spaces
            .iter()
            .map(|(space, allocations)| SpaceStatus {
                name: space.name().to_string(),
                pools: pools.iter().filter(|p| p.space == space.name()).count(),
                allocated: allocations.len(),
            })
            .collect();
        for pool in &pools {
            if !spaces.iter().any(|s| s.name == pool.space) {
                spaces.push(SpaceStatus {
                    name: pool.space.clone(),
                    pools: pools.iter().filter(|p| p.space == pool.space).count(),
                    allocated: 0,
                });
            }
        }
        spaces.sort_by(|a, b| a.name.cmp(&b.name));
        IpamStatus { spaces, pools }
    }
}
