//! The auth service's one error type, and how each variant reaches the client: a
//! [`platform::Problem`] (RFC 9457 `application/problem+json`, written as every Kino
//! service writes it).

use platform::problem::{Problem, StatusCode};
use rocket::{Request, http::Status, response::Responder};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Input that does not parse or validate (400). The detail says what is wrong.
    #[error("{0}")]
    BadRequest(String),
    /// Input that is well-formed but unacceptable (422), e.g. a too-short password.
    #[error("{0}")]
    Invalid(String),
    /// Missing, invalid, expired or revoked credentials (401, with `WWW-Authenticate`).
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Authenticated, but not allowed (403), e.g. a wrong current password.
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(&'static str),
    /// A unique value is taken (409): username or email.
    #[error("{0}")]
    Conflict(String),
    /// A mailed link's token that is unknown, expired or already used (400, type
    /// `invalid-token`): one answer for all three, and the client should offer a new link.
    #[error("{0}")]
    BadToken(&'static str),
    /// The account's email address is not verified yet, and the action needs it (403,
    /// type `email-unverified`): the client should offer to send the link again.
    #[error(
        "verify your email address first: follow the link we mailed you, or ask for a new one (POST /user/email/verification)"
    )]
    EmailUnverified,
    /// Too many attempts (429) with the seconds to wait.
    #[error("too many attempts; retry in {0} s")]
    Throttled(u64),
    /// A dependency failed (503): the request changed nothing and may be retried.
    #[error("temporarily unavailable")]
    Unavailable(#[source] anyhow::Error),
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if platform::postgres::is_data_exception(&e) {
            Self::BadRequest(platform::postgres::DATA_EXCEPTION_DETAIL.into())
        } else {
            Self::Unavailable(e.into())
        }
    }
}

impl From<redis::RedisError> for ApiError {
    fn from(e: redis::RedisError) -> Self {
        Self::Unavailable(e.into())
    }
}

impl ApiError {
    fn problem(&self) -> Problem {
        match self {
            Self::BadRequest(d) => Problem::new(StatusCode::BAD_REQUEST, "bad-request", d),
            Self::Invalid(d) => Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", d),
            Self::Unauthorized(d) => Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", *d),
            Self::Forbidden(d) => Problem::new(StatusCode::FORBIDDEN, "forbidden", *d),
            Self::NotFound(d) => Problem::new(StatusCode::NOT_FOUND, "not-found", *d),
            Self::Conflict(d) => Problem::new(StatusCode::CONFLICT, "conflict", d),
            Self::BadToken(d) => Problem::new(StatusCode::BAD_REQUEST, "invalid-token", *d),
            Self::EmailUnverified => {
                Problem::new(StatusCode::FORBIDDEN, "email-unverified", self.to_string())
            }
            Self::Throttled(secs) => {
                Problem::new(StatusCode::TOO_MANY_REQUESTS, "throttled", self.to_string())
                    .retry_after(*secs)
            }
            Self::Unavailable(_) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                self.to_string(),
            )
            .retry_after(platform::problem::UNAVAILABLE_RETRY_AFTER),
        }
    }
}

impl<'r> Responder<'r, 'static> for ApiError {
    fn respond_to(self, req: &'r Request<'_>) -> rocket::response::Result<'static> {
        if let Self::Unavailable(e) = &self {
            tracing::error!(error = format!("{e:#}"), "request failed on a dependency");
        }
        self.problem().respond_to(req)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Rocket's own errors (unparseable JSON, a body over the limit, no such route…) as
/// problem+json too, so clients see one error format.
#[rocket::catch(default)]
pub fn default_catcher(status: Status, _: &Request<'_>) -> Problem {
    problem_for(status)
}

/// The generic problem document of an error status (no request-specific detail).
pub fn problem_for(status: Status) -> Problem {
    let detail = match status.code {
        400 => "the request body is not valid JSON for this endpoint",
        401 => "a valid access token is required (Authorization: Bearer …)",
        404 => "no such endpoint",
        413 => "the request body is too large",
        415 => "send the body as application/json",
        422 => "the request body is missing a field or has a field of the wrong type",
        503 => "a dependency is unavailable; retry shortly",
        _ => status.reason().unwrap_or("error"),
    };
    let kind = match status.code {
        413 => "too-large",
        401 => "unauthorized",
        404 => "not-found",
        s if s < 500 => "bad-request",
        _ => "internal",
    };
    let status = StatusCode::from_u16(status.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Problem::new(status, kind, detail)
}
