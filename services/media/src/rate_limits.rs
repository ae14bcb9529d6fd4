//! Abuse limits on the mutations that create things: comments, likes, channel
//! subscriptions. Each is limited per user and per client IP (the IP limit is the higher
//! one: many users may share an address), counted in Redis by `platform::rate_limit`, so
//! every replica enforces the same budget. A refused mutation answers `RATE_LIMITED` with
//! `extensions.retryAfter` (seconds) and writes nothing: the check runs before any store
//! is touched.
//!
//! Taking back (unlike, unsubscribe) and editing or deleting one's own comment are not
//! limited: they create nothing, and a like/unlike loop is bounded by the like limit.

use async_graphql::Context as GqlContext;
use platform::{
    client_ip::ClientIp,
    config::ConfigError,
    rate_limit::{self, Decision, Rate, Subject},
};
use uuid::Uuid;

use crate::{context::AppContext, error::Error};

/// What is limited, one budget each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Comment,
    Like,
    Subscribe,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Self::Comment => "comment",
            Self::Like => "like",
            Self::Subscribe => "subscribe",
        }
    }
}

/// A per-user and a per-IP rate (`None`: off).
#[derive(Debug, Clone, Copy)]
pub struct PerSubject {
    pub user: Option<Rate>,
    pub ip: Option<Rate>,
}

/// `RATE_LIMIT_{COMMENT,LIKE,SUBSCRIBE}_{USER,IP}`: `<count>/<period>` or `off`.
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    pub comment: PerSubject,
    pub like: PerSubject,
    pub subscribe: PerSubject,
}

impl Rates {
    pub fn from_env() -> Result<Self, ConfigError> {
        let per = |action: &str, user: &str, ip: &str| -> Result<PerSubject, ConfigError> {
            Ok(PerSubject {
                user: rate_limit::rate(&format!("RATE_LIMIT_{action}_USER"), user)?,
                ip: rate_limit::rate(&format!("RATE_LIMIT_{action}_IP"), ip)?,
            })
        };
        // Per user: far above what a person types or clicks in a minute, far below what
        // a script does. Per IP: five such people behind one address.
        Ok(Self {
            comment: per("COMMENT", "20/1m", "100/1m")?,
            like: per("LIKE", "60/1m", "300/1m")?,
            subscribe: per("SUBSCRIBE", "30/1m", "150/1m")?,
        })
    }

    /// The same rate for everything (tests that must never trip a limit).
    pub fn all(rate: Option<Rate>) -> Self {
        let each = PerSubject {
            user: rate,
            ip: rate,
        };
        Self {
            comment: each,
            like: each,
            subscribe: each,
        }
    }

    pub fn get(&self, action: Action) -> PerSubject {
        match action {
            Action::Comment => self.comment,
            Action::Like => self.like,
            Action::Subscribe => self.subscribe,
        }
    }
}

/// Counts one `action` by `user` (and the request's client IP, when it came over HTTP;
/// WebSocket operations are counted per user only). `RATE_LIMITED` when over a limit.
pub async fn admit(ctx: &GqlContext<'_>, user: Uuid, action: Action) -> Result<(), Error> {
    let app = AppContext::get(ctx);
    let rates = app.config.rates.get(action);
    let mut checks = vec![(Subject::User(user), rates.user)];
    if let Some(ClientIp(ip)) = ctx.data_opt::<ClientIp>() {
        checks.push((Subject::Ip(*ip), rates.ip));
    }
    match app.limiter.check_all(action.name(), &checks).await? {
        Decision::Allowed => Ok(()),
        limited => {
            metrics::counter!("media_rate_limited_total", "action" => action.name()).increment(1);
            Err(Error::RateLimited {
                retry_after: limited.retry_after_secs().unwrap_or(1),
            })
        }
    }
}
