//! Who is calling. The gateway's ForwardAuth hop strips client-sent identity headers and
//! sets `X-User-Id` only for a verified token, so this service trusts that header alone
//! (it is reachable only through the gateway in production).

use axum::{extract::FromRequestParts, http::request::Parts};
use uuid::Uuid;

use crate::error::ApiError;

pub const USER_ID: &str = "x-user-id";

/// The caller, who must be signed in.
pub struct Caller(pub Uuid);

/// The caller if signed in; anonymous viewers may watch public and unlisted videos.
pub struct Viewer(pub Option<Uuid>);

fn user_id(parts: &Parts) -> Option<Uuid> {
    parts
        .headers
        .get(USER_ID)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| Uuid::parse_str(v).ok())
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        user_id(parts).map(Self).ok_or(ApiError::Unauthenticated)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Viewer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(Self(user_id(parts)))
    }
}
