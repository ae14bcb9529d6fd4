//! The media service's one error type, and how it reaches GraphQL clients: a message meant
//! for people and a stable `extensions.code` meant for programs. Internal failures are
//! logged with their cause and reported as `INTERNAL` without it, so nothing about the
//! stores leaks to clients.

use async_graphql::ErrorExtensions;

///
/// Deliberately not `Display`: async-graphql converts anything `Display` into an error
/// without a code (and with the raw message, which for a store error would leak
/// internals). Store errors must go through `Error::from` (`.map_err(Error::from)?`).
#[derive(Debug)]
pub enum Error {
    /// The operation needs a signed-in viewer.
    Unauthenticated,
    /// Signed in, but not allowed (not the owner or author).
    Forbidden(&'static str),
    NotFound(&'static str),
    /// Input that does not validate; the message says what is wrong.
    BadInput(String),
    /// Over an abuse limit (crate::rate_limits), or too much is waiting to be published:
    /// the client should slow down and retry after `retry_after` seconds
    /// (`extensions.retryAfter`).
    RateLimited {
        retry_after: u64,
    },
    /// A service this answer depends on (the recommender, Redis failing over) is down;
    /// retry in `platform::problem::UNAVAILABLE_RETRY_AFTER` seconds (`extensions.retryAfter`).
    Unavailable(&'static str),
    /// A store failed. The request may be retried.
    Internal(anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::BadInput(_) => "BAD_USER_INPUT",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::Unavailable(_) => "UNAVAILABLE",
            Self::Internal(_) => "INTERNAL",
        }
    }

    /// What the client reads.
    pub fn message(&self) -> String {
        match self {
            Self::Unauthenticated => "sign in to do this".into(),
            Self::Forbidden(m) | Self::NotFound(m) | Self::Unavailable(m) => (*m).into(),
            Self::BadInput(m) => m.clone(),
            Self::RateLimited { retry_after } => {
                format!("too many requests; retry in {retry_after} s")
            }
            Self::Internal(_) => "internal error".into(),
        }
    }

    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::BadInput(message.into())
    }
}

impl From<Error> for async_graphql::Error {
    fn from(e: Error) -> Self {
        if let Error::Internal(cause) = &e {
            tracing::error!(error = ?cause, "request failed");
        }
        let code = e.code();
        let retry_after = match &e {
            Error::RateLimited { retry_after } => Some(*retry_after),
            Error::Unavailable(_) => Some(platform::problem::UNAVAILABLE_RETRY_AFTER),
            _ => None,
        };
        async_graphql::Error::new(e.message()).extend_with(|_, ext| {
            ext.set("code", code);
            if let Some(secs) = retry_after {
                ext.set("retryAfter", secs);
            }
        })
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        if platform::postgres::is_data_exception(&e) {
            Self::BadInput(platform::postgres::DATA_EXCEPTION_DETAIL.into())
        } else {
            Self::Internal(e.into())
        }
    }
}

impl From<mongodb::error::Error> for Error {
    fn from(e: mongodb::error::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl From<redis::RedisError> for Error {
    /// Redis down or failing over (a cluster's primary lost, until its replica is
    /// promoted) is UNAVAILABLE, which clients retry; anything else is a bug of ours.
    fn from(e: redis::RedisError) -> Self {
        if platform::redis::is_unavailable(&e) {
            tracing::warn!(error = %e, "Redis unavailable");
            Self::Unavailable("a store is briefly unavailable; retry in a moment")
        } else {
            Self::Internal(e.into())
        }
    }
}
