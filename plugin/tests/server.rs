//! The server's edge through the real socket: error shapes for bad input,
//! the server still serving afterwards, socket ownership and shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Plugin, request};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn still_serving(p: &Plugin) {
    let r = p.post("/NetworkDriver.GetCapabilities", "");
    assert_eq!(r.status, 200, "server stopped serving: {}", r.body);
    assert_eq!(r.json()["Scope"], "local");
}

#[test]
fn bad_input_gets_the_documented_error_shape() {
    common::require_root();
    let p = Plugin::start(None, &[]);
    let cases: &[(&str, &str, &str, u16, &str)] = &[
        (
            "malformed JSON",
            "/NetworkDriver.CreateNetwork",
            "{\"NetworkID\":",
            500,
            "invalid CreateNetwork request",
        ),
        (
            "not an object",
            "/NetworkDriver.Join",
            "[1,2]",
            500,
            "invalid Join request",
        ),
        (
            "wrong type",
            "/NetworkDriver.DeleteNetwork",
            r#"{"NetworkID":42}"#,
            500,
            "invalid DeleteNetwork request",
        ),
        (
            "missing NetworkID",
            "/NetworkDriver.CreateEndpoint",
            r#"{"EndpointID":"e1"}"#,
            500,
            "NetworkID",
        ),
        (
            "missing EndpointID",
            "/NetworkDriver.Join",
            r#"{"NetworkID":"n1"}"#,
            500,
            "EndpointID",
        ),
        (
            "empty NetworkID",
            "/NetworkDriver.CreateNetwork",
            r#"{"NetworkID":""}"#,
            500,
            "invalid NetworkID",
        ),
        (
            "hostile ID",
            "/NetworkDriver.DeleteEndpoint",
            r#"{"NetworkID":"n","EndpointID":"../../etc"}"#,
            500,
            "../../etc",
        ),
        (
            "bad CIDR",
            "/IpamDriver.RequestPool",
            r#"{"AddressSpace":"local","Pool":"10.0.0.0/33"}"#,
            500,
            "10.0.0.0/33",
        ),
        (
            "bad address",
            "/IpamDriver.RequestAddress",
            r#"{"PoolID":"x","Address":"10.0.0.300"}"#,
            500,
            "10.0.0.300",
        ),
        (
            "unknown pool",
            "/IpamDriver.RequestAddress",
            r#"{"PoolID":"local/1.2.3.0/24"}"#,
            500,
            "unknown pool",
        ),
        (
            "v6 pool on v4 request",
            "/IpamDriver.RequestPool",
            r#"{"AddressSpace":"local","Pool":"fd00::/64","V6":false}"#,
            500,
            "fd00::/64",
        ),
        (
            "unknown address space",
            "/IpamDriver.RequestPool",
            r#"{"AddressSpace":"mars","Pool":"10.1.0.0/24"}"#,
            500,
            "mars",
        ),
        (
            "Join before CreateEndpoint",
            "/NetworkDriver.Join",
            r#"{"NetworkID":"n1","EndpointID":"e1","SandboxKey":""}"#,
            500,
            "not found",
        ),
        (
            "unknown path",
            "/NetworkDriver.Teleport",
            "{}",
            404,
            "/NetworkDriver.Teleport",
        ),
        (
            "unknown subsystem",
            "/VolumeDriver.Create",
            "{}",
            404,
            "VolumeDriver",
        ),
    ];
    for (what, path, body, status, needle) in cases {
        let err = p.post(path, body).assert_error(*status);
        assert!(err.contains(needle), "{what}: {err:?} lacks {needle:?}");
        still_serving(&p);
    }
    let r = request(&p.socket, "GET", "/NetworkDriver.GetCapabilities", b"");
    let err = r.assert_error(405);
    assert!(err.contains("POST"), "{err}");
    still_serving(&p);
}

#[test]
fn oversized_and_deeply_nested_bodies_are_refused() {
    common::require_root();
    let p = Plugin::start(None, &[("MAX_BODY", "65536")]);
    let big = format!(
        r#"{{"NetworkID":"n1","Options":{{"x":"{}"}}}}"#,
        "a".repeat(200_000)
    );
    let err = p
        .post("/NetworkDriver.CreateNetwork", &big)
        .assert_error(500);
    assert!(err.contains("65536"), "{err}");
    still_serving(&p);
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    p.post("/NetworkDriver.CreateNetwork", &deep)
        .assert_error(500);
    still_serving(&p);
}

#[test]
fn bodyless_calls_answer_json_objects() {
    common::require_root();
    let p = Plugin::start(None, &[]);
    for (path, field) in [
        ("/Plugin.Activate", "Implements"),
        ("/NetworkDriver.GetCapabilities", "Scope"),
        ("/IpamDriver.GetCapabilities", "RequiresRequestReplay"),
        (
            "/IpamDriver.GetDefaultAddressSpaces",
            "LocalDefaultAddressSpace",
        ),
    ] {
        let r = p.post(path, "");
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert!(r.json().get(field).is_some(), "{path}: {}", r.body);
    }
    let r = p.post(
        "/NetworkDriver.Leave",
        r#"{"NetworkID":"n","EndpointID":"e"}"#,
    );
    assert_eq!((r.status, r.body.as_str()), (200, "{}"));
    let r = p.post(
        "/NetworkDriver.GwAllocCheck",
        r#"{"Options":{"com.docker.network.generic":{"ipvlan_mode":"l3"}}}"#,
    );
    assert_eq!(
        r.json(),
        serde_json::json!({"SkipIPv4": true, "SkipIPv6": true})
    );
    let err = p
        .post(
            "/NetworkDriver.GwAllocCheck",
            r#"{"Options":{"com.docker.network.generic":{"ipvlan_mode":"l9"}}}"#,
        )
        .assert_error(500);
    assert!(err.contains("'l9'"), "{err}");
}

#[test]
fn scope_is_a_setting() {
    common::require_root();
    let p = Plugin::start(None, &[("SCOPE", "global")]);
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
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("p.sock");
    let state = dir.path().join("state");
    // a stale socket file, as a crash leaves it
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let mut p = Plugin::start_with(None, &socket, &state, &[]);
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let state_mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
    assert_eq!(state_mode, 0o700);
    still_serving(&p);
    // a second instance must not steal the live socket
    let other_state = dir.path().join("state2");
    let out = Command::new(common::binary())
        .arg("--socket")
        .arg(&socket)
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
        .arg(&state)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a second instance opened a live state dir"
    );
    // SIGTERM: clean exit, socket removed
    let status = p.stop();
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

#[test]
fn acknowledged_ipam_state_survives_kill_9() {
    common::require_root();
    let dir = tempfile::tempdir().unwrap();
    let (socket, state) = (dir.path().join("p.sock"), dir.path().join("state"));
    let mut p = Plugin::start_with(None, &socket, &state, &[]);
    let pool = p
        .post(
            "/IpamDriver.RequestPool",
            r#"{"AddressSpace":"local","Pool":"10.61.0.0/24"}"#,
        )
        .json();
    let id = pool["PoolID"].as_str().unwrap().to_string();
    let mut got = Vec::new();
    for _ in 0..20 {
        let r = p.post(
            "/IpamDriver.RequestAddress",
            &format!(r#"{{"PoolID":"{id}"}}"#),
        );
        got.push(r.json()["Address"].as_str().unwrap().to_string());
    }
    p.kill9();
    let p = Plugin::start_with(None, &socket, &state, &[]);
    let next = p
        .post(
            "/IpamDriver.RequestAddress",
            &format!(r#"{{"PoolID":"{id}"}}"#),
        )
        .json();
    let next = next["Address"].as_str().unwrap().to_string();
    assert!(
        !got.contains(&next),
        "{next} handed out again after kill -9"
    );
    for a in &got {
        let taken = p.post(
            "/IpamDriver.RequestAddress",
            &format!(
                r#"{{"PoolID":"{id}","Address":"{}"}}"#,
                a.split('/').next().unwrap()
            ),
        );
        taken.assert_error(500);
    }
}
