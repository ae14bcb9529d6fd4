//! Serving a service's gRPC APIs on their own port, beside its HTTP port.
//!
//! Every server also answers the standard health service (`grpc.health.v1.Health`, what
//! Kubernetes' `grpc` probes and `grpc_health_probe` ask):
//!
//! * each of its services, and the server as a whole (the empty name), is SERVING while
//!   the service's readiness checks pass (its stores answer) and NOT_SERVING otherwise,
//!   re-checked every [`HEALTH_INTERVAL`]: the readiness probe;
//! * [`LIVENESS`] is SERVING as long as the server runs, whatever the stores: the liveness
//!   probe (a store outage must not restart every pod).
//!
//! On shutdown everything turns NOT_SERVING first, so balancers stop sending calls, then
//! calls in flight finish.

use std::{net::SocketAddr, time::Duration};

use platform::{
    Readiness, Shutdown,
    config::{ConfigError, var},
};
use tokio::net::TcpListener;
use tonic::{
    server::NamedService,
    service::Routes,
    transport::{Server, server::TcpIncoming},
};
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::metrics::ServerLayer;

/// How often the health service re-checks the stores.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(2);

/// HTTP/2 flow-control windows, the same on both sides (rpc::client): room for many
/// answers of a few tens of KiB in flight on one connection.
pub const CONNECTION_WINDOW: u32 = 8 * 1024 * 1024;
pub const STREAM_WINDOW: u32 = 1024 * 1024;

/// The health name a liveness probe asks for.
pub const LIVENESS: &str = "liveness";

/// The standard health service's name.
const HEALTH_SERVICE: &str = "grpc.health.v1.Health";

/// `GRPC_BIND_ADDR`: where a service's gRPC APIs listen (never behind the gateway).
#[derive(Debug, Clone, Copy)]
pub struct GrpcConfig {
    pub bind: SocketAddr,
}

impl GrpcConfig {
    pub fn from_env(default_bind: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            bind: var("GRPC_BIND_ADDR", default_bind)?,
        })
    }
}

/// The gRPC API a server answers, and its name (for health and metrics). One per server
/// today; `Routes::add_service` would take more.
pub struct Services {
    routes: Routes,
    names: Vec<&'static str>,
}

impl Services {
    pub fn new<S>(service: S) -> Self
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = std::convert::Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        Self {
            routes: Routes::new(service),
            names: vec![S::NAME],
        }
    }
}

/// Serves `services` (and the health service) on `listener` until `shutdown` fires,
/// then lets calls in flight finish.
pub async fn serve(
    listener: TcpListener,
    services: Services,
    readiness: Readiness,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let Services { routes, mut names } = services;
    let (reporter, health) = tonic_health::server::health_reporter();
    // Not serving until the first check passes (the reporter starts the server as a whole
    // SERVING).
    for name in names.iter().chain([&""]) {
        reporter
            .set_service_status(name, ServingStatus::NotServing)
            .await;
    }
    reporter
        .set_service_status(LIVENESS, ServingStatus::Serving)
        .await;
    let watch = tokio::spawn(report_health(
        reporter,
        names.clone(),
        readiness,
        shutdown.clone(),
    ));
    names.push(HEALTH_SERVICE);
    let addr = listener.local_addr()?;
    tracing::info!(%addr, services = ?names, "gRPC listening");
    // The builder's `tcp_nodelay` applies only to listeners tonic binds itself: without
    // it here, a small write (an answer's trailers) waits for the client's delayed ACK,
    // 40 ms (bench/RESULTS.md, "Internal calls").
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let served = Server::builder()
        // One connection carries all of a client's calls at once: h2's default 64 KiB
        // connection window would make a burst of answers wait for window updates.
        .initial_connection_window_size(CONNECTION_WINDOW)
        .initial_stream_window_size(STREAM_WINDOW)
        // Idle connections from clients are kept, and dead ones found.
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .layer(ServerLayer::new(&names))
        .add_routes(routes.add_service(health))
        .serve_with_incoming_shutdown(incoming, shutdown.triggered())
        .await;
    watch.abort();
    served?;
    tracing::info!(%addr, "gRPC stopped");
    Ok(())
}

/// Keeps the health service's answers in step with `readiness`.
async fn report_health(
    reporter: HealthReporter,
    names: Vec<&'static str>,
    readiness: Readiness,
    shutdown: Shutdown,
) {
    let set = |status: ServingStatus| {
        let reporter = reporter.clone();
        let names = names.clone();
        async move {
            reporter.set_service_status("", status).await;
            for name in names {
                reporter.set_service_status(name, status).await;
            }
        }
    };
    let mut last = None;
    let stopping = shutdown.triggered();
    tokio::pin!(stopping);
    loop {
        let status = if readiness.report().await.is_ready() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        if last != Some(status) {
            tracing::info!(?status, "gRPC health");
            set(status).await;
            last = Some(status);
        }
        tokio::select! {
            () = &mut stopping => break,
            () = tokio::time::sleep(HEALTH_INTERVAL) => {}
        }
    }
    set(ServingStatus::NotServing).await;
    reporter
        .set_service_status(LIVENESS, ServingStatus::NotServing)
        .await;
}
