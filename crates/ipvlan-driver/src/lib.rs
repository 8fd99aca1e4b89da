//! The ipvlan-rs network driver: networks, endpoints and the kernel links
//! behind them (ipvlan and macvlan slaves, 802.1Q and dummy parents).
//!
//! Job: answer the engine's NetworkDriver calls. Options are parsed and
//! checked before any netlink call ("validate first, act second").
//!
//! Invariants:
//! - A network or endpoint the engine was told exists is in the store first.
//! - Links this driver creates carry recognisable names: container links
//!   `ivr` + 12 characters of the endpoint ID, dummy parents `ivd` + 12 of
//!   the network ID; created 802.1Q parents carry the alias `ipvlan-rs:<network>`.
//!   All of them are created in this state's own link group (chosen at
//!   random when the state file is made), so that two instances on one host
//!   (two engines, or a test beside a real installation) never take each
//!   other's links for their own. At start, [`Driver::reconcile`] removes
//!   links of its group that belong to nothing and re-creates created
//!   parents that went missing.
//! - Parents are shared only by networks whose link kind and ipvlan mode
//!   agree (the kernel ties the ipvlan mode to the parent and refuses
//!   macvlan beside ipvlan); a parent is deleted only by its creator, with
//!   the last network on it.
//! - A network with `-o host_link` has a host link (`ivh` + 12 characters
//!   of the network ID) in the same group, with its address as a /32 and
//!   routes to the network's containers (see `host_link`); its record
//!   names it, reconcile restores it and the routes the records call for,
//!   and it goes with its network. In a `dhcp=on` network its address is
//!   a DHCP lease of its own, stored with the network record in the same
//!   commit, renewed with the endpoints' leases and released with the
//!   network.
//! - Leave and Delete* of unknown IDs succeed: the engine replays them after
//!   crashes.
//! - Calls that change one endpoint's link (Join, DeleteEndpoint) take
//!   turns per endpoint, DeleteNetwork waits for all of them; the state lock
//!   is taken after a turn and is not held across Join's netlink round
//!   trips: a Join waiting on the kernel holds up only the calls whose
//!   endpoints share its turn.
//! - A released container link is deleted off the request path (reaper) or,
//!   while its network churns and only if it is exactly as a new link would
//!   be, kept for a short window and given to the network's next endpoint
//!   (spare); spares live in memory only, so a restart deletes them.
//! - An endpoint of a `dhcp=on` network has its lease stored with it, in
//!   the same commit, before CreateEndpoint answers; DeleteEndpoint deletes
//!   both and releases the lease (see [`lease`]).
//!
//! Knows nothing of HTTP; talks to the kernel only through rtnetlink, and
//! to DHCP servers only through the `dhcp` crate.

pub mod link;
pub mod options;
mod reaper;
mod spare;

/// Counts of what the driver did to links, for metrics.
mod counters;
/// The operator's view: networks, endpoints and drift from the kernel.
mod status;

/// The error type.
mod error;
/// Link names, random IDs and MACs.
mod names;
/// The stored records.
mod records;
/// The in-memory index, its loading and writing, the link group.
mod state;

/// CreateEndpoint, EndpointOperInfo, DeleteEndpoint.
mod endpoint;
/// Host links: the host's own link on a network's parent, and its routes.
mod host_link;
/// Join, link reuse, Leave, the Join response.
mod join;
/// DHCP leases of endpoints: taken, stored, renewed, released.
mod lease;
/// CreateNetwork, DeleteNetwork and parents.
mod network;
/// Start-up: removing what belongs to nothing, re-creating lost parents.
mod reconcile;

pub use counters::{DhcpCounts, DhcpKind, DhcpOutcome, LinkCounts};
pub use dhcp::Settings as DhcpSettings;
pub use error::DriverError;
pub use host_link::{AddressError, AddressLease, HostLinkAddresses, host_link_lease_key};
pub use join::join_response;
pub use link::{Link, LinkError, Netlink};
pub use names::{
    ALIAS_PREFIX, DUMMY_PREFIX, HOST_LINK_PREFIX, SLAVE_PREFIX, dummy_name, host_link_name,
    slave_name,
};
pub use options::{HostLinkOption, LinkKind, NetworkOptions, OptionError, ParentSpec};
pub use reaper::REAP_GROUP;
pub use records::{CreatedParent, EndpointRecord, HostLink, LeaseRecord, NetworkRecord, Subnet};
pub use state::SCHEMA;
pub use status::{
    Drift, DriverStatus, EndpointOnLostParent, EndpointStatus, HostLinkStatus, LeaseStatus,
    MissingHostLink, MissingLink, MissingParent, NetworkStatus, OrphanLink,
};

use std::sync::Arc;
use std::time::Duration;
use store::Store;
use tokio::sync::Mutex;

/// Driver settings.
#[derive(Debug, Clone, Default)]
pub struct DriverConfig {
    /// Parent used when a network names none (`None`: dummy parent).
    pub default_parent: Option<String>,
    /// How long a released container link is kept for reuse while its
    /// network churns (see [`spare`]); zero deletes every released link.
    pub link_reuse_window: Duration,
    /// The IPAM that reserves host link addresses (`-o host_link=on`);
    /// `None`: only `host_link=ADDR` works.
    pub host_link_addresses: Option<HostLinkIpam>,
    /// The scope the plugin reports to the engine: with `Local`, a Swarm
    /// manager hands a Swarm network to each node without its options.
    pub scope: protocol::network::Scope,
    /// Timing of DHCP exchanges (`dhcp=on` networks).
    pub dhcp: dhcp::Settings,
}

/// The IPAM behind [`DriverConfig::host_link_addresses`].
#[derive(Clone)]
pub struct HostLinkIpam(pub Arc<dyn HostLinkAddresses>);

impl std::fmt::Debug for HostLinkIpam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostLinkIpam")
    }
}

/// The network driver. Share it behind an `Arc`.
pub struct Driver {
    /// Shared with the timers that expire spares.
    state: Arc<Mutex<state::State>>,
    store: Store,
    netlink: Netlink,
    reaper: reaper::Reaper,
    link_group: u32,
    /// The commit of a newly chosen link group, awaited before the first
    /// link is made with it (open is synchronous and runs inside a runtime).
    link_group_commit: std::sync::Mutex<Option<store::Commit>>,
    /// Taken before `state` by the calls that change an endpoint's link.
    endpoint_turns: state::EndpointTurns,
    config: DriverConfig,
    /// What was done to links since start (shared with the reaper).
    counters: std::sync::Arc<counters::Counters>,
}
