//! `GET /status`: what the plugin holds and how the kernel differs from
//! it, as one JSON document (read-only). `ipvlan-rs status` reads it.
//!
//! Cost: the driver's part takes one netlink dump of the host's links
//! under the driver's state lock; the IPAM's part walks the allocated
//! addresses under the IPAM's lock. Nothing is written.

use crate::App;
use ipam::IpamStatus;
use ipvlan_driver::DriverStatus;
use serde::{Deserialize, Serialize};

/// The document `GET /status` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The plugin's version.
    pub version: String,
    /// Networks, endpoints and drift (see [`DriverStatus`]).
    #[serde(flatten)]
    pub driver: DriverStatus,
    /// Address spaces and pools.
    pub ipam: IpamStatus,
    // extension point (issue #19): DHCP leases (address, client-id,
    // expiry) go here as `dhcp_leases`, once the DHCP client keeps them.
}

impl Status {
    /// Reads the state of `app` now.
    pub async fn read(app: &App) -> Result<Status, ipvlan_driver::DriverError> {
        Ok(Status {
            version: env!("CARGO_PKG_VERSION").to_string(),
            driver: app.driver.status().await?,
            ipam: app.ipam.status(),
        })
    }
}
