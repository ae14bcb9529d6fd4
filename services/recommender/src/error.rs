//! The recommender's one error type, and how it reaches callers of the internal API: an
//! RFC 9457 `application/problem+json` body with a stable `type` and a human `detail`.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

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

#[derive(Serialize)]
struct Problem {
    #[serde(rename = "type")]
    kind: String,
    title: &'static str,
    status: u16,
    detail: String,
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
        let problem = Problem {
            kind: format!("https://kino.dev/problems/{kind}"),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail,
        };
        let mut response = (status, Json(problem)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}
