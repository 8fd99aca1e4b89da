//! The HTTP edge in process: the library's router (`ipvlan_rs::app`) on
//! state in a temp dir, driven with `tower::ServiceExt::oneshot` as axum's
//! own tests do: no socket, no namespace, no root. Error shapes, 404/405,
//! empty and oversized bodies and every kind of decode error; each refusal
//! leaves the app serving. What needs a kernel or the process (links,
//! sockets, signals) is tested through the real binary elsewhere.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::Request;
use clap::Parser;
use http_body_util::BodyExt;
use ipvlan_rs::{App, Config};
use std::sync::Arc;
use testkit::{Reply, body};
use tower::ServiceExt;

/// The app on a fresh state dir, with these settings (command-line flags).
struct InProcess {
    router: axum::Router,
    _dir: tempfile::TempDir,
}

impl InProcess {
    fn start(flags: &[&str]) -> InProcess {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let args = ["ipvlan-rs", "--state-dir", state.to_str().unwrap()];
        let config = Config::try_parse_from(args.iter().chain(flags)).unwrap();
        let app = App::open(&config).unwrap();
        InProcess {
            router: ipvlan_rs::app(Arc::new(app)),
            _dir: dir,
        }
    }

    /// One request as the engine sends it (`Accept` only, no
    /// `Content-Type`).
    async fn request(&self, method: &str, path: &str, body: impl Into<Body>) -> Reply {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("Host", "plugin.moby.localhost")
            .header("Accept", "application/vnd.docker.plugins.v1.2+json")
            .body(body.into())
            .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn post(&self, path: &str, body: &str) -> Reply {
        self.request("POST", path, body.to_string()).await
    }

    async fn still_serving(&self) {
        let r = self.post("/NetworkDriver.GetCapabilities", "").await;
        assert_eq!(r.status, 200, "server stopped serving: {}", r.body);
        assert_eq!(r.json()["Scope"], "local");
    }
}

#[tokio::test]
async fn bad_input_gets_the_documented_error_shape() {
    let p = InProcess::start(&[]);
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
        let err = p.post(path, body).await.assert_error(*status);
        assert!(err.contains(needle), "{what}: {err:?} lacks {needle:?}");
        p.still_serving().await;
    }
    let r = p
        .request("GET", "/NetworkDriver.GetCapabilities", Body::empty())
        .await;
    let err = r.assert_error(405);
    assert!(err.contains("POST"), "{err}");
    p.still_serving().await;
}

#[tokio::test]
async fn oversized_and_deeply_nested_bodies_are_refused() {
    let p = InProcess::start(&["--max-body", "65536"]);
    let big = format!(
        r#"{{"NetworkID":"n1","Options":{{"x":"{}"}}}}"#,
        "a".repeat(200_000)
    );
    let err = p
        .post("/NetworkDriver.CreateNetwork", &big)
        .await
        .assert_error(500);
    assert!(err.contains("65536"), "{err}");
    p.still_serving().await;
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    p.post("/NetworkDriver.CreateNetwork", &deep)
        .await
        .assert_error(500);
    p.still_serving().await;
}

#[tokio::test]
async fn bodyless_calls_answer_json_objects() {
    let p = InProcess::start(&[]);
    for (path, field) in [
        ("/Plugin.Activate", "Implements"),
        ("/NetworkDriver.GetCapabilities", "Scope"),
        ("/IpamDriver.GetCapabilities", "RequiresRequestReplay"),
        (
            "/IpamDriver.GetDefaultAddressSpaces",
            "LocalDefaultAddressSpace",
        ),
    ] {
        let r = p.post(path, "").await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert!(r.json().get(field).is_some(), "{path}: {}", r.body);
    }
    let r = p
        .post("/NetworkDriver.Leave", &body::endpoint("n", "e"))
        .await;
    assert_eq!((r.status, r.body.as_str()), (200, "{}"));
    let r = p
        .post(
            "/NetworkDriver.GwAllocCheck",
            r#"{"Options":{"com.docker.network.generic":{"ipvlan_mode":"l3"}}}"#,
        )
        .await;
    assert_eq!(
        r.json(),
        serde_json::json!({"SkipIPv4": true, "SkipIPv6": true})
    );
    let err = p
        .post(
            "/NetworkDriver.GwAllocCheck",
            r#"{"Options":{"com.docker.network.generic":{"ipvlan_mode":"l9"}}}"#,
        )
        .await
        .assert_error(500);
    assert!(err.contains("'l9'"), "{err}");
}

/// Options are checked before any parent is looked up, so an unknown one
/// is refused by name whatever the host's links.
#[tokio::test]
async fn unknown_network_options_are_refused_by_name() {
    let p = InProcess::start(&[]);
    let body = r#"{"NetworkID":"n1","Options":{"com.docker.network.generic":{"parent":"hp0","foo":"bar"}},"IPv4Data":[{"AddressSpace":"local","Pool":"10.99.0.0/24"}],"IPv6Data":[]}"#;
    let err = p
        .post("/NetworkDriver.CreateNetwork", body)
        .await
        .assert_error(500);
    assert!(err.contains("\"foo\""), "{err}");
}
