//! The auth service's one error type, and how each variant reaches the client: an RFC 9457
//! `application/problem+json` body with a stable `type` and a human `detail`.

use std::io::Cursor;

use rocket::{
    Request, Response,
    http::{ContentType, Header, Status},
    response::Responder,
};
use serde::Serialize;

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
    /// Too many attempts (429) with the seconds to wait.
    #[error("too many attempts; retry in {0} s")]
    Throttled(u64),
    /// A dependency failed (503): the request changed nothing and may be retried.
    #[error("temporarily unavailable")]
    Unavailable(#[source] anyhow::Error),
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        // SQLSTATE class 22 (data exception: a NUL byte in text, a value out of range) is
        // the client's input, not an outage.
        let data_exception = e
            .as_database_error()
            .and_then(|d| d.code())
            .is_some_and(|c| c.starts_with("22"));
        if data_exception {
            Self::BadRequest("the request contains a value that cannot be stored".into())
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

/// An RFC 9457 problem document.
#[derive(Debug, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
}

impl Problem {
    pub fn new(status: Status, kind: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("https://kino.dev/problems/{kind}"),
            title: status.reason().unwrap_or("Error"),
            status: status.code,
            detail: detail.into(),
        }
    }

    /// The response, with `WWW-Authenticate` on a 401 and `Retry-After` when given.
    pub fn respond<'r>(self, retry_after: Option<u64>) -> Response<'r> {
        let status = Status::from_code(self.status).unwrap_or(Status::InternalServerError);
        let body = serde_json::to_vec(&self).expect("problem serialises");
        let mut response = Response::build();
        response
            .status(status)
            .header(ContentType::new("application", "problem+json"))
            .sized_body(body.len(), Cursor::new(body));
        if status == Status::Unauthorized {
            response.header(Header::new("WWW-Authenticate", r#"Bearer realm="kino""#));
        }
        if let Some(secs) = retry_after {
            response.header(Header::new("Retry-After", secs.to_string()));
        }
        response.finalize()
    }
}

impl ApiError {
    fn problem(&self) -> Problem {
        match self {
            Self::BadRequest(d) => Problem::new(Status::BadRequest, "bad-request", d.clone()),
            Self::Invalid(d) => Problem::new(Status::UnprocessableEntity, "invalid", d.clone()),
            Self::Unauthorized(d) => Problem::new(Status::Unauthorized, "unauthorized", *d),
            Self::Forbidden(d) => Problem::new(Status::Forbidden, "forbidden", *d),
            Self::NotFound(d) => Problem::new(Status::NotFound, "not-found", *d),
            Self::Conflict(d) => Problem::new(Status::Conflict, "conflict", d.clone()),
            Self::Throttled(_) => {
                Problem::new(Status::TooManyRequests, "throttled", self.to_string())
            }
            Self::Unavailable(_) => {
                Problem::new(Status::ServiceUnavailable, "unavailable", self.to_string())
            }
        }
    }
}

impl<'r> Responder<'r, 'static> for ApiError {
    fn respond_to(self, _: &'r Request<'_>) -> rocket::response::Result<'static> {
        if let Self::Unavailable(e) = &self {
            tracing::error!(error = format!("{e:#}"), "request failed on a dependency");
        }
        let retry_after = match self {
            Self::Throttled(secs) => Some(secs),
            Self::Unavailable(_) => Some(1),
            _ => None,
        };
        Ok(self.problem().respond(retry_after))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Rocket's own errors (unparseable JSON, a body over the limit, no such route…) as
/// problem+json too, so clients see one error format.
#[rocket::catch(default)]
pub fn default_catcher(status: Status, _: &Request<'_>) -> ProblemResponse {
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
    ProblemResponse(Problem::new(status, kind, detail))
}

pub struct ProblemResponse(pub Problem);

impl<'r> Responder<'r, 'static> for ProblemResponse {
    fn respond_to(self, _: &'r Request<'_>) -> rocket::response::Result<'static> {
        Ok(self.0.respond(None))
    }
}
