//! The webhooks service's configuration; every variable has a local default.

use std::{collections::HashSet, time::Duration};

use platform::{
    config::{self, ConfigError, HttpConfig, var},
    postgres::PostgresConfig,
};
use uuid::Uuid;

use crate::delivery::schedule::RetrySchedule;

#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpConfig,
    pub postgres: PostgresConfig,
    pub amqp_url: String,
    /// `QUEUE_PREFIX`: this stack's share of the broker (events::Namespace): the routing
    /// keys its queue binds and the queue's name. Empty in production.
    pub queue_prefix: String,
    /// `QUEUE_EXPIRES_SECS`: how long the (prefixed) queue may stay unused (tests).
    pub queue_expires: Option<Duration>,
    /// `WEBHOOK_ADMINS`: comma-separated user ids who may register platform-wide
    /// endpoints (every channel's events, every account's deletion). Empty by default.
    pub admins: HashSet<Uuid>,
    pub delivery: DeliveryConfig,
    /// `WEBHOOK_LOG_RETENTION_SECS`: how long settled deliveries (and their attempts and
    /// messages) stay in the log (default 30 days).
    pub log_retention: Duration,
    pub prune: platform::retention::PruneConfig,
}

/// How deliveries are made.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// `WEBHOOK_ALLOW_PRIVATE`: deliver to loopback, private, link-local and other
    /// non-public addresses too (local testing only; default false).
    pub allow_private: bool,
    /// `WEBHOOK_TIMEOUT_SECS`: the most one attempt may take, connect to last byte read.
    pub timeout: Duration,
    /// `WEBHOOK_RETRY_SCHEDULE`: the pauses before each retry, e.g. `5s,5m,30m,2h,5h,10h,10h`
    /// (the default: 8 attempts over about 28 hours). Each pause gets ±20 % jitter.
    pub schedule: RetrySchedule,
    /// `WEBHOOK_DISABLE_AFTER_SECS`: an endpoint whose deliveries have failed without a
    /// success in between for this long is disabled when one more exhausts its retries
    /// (default 5 days).
    pub disable_after: Duration,
    /// `WEBHOOK_CONCURRENCY`: attempts in flight in this process, over all endpoints.
    pub concurrency: usize,
    /// `WEBHOOK_ENDPOINT_CONCURRENCY`: attempts in flight to one endpoint from this
    /// process, so a slow endpoint holds at most this many of the slots above.
    pub endpoint_concurrency: usize,
    /// `WEBHOOK_POLL_MILLIS`: how often due retries are looked for when nothing woke the
    /// dispatcher (new deliveries from this process wake it at once).
    pub poll: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            allow_private: false,
            timeout: Duration::from_secs(10),
            schedule: RetrySchedule::default(),
            disable_after: Duration::from_secs(5 * 24 * 3600),
            concurrency: 256,
            endpoint_concurrency: 16,
            poll: Duration::from_millis(250),
        }
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let defaults = DeliveryConfig::default();
        let delivery = DeliveryConfig {
            allow_private: var("WEBHOOK_ALLOW_PRIVATE", "false")?,
            timeout: config::secs("WEBHOOK_TIMEOUT_SECS", "10")?,
            schedule: var("WEBHOOK_RETRY_SCHEDULE", &defaults.schedule.to_string())?,
            disable_after: config::secs("WEBHOOK_DISABLE_AFTER_SECS", "432000")?,
            concurrency: at_least_one("WEBHOOK_CONCURRENCY", "256")?,
            endpoint_concurrency: at_least_one("WEBHOOK_ENDPOINT_CONCURRENCY", "16")?,
            poll: Duration::from_millis(var("WEBHOOK_POLL_MILLIS", "250")?),
        };
        Ok(Self {
            http: HttpConfig::from_env("0.0.0.0:8087")?,
            postgres: PostgresConfig::from_env("webhooks")?,
            amqp_url: config::amqp_url()?,
            queue_prefix: var("QUEUE_PREFIX", "")?,
            queue_expires: config::var_opt::<f64>("QUEUE_EXPIRES_SECS")?
                .map(Duration::from_secs_f64),
            admins: admins(&var::<String>("WEBHOOK_ADMINS", "")?)?,
            delivery,
            log_retention: config::secs("WEBHOOK_LOG_RETENTION_SECS", "2592000")?,
            prune: platform::retention::PruneConfig::from_env()?,
        })
    }
}

fn at_least_one(name: &str, default: &str) -> Result<usize, ConfigError> {
    let value: usize = var(name, default)?;
    if value == 0 {
        return Err(ConfigError {
            name: name.into(),
            value: value.to_string(),
            reason: "must be at least 1".into(),
        });
    }
    Ok(value)
}

fn admins(list: &str) -> Result<HashSet<Uuid>, ConfigError> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            Uuid::parse_str(s).map_err(|e| ConfigError {
                name: "WEBHOOK_ADMINS".into(),
                value: s.into(),
                reason: e.to_string(),
            })
        })
        .collect()
}
