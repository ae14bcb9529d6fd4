//! The video service's one error type, and how each variant reaches the client: a
//! [`platform::Problem`] (RFC 9457 `application/problem+json`, written as every Kino
//! service writes it).

use axum::response::{IntoResponse, Response};
use platform::problem::{HeaderName, HeaderValue, Problem, StatusCode};

use crate::tus::TUS_VERSION;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Input that does not parse or validate (400).
    #[error("{0}")]
    BadRequest(String),
    /// No identity from the gateway (401).
    #[error("authentication required")]
    Unauthenticated,
    /// Missing, or not visible to this caller (404): other people's private videos and
    /// uploads are indistinguishable from absent ones.
    #[error("{0}")]
    NotFound(&'static str),
    /// The upload expired and was removed (410).
    #[error("the upload expired")]
    Gone,
    /// The request does not match the resource's state (409), e.g. a tus offset mismatch.
    #[error("{0}")]
    Conflict(String),
    /// Another request is writing this upload right now (423).
    #[error("another request is writing this upload; retry shortly")]
    Locked,
    /// More bytes than declared or allowed (413).
    #[error("{0}")]
    TooLarge(String),
    /// The upload would take the user past their storage quota (413; crate::limits).
    #[error("{0}")]
    QuotaExceeded(String),
    /// The user has as many unfinished uploads as allowed at once (403; crate::limits).
    #[error("{0}")]
    TooManyUploads(String),
    /// A signed playback URL whose token does not open this video (403: altered, made for
    /// another video, expired, or its viewer may no longer see the video).
    #[error("{0}")]
    Forbidden(String),
    /// Over a creation rate limit (429) with the seconds to wait (crate::limits).
    #[error("too many uploads created; retry in {0} s")]
    RateLimited(u64),
    /// A tus request without `Tus-Resumable: 1.0.0` (412).
    #[error("unsupported tus version; this server speaks {TUS_VERSION}")]
    TusVersion,
    /// Wrong `Content-Type` for a tus PATCH (415).
    #[error("{0}")]
    UnsupportedMediaType(&'static str),
    /// A `Range` outside the object (416).
    #[error("the requested range is not satisfiable")]
    RangeNotSatisfiable,
    /// A dependency failed (503, `Retry-After: 1`): nothing was acknowledged; the request
    /// may be retried.
    #[error("temporarily unavailable")]
    Unavailable(#[source] anyhow::Error),
}

impl ApiError {
    pub fn unavailable(e: impl Into<anyhow::Error>) -> Self {
        Self::Unavailable(e.into())
    }

    /// An S3 failure, with the SDK's whole error chain in the log.
    pub fn storage(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable(anyhow::anyhow!(
            aws_sdk_s3::error::DisplayErrorContext(e).to_string()
        ))
    }

    fn status_and_kind(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request"),
            Self::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not-found"),
            Self::Gone => (StatusCode::GONE, "upload-expired"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::Locked => (StatusCode::LOCKED, "upload-locked"),
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too-large"),
            Self::QuotaExceeded(_) => (StatusCode::PAYLOAD_TOO_LARGE, "quota-exceeded"),
            Self::TooManyUploads(_) => (StatusCode::FORBIDDEN, "too-many-uploads"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "playback-forbidden"),
            Self::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate-limited"),
            Self::TusVersion => (StatusCode::PRECONDITION_FAILED, "tus-version"),
            Self::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type")
            }
            Self::RangeNotSatisfiable => (StatusCode::RANGE_NOT_SATISFIABLE, "range"),
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind) = self.status_and_kind();
        if let Self::Unavailable(e) = &self {
            tracing::warn!(error = format!("{e:#}"), "request failed on a dependency");
        }
        let problem = Problem::new(status, kind, self.to_string());
        let problem = match self {
            Self::TusVersion => problem.header(
                HeaderName::from_static("tus-version"),
                HeaderValue::from_static(TUS_VERSION),
            ),
            Self::Locked => problem.retry_after(1),
            Self::Unavailable(_) => problem.retry_after(platform::problem::UNAVAILABLE_RETRY_AFTER),
            Self::RateLimited(secs) => problem.retry_after(secs),
            _ => problem,
        };
        problem.into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_dependency_is_a_503_that_says_when_to_retry() {
        let response = ApiError::unavailable(anyhow::anyhow!("S3 down")).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[axum::http::header::RETRY_AFTER], "1");
    }
}
