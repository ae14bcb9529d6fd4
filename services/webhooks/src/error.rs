//! The webhooks service's one error type, and how each variant reaches the client: a
//! [`platform::Problem`] (RFC 9457 `application/problem+json`, as every Kino service
//! writes it).

use axum::{
    extract::rejection::{JsonRejection, PathRejection, QueryRejection},
    response::{IntoResponse, Response},
};
use platform::problem::{Problem, StatusCode};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Input that does not parse or validate (400); nothing was changed.
    #[error("{0}")]
    BadRequest(String),
    /// No identity from the gateway (401).
    #[error("authentication required")]
    Unauthenticated,
    /// Signed in, but not allowed (403): platform-wide endpoints are for admins.
    #[error("{0}")]
    Forbidden(&'static str),
    /// Missing, or someone else's (404): other users' endpoints are indistinguishable
    /// from absent ones.
    #[error("{0}")]
    NotFound(&'static str),
    /// Over a per-user limit (409), e.g. the number of endpoints.
    #[error("{0}")]
    Conflict(String),
    /// A dependency failed (503): nothing was changed; the request may be retried.
    #[error("temporarily unavailable")]
    Unavailable(#[source] anyhow::Error),
}

impl ApiError {
    fn status_and_kind(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request"),
            Self::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not-found"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        }
    }
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

/// A body that is not the JSON expected (400, or 415 without a JSON content type), in
/// the same problem+json as every other error.
impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        Self::BadRequest(rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::BadRequest(rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::BadRequest(rejection.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind) = self.status_and_kind();
        if let Self::Unavailable(e) = &self {
            tracing::warn!(error = format!("{e:#}"), "request failed on a dependency");
        }
        Problem::new(status, kind, self.to_string()).into_response()
    }
}
