//! The plugin's IPAM as the driver's source of host link addresses
//! (`-o host_link=on`): both roles live in this process, so a network whose
//! pool this IPAM leased gets its host link's address reserved like a
//! container's, released with the network or, failing that, with its pool.

use futures::future::BoxFuture;
use ipam::Ipam;
use ipnet::IpNet;
use ipvlan_driver::{AddressError, AddressLease, HostLinkAddresses};
use protocol::ipam::{ReleaseAddressRequest, RequestAddressRequest};
use protocol::network::IpamData;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

/// [`HostLinkAddresses`] served by the plugin's [`Ipam`].
pub struct IpamHostLinkAddresses(pub Arc<Ipam>);

impl IpamHostLinkAddresses {
    fn pool(
        &self,
        data: &IpamData,
    ) -> Result<Option<(ipam::PoolId, Option<IpNet>)>, ipam::IpamError> {
        self.0.network_pool(
            &data.address_space,
            data.pool,
            data.gateway.map(|g| g.addr()),
        )
    }
}

impl HostLinkAddresses for IpamHostLinkAddresses {
    fn reserve<'a>(
        &'a self,
        data: &'a IpamData,
        wanted: Option<Ipv4Addr>,
    ) -> BoxFuture<'a, Result<Option<AddressLease>, AddressError>> {
        Box::pin(async move {
            let Some((pool, _)) = self.pool(data)? else {
                return Ok(None);
            };
            let req = RequestAddressRequest {
                pool_id: pool.to_string(),
                address: wanted.map(IpAddr::V4),
                options: Default::default(),
            };
            let address = match self.0.request_address(&req).await?.addr() {
                IpAddr::V4(a) => a,
                IpAddr::V6(a) => return Err(format!("pool {pool} gave IPv6 address {a}").into()),
            };
            tracing::info!(pool_id = %pool, %address, "address reserved for a host link");
            Ok(Some(AddressLease {
                pool: pool.to_string(),
                address,
            }))
        })
    }

    fn release<'a>(&'a self, lease: &'a str, address: Ipv4Addr) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let req = ReleaseAddressRequest {
                pool_id: lease.to_string(),
                address: Some(IpAddr::V4(address)),
            };
            if let Err(e) = self.0.release_address(&req).await {
                // the engine's ReleasePool frees what its pool still holds
                tracing::warn!(pool_id = lease, %address, error = %e, "could not release a host link's address");
            }
        })
    }

    fn range(&self, data: &IpamData) -> Option<IpNet> {
        self.pool(data).ok().flatten().and_then(|(_, range)| range)
    }
}
