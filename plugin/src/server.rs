//! The HTTP edge: one route per protocol call, each decoding the body,
//! calling the domain and encoding the answer; and the operator's two
//! read-only GETs, `/status` and `/metrics`.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use ipam::Ipam;
use ipvlan_driver::Driver;
use protocol::ipam::{AddressSpacesResponse, RequestAddressResponse, RequestPoolResponse};
use protocol::network::{
    AllocateNetworkResponse, CapabilitiesResponse, CreateEndpointResponse, EndpointInfoResponse,
    GwAllocCheckResponse, Scope,
};
use protocol::{ActivateResponse, Call, EmptyResponse, ErrorResponse, Request};
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::Notify;
use tracing::Instrument;

/// What the handlers share.
pub struct App {
    /// The address allocator.
    pub ipam: Arc<Ipam>,
    /// The network driver.
    pub driver: Arc<Driver>,
    /// The `Scope` answered in GetCapabilities.
    pub scope: Scope,
    /// Largest request body accepted.
    pub max_body: usize,
    /// Notified when a state store failed: the process must restart.
    pub fatal: Notify,
    /// Call counts and latencies, and the domain's numbers at each scrape.
    pub metrics: crate::metrics::Metrics,
}

/// A failed call: 500 with `{"Err": m, "Error": m}`.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The body did not decode.
    #[error(transparent)]
    Decode(#[from] protocol::DecodeError),
    /// The IPAM refused.
    #[error(transparent)]
    Ipam(#[from] ipam::IpamError),
    /// The driver refused.
    #[error(transparent)]
    Driver(#[from] ipvlan_driver::DriverError),
    /// The body was too large or unreadable.
    #[error("request body rejected: {0}")]
    Body(String),
}

fn error_response(status: StatusCode, message: String) -> Response {
    (status, axum::Json(ErrorResponse::new(message))).into_response()
}

/// The router. `GET /status` and `GET /metrics` are the operator's;
/// every other path goes through `dispatch`, which maps it to a [`Call`];
/// unknown paths get 404 (the engine reads that as "not implemented"),
/// other methods than POST 405.
pub fn app(app: Arc<App>) -> Router {
    Router::new()
        .route("/status", any(status))
        .route("/metrics", any(metrics))
        .fallback(dispatch)
        .with_state(app)
}

/// The router of `METRICS_ADDR`: `GET /metrics` and nothing else (404).
pub fn metrics_app(app: Arc<App>) -> Router {
    Router::new()
        .route("/metrics", any(metrics))
        .fallback(|uri: Uri| async move {
            error_response(
                StatusCode::NOT_FOUND,
                format!("{} is not served here: only /metrics", uri.path()),
            )
        })
        .with_state(app)
}

/// Refuses what a read-only GET must not be: another method, or a body
/// over the socket's limit (the same limit the calls have).
async fn read_only(app: &App, method: &Method, path: &str, body: Body) -> Result<(), Response> {
    if method != Method::GET {
        return Err(error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{path} takes GET, not {method}"),
        ));
    }
    match axum::body::to_bytes(body, app.max_body).await {
        Ok(_) => Ok(()),
        Err(e) => Err(error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body rejected: {e} (limit {} bytes)", app.max_body),
        )),
    }
}

async fn status(State(app): State<Arc<App>>, method: Method, body: Body) -> Response {
    if let Err(refused) = read_only(&app, &method, "/status", body).await {
        return refused;
    }
    match crate::status::Status::read(&app).await {
        Ok(status) => (StatusCode::OK, axum::Json(status)).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "status failed");
            error_response(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
    }
}

async fn metrics(State(app): State<Arc<App>>, method: Method, body: Body) -> Response {
    if let Err(refused) = read_only(&app, &method, "/metrics", body).await {
        return refused;
    }
    match app.metrics.encode() {
        Ok(text) => (
            StatusCode::OK,
            [(
                axum::http::header::CONTENT_TYPE,
                crate::metrics::CONTENT_TYPE,
            )],
            text,
        )
            .into_response(),
        Err(e) => error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("encoding the metrics: {e}"),
        ),
    }
}

async fn dispatch(State(app): State<Arc<App>>, method: Method, uri: Uri, body: Body) -> Response {
    let Some(call) = Call::from_path(uri.path()) else {
        tracing::debug!(path = uri.path(), "unknown path");
        return error_response(
            StatusCode::NOT_FOUND,
            format!("{} is not a call this plugin implements", uri.path()),
        );
    };
    if method != Method::POST {
        return error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{} takes POST, not {method}", call.path()),
        );
    }
    let span = tracing::info_span!(
        "call",
        call = call.method(),
        network = tracing::field::Empty,
        endpoint = tracing::field::Empty,
        pool = tracing::field::Empty
    );
    async move {
        let started = std::time::Instant::now();
        let result = match axum::body::to_bytes(body, app.max_body).await {
            Ok(bytes) => {
                // LOG_LEVEL=trace logs every body as received, as one JSON
                // string, so that what an engine sends can be captured from
                // its log of the plugin (tests/fixtures/record-requests.sh)
                tracing::trace!(
                    target: "ipvlan_rs::wire",
                    path = %call.path(),
                    body = %body_as_json_string(&bytes),
                    "request body"
                );
                handle(&app, call, &bytes).await
            }
            Err(e) => Err(CallError::Body(format!(
                "{e} (limit {} bytes)",
                app.max_body
            ))),
        };
        // its own target, so that LOG_LEVEL=info,ipvlan_rs::timing=debug
        // shows how long each call took without the request bodies
        let elapsed = started.elapsed();
        tracing::debug!(
            target: "ipvlan_rs::timing",
            elapsed_us = elapsed.as_micros() as u64,
            ok = result.is_ok(),
            "answered"
        );
        app.metrics.call(call, result.is_ok(), elapsed);
        match result {
            Ok(response) => response,
            Err(e) => {
                tracing::warn!(error = %e, "call failed");
                if app.ipam.failed() || app.driver.failed() {
                    app.fatal.notify_one();
                }
                error_response(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            }
        }
    }
    .instrument(span)
    .await
}

/// The body as a JSON string literal (invalid UTF-8 replaced), one line
/// whatever it holds.
fn body_as_json_string(bytes: &[u8]) -> String {
    serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned()).to_string()
}

fn ok<T: Serialize>(value: T) -> Result<Response, CallError> {
    Ok((StatusCode::OK, axum::Json(value)).into_response())
}

fn record_ids(req: &Request) {
    let span = tracing::Span::current();
    let (network, endpoint, pool) = match req {
        Request::CreateNetwork(r) => (Some(r.network_id.as_str()), None, None),
        Request::AllocateNetwork(r) => (Some(r.network_id.as_str()), None, None),
        Request::FreeNetwork(r) | Request::DeleteNetwork(r) => {
            (Some(r.network_id.as_str()), None, None)
        }
        Request::CreateEndpoint(r) => (
            Some(r.network_id.as_str()),
            Some(r.endpoint_id.as_str()),
            None,
        ),
        Request::Join(r) => (
            Some(r.network_id.as_str()),
            Some(r.endpoint_id.as_str()),
            None,
        ),
        Request::ProgramExternalConnectivity(r) => (
            Some(r.network_id.as_str()),
            Some(r.endpoint_id.as_str()),
            None,
        ),
        Request::EndpointOperInfo(r)
        | Request::DeleteEndpoint(r)
        | Request::Leave(r)
        | Request::RevokeExternalConnectivity(r) => (
            Some(r.network_id.as_str()),
            Some(r.endpoint_id.as_str()),
            None,
        ),
        Request::ReleasePool(r) => (None, None, Some(r.pool_id.as_str())),
        Request::RequestAddress(r) => (None, None, Some(r.pool_id.as_str())),
        Request::ReleaseAddress(r) => (None, None, Some(r.pool_id.as_str())),
        _ => (None, None, None),
    };
    if let Some(n) = network {
        span.record("network", n);
    }
    if let Some(e) = endpoint {
        span.record("endpoint", e);
    }
    if let Some(p) = pool {
        span.record("pool", p);
    }
}

async fn handle(app: &App, call: Call, body: &Bytes) -> Result<Response, CallError> {
    let req = Request::decode(call, body)?;
    record_ids(&req);
    tracing::debug!(?req, "request");
    match req {
        Request::Activate => ok(ActivateResponse {
            implements: vec!["NetworkDriver".into(), "IpamDriver".into()],
        }),
        Request::GetCapabilities => ok(CapabilitiesResponse {
            scope: app.scope,
            connectivity_scope: Scope::Global,
            gw_alloc_checker: true,
        }),
        Request::GwAllocCheck(r) => {
            app.driver.check_options(&r.options.generic)?;
            // like Docker's built-in ipvlan: no gateway unless the user gives one
            ok(GwAllocCheckResponse {
                skip_ipv4: true,
                skip_ipv6: true,
            })
        }
        Request::AllocateNetwork(r) => {
            app.driver.check_options(&r.options)?;
            // the global leases of this allocation belong to this network
            // (a new Swarm leader's restore, or a new network)
            let subnets: Vec<_> = r.ipv4_data.iter().map(|d| d.pool).collect();
            app.ipam
                .network_allocated(r.network_id.as_str(), &subnets)
                .await?;
            ok(AllocateNetworkResponse { options: r.options })
        }
        Request::FreeNetwork(r) => {
            app.ipam.network_freed(r.network_id.as_str()).await?;
            ok(EmptyResponse {})
        }
        Request::CreateNetwork(r) => {
            app.driver.create_network(&r).await?;
            ok(EmptyResponse {})
        }
        Request::DeleteNetwork(r) => {
            app.driver.delete_network(&r).await?;
            ok(EmptyResponse {})
        }
        Request::CreateEndpoint(r) => {
            let interface = app.driver.create_endpoint(&r).await?;
            ok(CreateEndpointResponse { interface })
        }
        Request::EndpointOperInfo(r) => {
            let value = app.driver.endpoint_info(&r).await?;
            ok(EndpointInfoResponse { value })
        }
        Request::DeleteEndpoint(r) => {
            app.driver.delete_endpoint(&r).await?;
            ok(EmptyResponse {})
        }
        Request::Join(r) => ok(app.driver.join(&r).await?),
        Request::Leave(r) => {
            app.driver.leave(&r).await?;
            ok(EmptyResponse {})
        }
        Request::DiscoverNew(n) | Request::DiscoverDelete(n) => {
            tracing::debug!(node = ?n.node(), "discovery notification");
            ok(EmptyResponse {})
        }
        Request::ProgramExternalConnectivity(_) | Request::RevokeExternalConnectivity(_) => {
            ok(EmptyResponse {})
        }
        Request::IpamGetCapabilities => ok(protocol::ipam::CapabilitiesResponse {
            requires_mac_address: false,
            requires_request_replay: false,
        }),
        Request::GetDefaultAddressSpaces => ok(AddressSpacesResponse {
            local_default_address_space: ipam::LOCAL_SPACE.into(),
            global_default_address_space: ipam::GLOBAL_SPACE.into(),
        }),
        Request::RequestPool(r) => {
            let lease = app.ipam.request_pool(&r).await?;
            ok(RequestPoolResponse {
                pool_id: lease.id.to_string(),
                pool: lease.pool,
                data: Default::default(),
            })
        }
        Request::ReleasePool(r) => {
            app.ipam.release_pool(&r).await?;
            ok(EmptyResponse {})
        }
        Request::RequestAddress(r) => {
            let address = app.ipam.request_address(&r).await?;
            ok(RequestAddressResponse {
                address,
                data: Default::default(),
            })
        }
        Request::ReleaseAddress(r) => {
            app.ipam.release_address(&r).await?;
            ok(EmptyResponse {})
        }
    }
}
