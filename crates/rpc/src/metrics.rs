//! Per-method gRPC metrics, named as the Prometheus gRPC middlewares name them so existing
//! dashboards work:
//!
//! * `grpc_server_handled_total{grpc_service, grpc_method, grpc_code}` and
//!   `grpc_server_handling_seconds{grpc_service, grpc_method}` on every server
//!   ([`ServerLayer`]);
//! * `grpc_client_handled_total` and `grpc_client_handling_seconds`, with the same labels,
//!   for every call a client makes ([`record_client`], called by `client::call`; one
//!   sample per call, retries included).

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use tonic::Code;

pub const SERVER_HANDLED: &str = "grpc_server_handled_total";
pub const SERVER_HANDLING: &str = "grpc_server_handling_seconds";
pub const CLIENT_HANDLED: &str = "grpc_client_handled_total";
pub const CLIENT_HANDLING: &str = "grpc_client_handling_seconds";

/// The name of a status code as it appears in the `grpc_code` label (`InvalidArgument`).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

fn record(
    handled: &'static str,
    handling: &'static str,
    service: &str,
    method: &str,
    code: Code,
    elapsed: Duration,
) {
    platform::metrics::handle(); // the recorder must exist before the first sample
    let (service, method) = (service.to_owned(), method.to_owned());
    metrics::counter!(handled, "grpc_service" => service.clone(), "grpc_method" => method.clone(),
        "grpc_code" => code_name(code))
    .increment(1);
    metrics::histogram!(handling, "grpc_service" => service, "grpc_method" => method)
        .record(elapsed.as_secs_f64());
}

/// Records one finished call made by a client.
pub fn record_client(service: &'static str, method: &'static str, code: Code, elapsed: Duration) {
    record(
        CLIENT_HANDLED,
        CLIENT_HANDLING,
        service,
        method,
        code,
        elapsed,
    );
}

/// A tower layer recording every call a gRPC server answers. Only the services it was
/// given, and methods they have, are named in labels (anything else is `unknown`), so a
/// caller sending arbitrary paths cannot grow the number of series.
#[derive(Clone)]
pub struct ServerLayer {
    services: Arc<[&'static str]>,
}

impl ServerLayer {
    pub fn new(services: &[&'static str]) -> Self {
        Self {
            services: services.into(),
        }
    }
}

impl<S> tower::Layer<S> for ServerLayer {
    type Service = ServerMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServerMetrics {
            inner,
            services: self.services.clone(),
        }
    }
}

#[derive(Clone)]
pub struct ServerMetrics<S> {
    inner: S,
    services: Arc<[&'static str]>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, R> tower::Service<http::Request<B>> for ServerMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    R: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // gRPC paths are `/<package.Service>/<Method>`.
        let (service, method) = {
            let mut parts = request.uri().path().trim_start_matches('/').splitn(2, '/');
            let service = parts.next().unwrap_or_default();
            let method = parts.next().unwrap_or_default();
            match self.services.iter().find(|known| **known == service) {
                Some(known) => (*known, method.to_owned()),
                None => ("unknown", "unknown".to_owned()),
            }
        };
        let started = Instant::now();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            // A unary call that fails is answered "trailers-only": the status is in the
            // headers. A success carries it in the trailers, after the body, as OK.
            let code = match &response {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i32>().ok())
                    .map_or(Code::Ok, Code::from_i32),
                Err(_) => Code::Unknown,
            };
            // A method the service does not have: not worth a series of its own.
            let method = if code == Code::Unimplemented {
                "unknown"
            } else {
                &method
            };
            record(
                SERVER_HANDLED,
                SERVER_HANDLING,
                service,
                method,
                code,
                started.elapsed(),
            );
            response
        })
    }
}
