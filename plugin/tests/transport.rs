//! What is refused before any call is decoded, through the real socket:
//! unknown paths, other methods than POST, bodies that are no request
//! (malformed, of the wrong shape, nested too deep, too large), each on
//! the hostile rig (see `hostile/mod.rs`) and changing nothing; and abuse
//! of the connection itself (truncated bodies, garbage, idle connections).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod hostile;

use common::body;
use hostile::{CN, Case, Rig, V4, err, nid};

fn cases() -> Vec<Case> {
    let deep = "[".repeat(100_000);
    let deep_option = format!(
        r#"{{"NetworkID":"{}","Options":{{"x":{}}}}}"#,
        nid(99),
        "[".repeat(100_000)
    );
    // valid JSON, just too big: over the 1 MiB default of --max-body
    let huge = body::create_network(
        &nid(98),
        &format!(r#"{{"parent":"hp0","x":"{}"}}"#, "a".repeat(1_100_000)),
        V4,
    );
    vec![
        err(
            "malformed JSON",
            CN,
            format!(
                r#"{{"NetworkID":"{}","IPv4Data":{V4},"Options":{{"x":1,,}}}}"#,
                nid(23)
            ),
            &[r#""x":1,,"#, "line 1 column"],
        )
        .then(|rig| rig.assert_no_network(&nid(23))),
        err(
            "NetworkID of a wrong JSON type",
            "/NetworkDriver.Join",
            r#"{"NetworkID":42,"EndpointID":"e"}"#,
            &["42"],
        ),
        err(
            "a JSON string instead of an object",
            CN,
            r#""hello""#,
            &["hello"],
        ),
        err("100k nested arrays", CN, deep, &["[[[["]),
        err(
            "100k nested arrays in Options",
            CN,
            deep_option,
            &["recursion limit", "[[[["],
        ),
        err("body over 1 MiB", CN, huge, &["1048576"]),
        err(
            "unknown call",
            "/NetworkDriver.Teleport",
            "{}",
            &["/NetworkDriver.Teleport"],
        )
        .status(404),
        err(
            "GET instead of POST",
            "/IpamDriver.RequestPool",
            "",
            &["POST", "GET"],
        )
        .status(405)
        .method("GET"),
    ]
}

#[test]
fn bodies_that_are_no_request_are_refused_and_change_nothing() {
    let rig = Rig::start();
    hostile::run(&rig, "transport", &cases(), 3);
}

/// Transport-level abuse: a body shorter than its Content-Length, a
/// request line of garbage, and idle connections that never send a byte;
/// the server answers or closes each, and keeps serving the others.
#[test]
fn truncated_garbage_and_idle_connections_do_not_wedge_the_server() {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    common::require_root();
    let p = common::start(None, &[]);
    let serving = |what: &str| {
        let r = p.post("/NetworkDriver.GetCapabilities", "");
        assert_eq!(r.status, 200, "{what}: {}", r.body);
    };
    // idle connections stay open while others are served
    let idle: Vec<UnixStream> = (0..50)
        .map(|_| UnixStream::connect(&p.socket).unwrap())
        .collect();
    serving("50 idle connections");
    // a body cut short: the server must not wait for the rest forever once
    // the client is gone
    let mut s = UnixStream::connect(&p.socket).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(
        b"POST /IpamDriver.RequestPool HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"Pool\":",
    )
    .unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    if !raw.is_empty() {
        assert!(raw.starts_with("HTTP/1.1 500"), "{raw}");
        assert!(raw.contains("request body rejected"), "{raw}");
    }
    serving("truncated body");
    // not HTTP at all
    let mut s = UnixStream::connect(&p.socket).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(b"\x00\x01\x02 GARBAGE \xff\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.is_empty() || raw.starts_with("HTTP/1.1 400"), "{raw}");
    serving("garbage request line");
    drop(idle);
    serving("idle connections closed");
    let log = p.log_text();
    assert!(!log.contains("panicked"), "{log}");
}
