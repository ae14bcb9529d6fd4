//! The Rocket side of the shared plumbing, for the auth service: the same request ids,
//! request logs, per-route metrics and ops routes the axum services get from [`crate::http`].

use std::time::{Duration, Instant};

use rocket::{
    Build, Orbit, Request, Response, Rocket, State,
    fairing::{Fairing, Info, Kind},
    http::{ContentType, Header, Status},
    request::{FromRequest, Outcome},
    serde::json::Json,
};

use crate::{Readiness, Shutdown, http::is_sane_request_id};

/// The request id of the current request (request guard): the caller's `X-Request-Id` when
/// sane, otherwise a fresh UUIDv7. Echoed on the response.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

struct Started(Instant);

fn request_id<'r>(req: &'r Request<'_>) -> &'r RequestId {
    req.local_cache(|| {
        let id = req
            .headers()
            .get_one("X-Request-Id")
            .filter(|id| is_sane_request_id(id.as_bytes()))
            .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
        RequestId(id)
    })
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for RequestId {
    type Error = std::convert::Infallible;
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(request_id(req).clone())
    }
}

/// Request id, JSON request log line and metrics for every request.
pub struct Observability;

#[rocket::async_trait]
impl Fairing for Observability {
    fn info(&self) -> Info {
        Info {
            name: "request ids, logs and metrics",
            kind: Kind::Request | Kind::Response,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut rocket::Data<'_>) {
        req.local_cache(|| Started(Instant::now()));
        request_id(req);
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let elapsed = req.local_cache(|| Started(Instant::now())).0.elapsed();
        let id = request_id(req).0.clone();
        // The route template (`/user/profile`), never the raw path: bounded label values.
        let route = req.route().map_or_else(
            || "unmatched".to_owned(),
            |r| r.uri.origin.path().to_string(),
        );
        let status = res.status().code;
        crate::metrics::record_http(req.method().as_str(), &route, status, elapsed);
        tracing::info!(
            request_id = %id,
            method = %req.method(),
            path = %req.uri().path(),
            route,
            status,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "request"
        );
        res.set_header(Header::new("X-Request-Id", id));
    }
}

#[rocket::get("/healthz")]
fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

#[rocket::get("/readyz")]
async fn readyz(readiness: &State<Readiness>) -> (Status, Json<crate::health::Report>) {
    let report = readiness.report().await;
    let status = if report.is_ready() {
        Status::Ok
    } else {
        Status::ServiceUnavailable
    };
    (status, Json(report))
}

/// The public form under the service's prefix: the status code and `{"status":…}` only.
#[rocket::get("/readyz")]
async fn public_readyz(readiness: &State<Readiness>) -> (Status, Json<serde_json::Value>) {
    let report = readiness.report().await;
    let status = if report.is_ready() {
        Status::Ok
    } else {
        Status::ServiceUnavailable
    };
    (status, Json(report.summary()))
}

#[rocket::get("/metrics")]
fn metrics() -> (ContentType, String) {
    (
        ContentType::new("text", "plain").with_params(("version", "0.0.4")),
        crate::metrics::render(),
    )
}

/// Mounts `/healthz`, `/readyz`, `/metrics` at the root and the public two under `prefix`
/// (see [`public_ops_routes`]), installs the
/// observability fairing, and hands shutdown to Kino's [`Shutdown`] (Rocket's own signal
/// handling is turned off so that one token governs the whole process).
pub fn install(
    rocket: Rocket<Build>,
    prefix: &str,
    readiness: Readiness,
    shutdown: Shutdown,
    grace: Duration,
) -> Rocket<Build> {
    let mut config: rocket::Config = rocket.figment().extract().unwrap_or_default();
    config.shutdown.ctrlc = false;
    #[cfg(unix)]
    config.shutdown.signals.clear();
    config.shutdown.grace = u32::try_from(grace.as_secs()).unwrap_or(u32::MAX).max(1);
    config.shutdown.mercy = 2;
    // Logs go through tracing (JSON); Rocket's own coloured banner would corrupt them.
    config.log_level = rocket::config::LogLevel::Off;
    config.cli_colors = false;

    rocket
        .configure(config)
        .manage(readiness)
        .attach(Observability)
        .attach(rocket::fairing::AdHoc::on_liftoff("kino shutdown", move |rocket: &Rocket<Orbit>| {
            Box::pin(async move {
                let handle = rocket.shutdown();
                tracing::info!(address = %rocket.config().address, port = rocket.config().port, "listening");
                tokio::spawn(async move {
                    shutdown.triggered().await;
                    handle.notify();
                });
            })
        }))
        .mount("/", rocket::routes![healthz, readyz, metrics])
        .mount(prefix, public_ops_routes())
}

/// `/healthz` and the bare `/readyz`, to mount under further public prefixes (the gateway
/// routes these; metrics and the dependency report stay at the root, which it does not).
/// Needs the [`Readiness`] that [`install`] manages.
pub fn public_ops_routes() -> Vec<rocket::Route> {
    rocket::routes![healthz, public_readyz]
}
