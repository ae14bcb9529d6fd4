//! Liveness and readiness.
//!
//! `/healthz` answers 200 while the process can serve HTTP at all: orchestrators restart a
//! process that fails it, so it must never depend on anything outside the process.
//!
//! `/readyz` runs every dependency check of the service concurrently, each bounded by a
//! timeout, and answers 200 only when all are up; otherwise 503. The body names every
//! dependency so an operator sees at once which one is down:
//!
//! ```json
//! {"status":"unready","checks":{"postgres":{"status":"up","latency_ms":0.8},
//!  "redis":{"status":"down","error":"connection refused","latency_ms":0.3}}}
//! ```
//!
//! Checks are re-run on every call (no caching), so readiness comes back by itself as soon
//! as a dependency does.
//!
//! That report is for probes and operators, who call the pod directly (`/readyz` at the
//! root). What the gateway routes (`/media/readyz`) answers the same status code with a
//! bare body ([`Report::summary`]): which stores a service uses, how fast they answer and
//! their error messages are not for the public.

use std::{collections::BTreeMap, future::Future, pin::Pin, sync::Arc, time::Duration};

use serde::Serialize;
use tokio::time::Instant;

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type CheckFn = dyn Fn() -> CheckFuture + Send + Sync;

/// How long one dependency check may take before it counts as down.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// A dependency that can tell whether it is usable right now. Store handles implement it
/// ([`crate::postgres::Postgres`], Redis, MongoDB, S3, RabbitMQ), so a service lists its
/// dependencies with [`Readiness::add`].
pub trait Check: Send + Sync + 'static {
    fn check(&self) -> impl Future<Output = Result<(), String>> + Send;
}

impl<T: Check> Check for Arc<T> {
    fn check(&self) -> impl Future<Output = Result<(), String>> + Send {
        T::check(self)
    }
}

/// The named dependency checks of one service. Cheap to clone.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(&'static str, Arc<CheckFn>)>,
}

#[derive(Debug, Serialize, PartialEq, Eq, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Up,
    Down,
}

#[derive(Debug, Serialize)]
pub struct CheckResult {
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub latency_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    /// `"ready"` or `"unready"`.
    pub status: &'static str,
    pub checks: BTreeMap<&'static str, CheckResult>,
}

impl Report {
    /// The public form: the status alone, `{"status":"ready"}` or `{"status":"unready"}`.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({ "status": self.status })
    }

    pub fn is_ready(&self) -> bool {
        self.status == "ready"
    }
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a dependency check. `check` returns `Err(reason)` when the dependency is unusable.
    pub fn with<F, Fut>(mut self, name: &'static str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.checks
            .push((name, Arc::new(move || Box::pin(check()) as CheckFuture)));
        self
    }

    /// Adds a dependency by its handle.
    pub fn add(self, name: &'static str, dependency: impl Check + Clone) -> Self {
        self.with(name, move || {
            let dependency = dependency.clone();
            async move { dependency.check().await }
        })
    }

    /// Runs every check concurrently.
    pub async fn report(&self) -> Report {
        let results = futures::future::join_all(self.checks.iter().map(|(name, check)| {
            let fut = check();
            async move {
                let started = Instant::now();
                let outcome = match tokio::time::timeout(CHECK_TIMEOUT, fut).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
                };
                let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
                let result = match outcome {
                    Ok(()) => CheckResult {
                        status: Status::Up,
                        error: None,
                        latency_ms,
                    },
                    Err(error) => {
                        tracing::warn!(dependency = name, %error, "readiness check failed");
                        CheckResult {
                            status: Status::Down,
                            error: Some(error),
                            latency_ms,
                        }
                    }
                };
                (*name, result)
            }
        }))
        .await;
        let ready = results.iter().all(|(_, r)| r.status == Status::Up);
        Report {
            status: if ready { "ready" } else { "unready" },
            checks: results.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_failing_check_makes_the_service_unready_and_is_named() {
        let readiness = Readiness::new()
            .with("good", || async { Ok(()) })
            .with("bad", || async { Err("refused".to_owned()) });
        let report = readiness.report().await;
        assert!(!report.is_ready());
        assert_eq!(report.checks["good"].status, Status::Up);
        assert_eq!(report.checks["bad"].status, Status::Down);
        assert_eq!(report.checks["bad"].error.as_deref(), Some("refused"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_check_counts_as_down_after_the_timeout() {
        let readiness = Readiness::new().with("slow", std::future::pending);
        let report = readiness.report().await;
        assert_eq!(report.checks["slow"].status, Status::Down);
        assert!(
            report.checks["slow"]
                .error
                .as_deref()
                .unwrap()
                .contains("no answer")
        );
    }

    #[tokio::test]
    async fn no_checks_means_ready() {
        assert!(Readiness::new().report().await.is_ready());
    }
}
