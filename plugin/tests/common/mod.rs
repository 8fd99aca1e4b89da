//! What the system tests of the real `ipvlan-rs` binary share beyond the
//! test kit (`testkit`): this package's binary, started as the tests want
//! it (debug log in a file), and the engine captures in `tests/fixtures/`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod ops;
pub mod storm;

pub use testkit::*;

use std::path::Path;

/// The binary cargo built for these tests.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_ipvlan-rs")
}

/// The plugin in `netns` (None: this namespace), logging at debug level to
/// a file next to its state dir.
pub fn launch(netns: Option<&str>, env: &[(&str, &str)]) -> Launch {
    Launch::new(binary())
        .netns(netns)
        .log_level("debug")
        .log_to_file()
        .env(env)
}

/// Starts the plugin in `netns` on a fresh temp state dir.
pub fn start(netns: Option<&str>, env: &[(&str, &str)]) -> Plugin {
    launch(netns, env)
        .start_in(tempfile::tempdir().unwrap())
        .unwrap()
}

/// Starts the plugin in `netns` on the socket and state of `dir` (restarts
/// on one state).
pub fn start_at(netns: Option<&str>, dir: &PluginDir, env: &[(&str, &str)]) -> Plugin {
    launch(netns, env).start_at(dir).unwrap()
}

/// Starts the plugin on a given socket and state dir.
pub fn start_with(
    netns: Option<&str>,
    socket: &Path,
    state_dir: &Path,
    env: &[(&str, &str)],
) -> Plugin {
    launch(netns, env).start(socket, state_dir).unwrap()
}

/// Container links (`ivr*`) in `ns`.
pub fn container_links(ns: &NetNs) -> Vec<String> {
    ns.links_with_prefix(ipvlan_driver::SLAVE_PREFIX).unwrap()
}

/// Tests without a namespace of their own need root too (the binary's
/// state and links); fail loudly otherwise.
pub fn require_root() {
    testkit::require_root().unwrap();
}

/// The captured requests of a fixture file: (scenario, path, raw body).
pub fn fixture(name: &str) -> Vec<(String, String, String)> {
    let path = format!("{}/../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            (s("scenario"), s("path"), s("raw"))
        })
        .collect()
}
