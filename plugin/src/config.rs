//! Command line and environment settings.

use clap::Parser;
use ipam::DefaultPool;
use protocol::network::Scope;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Docker managed network plugin: IPVLAN and MACVLAN networks with their own IPAM.
#[derive(Debug, Clone, Parser)]
#[command(name = "ipvlan-rs", version, about)]
pub struct Config {
    /// Unix socket to serve the plugin API on.
    #[arg(
        long,
        env = "SOCKET",
        default_value = "/run/docker/plugins/ipvlan-rs.sock"
    )]
    pub socket: PathBuf,

    /// Directory of the durable state (ipam.redb, driver.redb).
    #[arg(long, env = "STATE_DIR", default_value = "/var/lib/ipvlan-rs")]
    pub state_dir: PathBuf,

    /// Log filter: error, warn, info, debug, trace (or a tracing filter).
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// `local`: each node allocates addresses; `global`: the Swarm manager does.
    #[arg(long, env = "SCOPE", default_value = "local")]
    pub scope: Scope,

    /// Parent interface for networks that name none (empty: a dummy parent,
    /// which makes the network internal).
    #[arg(long, env = "DEFAULT_PARENT", default_value = "")]
    pub default_parent: String,

    /// Ranges pools are carved from when a network gives no --subnet:
    /// comma-separated BASE/LEN:SIZE.
    #[arg(
        long,
        env = "DEFAULT_POOLS",
        default_value = "172.30.0.0/16:24,fdc9:b4a1:7e2d::/48:64",
        value_delimiter = ','
    )]
    pub default_pools: Vec<DefaultPool>,

    /// Milliseconds a released container link is kept for reuse while its
    /// network churns (two endpoints created within this time); 0 deletes
    /// every released link at once.
    #[arg(long, env = "LINK_REUSE_MS", default_value_t = 100)]
    pub link_reuse_ms: u64,

    /// `dhcp=on` networks: milliseconds a DHCP exchange may take before the
    /// server counts as silent (CreateEndpoint then fails).
    #[arg(long, env = "DHCP_TIMEOUT_MS", default_value_t = 5000)]
    pub dhcp_timeout_ms: u64,

    /// `dhcp=on` networks: milliseconds to wait for another host to answer
    /// the ARP probe of an offered address before taking it (0: no probe).
    #[arg(long, env = "DHCP_ARP_PROBE_MS", default_value_t = 200)]
    pub dhcp_arp_probe_ms: u64,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "MAX_BODY", default_value_t = 1 << 20)]
    pub max_body: usize,

    /// Also serve GET /metrics over TCP at this address, e.g.
    /// 127.0.0.1:9323 (the plugin runs in the host's network namespace);
    /// empty: no TCP listener. Nothing but /metrics is served there.
    #[arg(long, env = "METRICS_ADDR", default_value = "")]
    pub metrics_addr: MetricsAddr,

    /// A subcommand instead of serving the plugin.
    #[command(subcommand)]
    pub command: Option<crate::cli::Command>,
}

/// `METRICS_ADDR`: an address to listen on, or none (empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsAddr(pub Option<SocketAddr>);

impl std::str::FromStr for MetricsAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(MetricsAddr(None));
        }
        s.parse().map(|a| MetricsAddr(Some(a))).map_err(|_| {
            format!(
                "invalid METRICS_ADDR {s:?}: expected IP:PORT, e.g. 127.0.0.1:9323 or [::1]:9323"
            )
        })
    }
}
