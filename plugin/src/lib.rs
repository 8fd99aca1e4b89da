//! `ipvlan-rs` as a library: the plugin's HTTP app, which the binary serves
//! on its unix socket and tests drive in process.
//!
//! Job: [`App::open`] opens the durable state (IPAM and driver) a
//! [`Config`] names; [`app`] is the router that answers the engine's
//! calls with it. Listening, signals and start-up order (state dir,
//! reconcile, socket) are the binary's.
//!
//! Invariants: every acknowledged change is on disk before its answer
//! (the stores see to it; handlers await their commits); a failed state
//! store notifies [`App::fatal`], after which the process must restart.

pub mod cli;
pub mod config;
pub mod host_routes;
pub mod metrics;
mod server;
pub mod status;

pub use config::Config;
pub use server::{App, CallError, app, metrics_app};

use ipam::{Ipam, IpamConfig};
use ipvlan_driver::{Driver, DriverConfig};
use std::sync::Arc;

/// Why the state named by a [`Config`] could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The IPAM's state file.
    #[error("opening the IPAM state")]
    Ipam(#[source] ipam::IpamError),
    /// The driver's state file (or its netlink sockets).
    #[error("opening the driver state")]
    Driver(#[source] ipvlan_driver::DriverError),
}

impl App {
    /// Opens the IPAM and driver state in `config.state_dir` (on the
    /// current tokio runtime, where the driver's netlink connection runs).
    /// The driver is not reconciled with the kernel yet: see
    /// [`Driver::reconcile`].
    pub fn open(config: &Config) -> Result<App, OpenError> {
        let ipam = Ipam::open(
            &config.state_dir.join("ipam.redb"),
            IpamConfig {
                default_pools: config.default_pools.clone(),
            },
            Arc::new(host_routes::ProcRoutes),
        )
        .map_err(OpenError::Ipam)?;
        let default_parent =
            Some(config.default_parent.trim().to_string()).filter(|p| !p.is_empty());
        let driver = Driver::open(
            &config.state_dir.join("driver.redb"),
            DriverConfig {
                default_parent,
                link_reuse_window: std::time::Duration::from_millis(config.link_reuse_ms),
                scope: config.scope,
                dhcp: ipvlan_driver::DhcpSettings {
                    timeout: std::time::Duration::from_millis(config.dhcp_timeout_ms),
                    arp_probe: std::time::Duration::from_millis(config.dhcp_arp_probe_ms),
                    ..ipvlan_driver::DhcpSettings::default()
                },
            },
        )
        .map_err(OpenError::Driver)?;
        let (ipam, driver) = (Arc::new(ipam), Arc::new(driver));
        Ok(App {
            metrics: metrics::Metrics::new(ipam.clone(), driver.clone()),
            ipam,
            driver,
            scope: config.scope,
            max_body: config.max_body,
            fatal: tokio::sync::Notify::new(),
        })
    }
}
