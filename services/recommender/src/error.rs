//! The recommender's one error type, and how it reaches callers of the internal API: a
//! [`platform::Problem`] (RFC 9457 `application/problem+json`, as every Kino service
//! writes it).

use axum::response::{IntoResponse, Response};
use platform::problem::{Problem, StatusCode};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input that does not parse or validate (400); nothing changed.
    #[error("{0}")]
    BadRequest(String),
    /// The recommender knows no such video (404).
    #[error("{0}")]
    NotFound(&'static str),
    /// The index is still being loaded, or a store failed (503); retry later.
    #[error("{0}")]
    Unavailable(String),
    /// A store failed while applying events (retried by the consumer, never shown).
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] sqlx::Error),
    /// The model failed on a batch.
    #[error("model: {0}")]
    Model(#[from] candle_core::Error),
}

impl Error {
    fn status_and_kind(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not-found"),
            Self::Unavailable(_) | Self::Postgres(_) | Self::Model(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, kind) = self.status_and_kind();
        let detail = match &self {
            Self::Postgres(_) | Self::Model(_) => {
                tracing::warn!(error = %self, "request failed on a dependency");
                "temporarily unavailable".to_owned()
            }
            other => other.to_string(),
        };
        Problem::new(status, kind, detail).into_response()
    }
}
