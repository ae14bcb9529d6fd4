//! Who is calling: the gateway's identity headers, read as every service reads them
//! ([`::identity::edge`]: no header is an anonymous caller; a malformed one is refused with
//! 400, never taken for anonymous). This service is reachable only through the gateway in
//! production, which strips client-sent identity headers.

use axum::{extract::FromRequestParts, http::request::Parts};
use uuid::Uuid;

use crate::error::ApiError;

/// The caller, who must be signed in.
pub struct Caller(pub Uuid);

/// The caller if signed in; anonymous viewers may watch public and unlisted videos.
pub struct Viewer(pub Option<Uuid>);

fn user_id(parts: &Parts) -> Result<Option<Uuid>, ApiError> {
    ::identity::edge::caller(&parts.headers).map_err(|e| ApiError::BadRequest(e.to_string()))
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        user_id(parts)?.map(Self).ok_or(ApiError::Unauthenticated)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Viewer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        user_id(parts).map(Self)
    }
}
