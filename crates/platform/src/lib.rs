//! What every Kino service shares, so that each service's `main` is a few lines and every
//! service looks the same from the outside:
//!
//! * [`config`]: typed configuration read from environment variables, with local defaults;
//! * [`telemetry`]: JSON logs through `tracing`;
//! * [`metrics`]: the process-wide Prometheus recorder and the HTTP request metrics;
//! * [`health`]: `/healthz` (the process) and `/readyz` (each named dependency);
//! * [`http`]: the axum plumbing (request ids, metrics, ops routes, graceful serve);
//! * [`problem`]: the one REST error body (RFC 9457 problem+json), for axum and Rocket;
//! * [`shutdown`]: SIGTERM/SIGINT turned into one cancellation token;
//! * [`rate_limit`]: per-user and per-IP abuse limits in Redis, one script call per check;
//! * [`client_ip`]: the client's address behind the gateway (`TRUSTED_PROXIES`);
//! * [`background`]: "retry until ready or shutdown" and "every N until shutdown", once;
//! * [`retention`]: tables stay bounded: old rows pruned on a schedule, in short batches;
//! * [`postgres`], [`redis`], [`mongo`], [`s3`]: store connections that tolerate a store
//!   being down at start-up and recover when it returns, with a readiness check each.
//!
//! With the `rocket` feature, [`rocket`](crate::rocket) gives the auth service the same
//! request ids, metrics and ops routes.

pub mod background;
pub mod client_ip;
pub mod config;
pub mod health;
pub mod http;
pub mod metrics;
pub mod mongo;
pub mod postgres;
pub mod problem;
pub mod rate_limit;
pub mod redis;
pub mod retention;
pub mod s3;
pub mod shutdown;
pub mod telemetry;

#[cfg(feature = "rocket")]
pub mod rocket;

pub use health::Readiness;
pub use problem::Problem;
pub use shutdown::Shutdown;
