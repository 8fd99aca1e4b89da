//! The binary as a process: settings from the environment and flags, socket
//! ownership (private, stale replaced, live refused) and shutdown. The
//! HTTP edge itself (error shapes, bad bodies) is tested in process, in
//! `edge.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Plugin, PluginDir};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn still_serving(p: &Plugin) {
    let r = p.post("/NetworkDriver.GetCapabilities", "");
    assert_eq!(r.status, 200, "server stopped serving: {}", r.body);
    assert_eq!(r.json()["Scope"], "local");
}

#[test]
fn scope_is_a_setting() {
    common::require_root();
    let p = common::start(None, &[("SCOPE", "global")]);
    assert_eq!(
        p.post("/NetworkDriver.GetCapabilities", "").json()["Scope"],
        "global"
    );
    let out2 = Command::new(common::binary())
        .env("SCOPE", "planet")
        .arg("--socket")
        .arg("/nonexistent/x.sock")
        .output()
        .unwrap();
    assert!(!out2.status.success());
    assert!(
        String::from_utf8_lossy(&out2.stderr).contains("planet"),
        "{}",
        String::from_utf8_lossy(&out2.stderr)
    );
}

#[test]
fn socket_is_private_stale_is_replaced_live_is_refused() {
    common::require_root();
    let dir = PluginDir::new().unwrap();
    let (socket, state) = (&dir.socket, &dir.state);
    // a stale socket file, as a crash leaves it
    drop(std::os::unix::net::UnixListener::bind(socket).unwrap());
    let mut p = common::start_at(None, &dir, &[]);
    let mode = std::fs::metadata(socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let state_mode = std::fs::metadata(state).unwrap().permissions().mode() & 0o777;
    assert_eq!(state_mode, 0o700);
    still_serving(&p);
    // a second instance must not steal the live socket
    let other_state = dir.path().join("state2");
    let out = Command::new(common::binary())
        .arg("--socket")
        .arg(socket)
        .arg("--state-dir")
        .arg(&other_state)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("another process is serving"), "{stderr}");
    still_serving(&p);
    // nor open the live state of the first
    let other_sock = dir.path().join("q.sock");
    let out = Command::new(common::binary())
        .arg("--socket")
        .arg(&other_sock)
        .arg("--state-dir")
        .arg(state)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a second instance opened a live state dir"
    );
    // SIGTERM: clean exit, socket removed
    let status = p.stop().unwrap();
    assert!(status.success(), "{status:?}\n{}", p.log_text());
    assert!(!socket.exists(), "socket left after SIGTERM");
}

#[test]
fn version_flag() {
    let out = Command::new(common::binary())
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("ipvlan-rs {}", env!("CARGO_PKG_VERSION"))
    );
}
