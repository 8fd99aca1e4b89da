//! The per-space index of allocated addresses, the first free one, and their store keys.

use super::pool::{AddressSpace, Owner};
use crate::range::{bounds, from_int};
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::net::IpAddr;

pub(super) const ADDRESSES: &str = "addresses";

/// Allocated addresses of one space, each with the pool that allocated it
/// (released with it).
#[derive(Default)]
pub(super) struct Allocations {
    v4: BTreeMap<u32, Owner>,
    v6: BTreeMap<u128, Owner>,
}

impl Allocations {
    pub(super) fn get(&self, addr: IpAddr) -> Option<Owner> {
        match addr {
            IpAddr::V4(a) => self.v4.get(&u32::from(a)).copied(),
            IpAddr::V6(a) => self.v6.get(&u128::from(a)).copied(),
        }
    }

    pub(super) fn insert(&mut self, addr: IpAddr, owner: Owner) {
        match addr {
            IpAddr::V4(a) => self.v4.insert(u32::from(a), owner),
            IpAddr::V6(a) => self.v6.insert(u128::from(a), owner),
        };
    }

    pub(super) fn remove(&mut self, addr: IpAddr) {
        match addr {
            IpAddr::V4(a) => self.v4.remove(&u32::from(a)),
            IpAddr::V6(a) => self.v6.remove(&u128::from(a)),
        };
    }

    pub(super) fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// The lowest free address in `lo..=hi`: walks only the run of
    /// allocated addresses that starts at `lo`.
    pub(super) fn first_free(&self, v6: bool, lo: u128, hi: u128) -> Option<u128> {
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
    pub(super) fn owned_in(&self, net: &IpNet, owner: Owner) -> Vec<IpAddr> {
        let (lo, hi) = bounds(net);
        self.entries(matches!(net, IpNet::V6(_)), lo, hi)
            .filter(|(_, o)| *o == owner)
            .map(|(k, _)| from_int(k, net))
            .collect()
    }

    /// Allocated addresses of one family in `lo..=hi`, in order, with the
    /// pool that allocated each.
    pub(super) fn entries(
        &self,
        v6: bool,
        lo: u128,
        hi: u128,
    ) -> Box<dyn Iterator<Item = (u128, Owner)> + '_> {
        if lo > hi {
            return Box::new(std::iter::empty());
        }
        if v6 {
            Box::new(self.v6.range(lo..=hi).map(|(k, o)| (*k, *o)))
        } else {
            let (l, h) = (
                u32::try_from(lo).unwrap_or(u32::MAX),
                u32::try_from(hi).unwrap_or(u32::MAX),
            );
            Box::new(self.v4.range(l..=h).map(|(k, o)| (u128::from(*k), *o)))
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

pub(super) fn address_key(space: AddressSpace, addr: IpAddr) -> Vec<u8> {
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

pub(super) fn parse_address_key(key: &[u8]) -> Option<(AddressSpace, IpAddr)> {
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
