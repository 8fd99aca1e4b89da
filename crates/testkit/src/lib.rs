//! The rig that drives the real `ipvlan-rs` binary from outside, shared by
//! the plugin's system tests and the benchmarks: network namespaces with
//! veth parents ([`NetNs`]), the plugin process ([`Launch`], [`Plugin`]),
//! HTTP clients that speak to its socket the way the engine does
//! ([`request`], [`Conn`]), the request bodies the engine sends
//! ([`body`]), and a real DHCP server ([`DhcpServer`], dnsmasq).
//!
//! Invariants: everything it creates (namespaces, processes, temporary
//! directories) is removed on drop; namespaces carry the creating
//! process's PID, so that several test runs on one host never share one
//! and a later run can sweep those of a killed one. Waits poll for their
//! event under one generous guard ([`GUARD`]), so a slow machine makes a
//! run slower, never red. Failures are [`Error`]s naming what failed
//! (tests unwrap them, benchmarks report them).

pub mod body;
mod dnsmasq;
mod http;
mod netns;
mod plugin;

pub use dnsmasq::{DhcpServer, LeaseLine, ROUTER, SERVER_ADDRESS, client_id_text, dnsmasq_binary};
pub use http::{Conn, Reply, request, request_tcp};
pub use netns::{NetNs, ip, ip_binary, kernel_has_ipvlan, require_root};
pub use plugin::{Launch, Plugin, PluginDir};

use std::time::{Duration, Instant};

/// How long a wait for an event (a socket served, a link deleted by the
/// reaper) lasts before it fails. Only a guard: every wait polls for its
/// event and returns as soon as it happens, so a slow or loaded machine
/// makes a run slower, never red.
pub const GUARD: Duration = Duration::from_secs(60);

/// A failure of the rig, naming what failed. Its `Debug` is its message,
/// so that a test's `unwrap()` prints it readably.
#[derive(thiserror::Error)]
#[error("{0}")]
pub struct Error(String);

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error {
    fn new(message: impl Into<String>) -> Error {
        Error(message.into())
    }

    /// `context: cause`.
    fn with(context: impl std::fmt::Display, cause: impl std::fmt::Display) -> Error {
        Error(format!("{context}: {cause}"))
    }
}

/// What the rig's calls return.
pub type Result<T> = std::result::Result<T, Error>;

/// Polls `cond` every 5 ms until it holds (true) or `within` has passed.
pub fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A 64-hex ID like the engine's, distinct in its first 12 characters.
pub fn docker_id(n: u64) -> String {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    format!("{:016x}{:048x}", z ^ (z >> 31), n)
}
