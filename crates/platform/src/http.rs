//! The axum side of the shared plumbing.
//!
//! [`ops_router`] serves `/healthz`, `/readyz` and `/metrics` at the root (what Kubernetes
//! probes and Prometheus call on the pod, never routed by the gateway), and under the
//! service's public prefix (`/media/healthz`: what the gateway routes to) only `/healthz`
//! and a bare `/readyz` (status code and `{"status":…}`): metrics and the dependency
//! report are internals, and under the prefix they are 404. [`with_observability`] wraps a router
//! with request ids, a tracing span per request and per-route metrics. [`serve`] runs it
//! until shutdown, then drains.

use std::{future::IntoFuture, io, time::Duration};

use axum::{
    Json, Router,
    extract::{MatchedPath, Request},
    http::{HeaderName, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
    serve::ListenerExt,
};
use tokio::{net::TcpListener, time::Instant};
use tower_http::{
    request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer},
    trace::TraceLayer,
};

use crate::{Readiness, Shutdown};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// `/healthz`, `/readyz`, `/metrics` at the root; `/healthz` and the bare `/readyz` under
/// `prefix` (e.g. `/media`), the public face.
pub fn ops_router(prefix: &str, readiness: Readiness) -> Router {
    let internal = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(readiness.clone());
    if prefix.is_empty() || prefix == "/" {
        return internal;
    }
    let public = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(public_readyz))
        .with_state(readiness);
    Router::new().merge(internal).nest(prefix, public)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(axum::extract::State(readiness): axum::extract::State<Readiness>) -> Response {
    let report = readiness.report().await;
    let status = if report.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report)).into_response()
}

/// The same status code as [`readyz`], without naming the dependencies.
async fn public_readyz(
    axum::extract::State(readiness): axum::extract::State<Readiness>,
) -> Response {
    let report = readiness.report().await;
    let status = if report.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report.summary())).into_response()
}

async fn metrics() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(),
    )
        .into_response()
}

/// Request ids (taken from `X-Request-Id` when the caller sent a sane one, else a new
/// UUIDv7; echoed on the response), a tracing span carrying it, and per-route metrics.
pub fn with_observability(router: Router) -> Router {
    router
        .layer(middleware::from_fn(record_metrics))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let request_id = req
                .headers()
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id)
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestIdV7))
        .layer(middleware::map_request(drop_insane_request_id))
}

/// Forgets a caller-supplied request id that is not worth propagating, so a new one is made.
async fn drop_insane_request_id(mut req: Request) -> Request {
    if req
        .headers()
        .get(REQUEST_ID)
        .is_some_and(|id| !is_sane_request_id(id.as_bytes()))
    {
        req.headers_mut().remove(REQUEST_ID);
    }
    req
}

/// [`SetRequestIdLayer`] calls it only when the request carries no id.
#[derive(Clone, Copy)]
struct MakeRequestIdV7;

impl MakeRequestId for MakeRequestIdV7 {
    fn make_request_id<B>(&mut self, _request: &http::Request<B>) -> Option<RequestId> {
        Some(RequestId::new(new_request_id()))
    }
}

/// A fresh request id.
pub fn new_request_id() -> HeaderValue {
    HeaderValue::from_str(&uuid::Uuid::now_v7().to_string()).expect("uuid is a valid header")
}

/// Whether a caller-supplied request id is worth propagating: short, visible ASCII.
pub fn is_sane_request_id(value: &[u8]) -> bool {
    !value.is_empty() && value.len() <= 128 && value.iter().all(|b| b.is_ascii_graphic())
}

async fn record_metrics(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    // The route template keeps the label set bounded; unmatched paths share one label.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    crate::metrics::record_http(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Serves a service: its own routes plus the ops routes under `prefix`, with observability.
pub async fn serve_service(
    listener: TcpListener,
    prefix: &str,
    routes: Router,
    readiness: Readiness,
    shutdown: Shutdown,
    grace: Duration,
) -> io::Result<()> {
    let app = with_observability(ops_router(prefix, readiness).merge(routes));
    serve(listener, app, shutdown, grace).await
}

/// Serves `app` on `listener` until `shutdown` fires, then stops accepting and lets the
/// requests in flight finish, and the background work started with [`Shutdown::spawn`]
/// (consumers settling their deliveries) too: both drain at once, for at most `grace`
/// from the signal. Returns only then, so the process exits after its consumers.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: Shutdown,
    grace: Duration,
) -> io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    // Each connection's peer address goes with its requests: per-IP limits need it
    // (crate::client_ip).
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    // TCP_NODELAY on every connection: a response's last partial packet is sent at once
    // instead of waiting (Nagle) for the peer's acknowledgement of the packets before it,
    // which a peer delaying its ACKs holds back for up to 40 ms.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
    });
    let server = axum::serve(listener, app).with_graceful_shutdown(shutdown.triggered());
    let drained = async {
        // A server that failed returns at once (the process is failing anyway); one that
        // stopped for shutdown waits for the background work, which is draining meanwhile.
        server.into_future().await?;
        shutdown.finished().await;
        Ok(())
    };
    match shutdown.drain(grace, drained).await {
        Some(result) => result,
        // Grace period over: remaining connections are dropped; deliveries still held go
        // back to their queues when the broker connection closes.
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_must_be_short_visible_ascii() {
        assert!(is_sane_request_id(b"abc-123"));
        assert!(!is_sane_request_id(b""));
        assert!(!is_sane_request_id(b"has space"));
        assert!(!is_sane_request_id(&[b'a'; 129]));
    }
}
