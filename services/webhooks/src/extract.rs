//! Request extractors whose failures are this service's errors (problem+json), not
//! axum's plain-text rejections: who is calling (the gateway's identity headers), and
//! JSON bodies, paths and queries.

use axum::{
    Json,
    extract::{FromRequest, FromRequestParts, Path, Query, Request},
    http::request::Parts,
};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::ApiError;

/// The caller, who must be signed in (every route here is someone's own).
///
/// As in every service ([`::identity::edge`]): no `X-User-Id` is anonymous, a malformed
/// one is refused with 400. Only the gateway reaches this service in production, and it
/// strips client-sent identity headers.
pub struct Caller(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        ::identity::edge::caller(&parts.headers)
            .map_err(|e| ApiError::BadRequest(e.to_string()))?
            .map(Self)
            .ok_or(ApiError::Unauthenticated)
    }
}

/// A JSON body of `T`.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = Json::<T>::from_request(req, state).await?;
        Ok(Self(value))
    }
}

/// Path parameters of `T`.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(value) = Path::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// Query parameters of `T`.
pub struct QueryOf<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryOf<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(value) = Query::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}
