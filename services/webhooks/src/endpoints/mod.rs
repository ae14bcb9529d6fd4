//! Endpoints: where a user wants their channel's events sent (or an admin, the
//! platform's), which events, and the secret they are signed with.
//!
//! ```text
//! POST   /webhooks/endpoints                 register (201, with the secret: shown once)
//! GET    /webhooks/endpoints                 the caller's endpoints (cursor pages)
//! GET    /webhooks/endpoints/{id}
//! PATCH  /webhooks/endpoints/{id}            url, description, event_types, enabled
//! DELETE /webhooks/endpoints/{id}
//! POST   /webhooks/endpoints/{id}/secret     rotate; the old secret keeps signing for
//!                                            `overlap_seconds` (default a day)
//! ```
//!
//! Only an endpoint's owner sees or changes it; anyone else gets 404, as if it did not
//! exist. Bad input is a 400 problem+json and changes nothing.

pub mod store;
pub mod url;

use std::time::Duration;

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    routing::{get, post},
};
use serde::Deserialize;
use uuid::Uuid;

use self::{
    store::{EndpointView, NewEndpoint, Scope},
    url::EndpointUrl,
};
use crate::{
    Context,
    catalog::EventType,
    error::ApiError,
    extract::{Body, Caller, Params, QueryOf},
};

/// Most endpoints one user may have.
pub const MAX_ENDPOINTS: i64 = 20;
/// Longest description, in characters.
pub const MAX_DESCRIPTION: usize = 500;
/// Longest and default overlap of a rotation.
const MAX_OVERLAP: Duration = Duration::from_secs(7 * 24 * 3600);
const DEFAULT_OVERLAP: Duration = Duration::from_secs(24 * 3600);
/// Largest page of a list.
pub const MAX_PAGE: i64 = 100;

pub fn router() -> Router<Context> {
    Router::new()
        .route("/webhooks/endpoints", post(create).get(list))
        .route(
            "/webhooks/endpoints/{id}",
            get(show).patch(update).delete(remove),
        )
        .route("/webhooks/endpoints/{id}/secret", post(rotate))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Create {
    url: String,
    #[serde(default)]
    description: String,
    event_types: Vec<String>,
    #[serde(default)]
    scope: Option<String>,
}

async fn create(
    State(ctx): State<Context>,
    Caller(me): Caller,
    Body(body): Body<Create>,
) -> Result<(StatusCode, Json<EndpointView>), ApiError> {
    let scope = match body.scope.as_deref() {
        None | Some("channel") => Scope::Channel,
        Some("platform") => Scope::Platform,
        Some(_) => return Err(ApiError::BadRequest("scope is channel or platform".into())),
    };
    if scope == Scope::Platform && !ctx.config.admins.contains(&me) {
        return Err(ApiError::Forbidden(
            "only admins may register platform-wide endpoints",
        ));
    }
    let event_types = event_types(&body.event_types)?;
    let description = description(body.description)?;
    let url = EndpointUrl::parse(&body.url, ctx.config.delivery.allow_private)
        .await
        .map_err(ApiError::BadRequest)?;
    let new = NewEndpoint {
        owner_id: me,
        scope,
        url,
        description,
        event_types,
    };
    let created = store::create(ctx.db.pool(), new, MAX_ENDPOINTS)
        .await?
        .ok_or_else(|| ApiError::Conflict(format!("at most {MAX_ENDPOINTS} endpoints per user")))?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Page {
    after: Option<Uuid>,
    limit: Option<i64>,
}

/// A page of items and the cursor of the next one (`None` on the last page).
#[derive(serde::Serialize)]
pub struct Listing<T, C> {
    pub items: Vec<T>,
    pub next: Option<C>,
}

/// `limit` within 1..=[`MAX_PAGE`], 20 by default.
pub fn page_size(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(20),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::BadRequest(format!(
            "limit is between 1 and {MAX_PAGE}"
        ))),
    }
}

async fn list(
    State(ctx): State<Context>,
    Caller(me): Caller,
    QueryOf(page): QueryOf<Page>,
) -> Result<Json<Listing<EndpointView, Uuid>>, ApiError> {
    let limit = page_size(page.limit)?;
    let mut items = store::list(ctx.db.pool(), me, page.after, limit + 1).await?;
    let next = (items.len() as i64 > limit).then(|| {
        items.truncate(limit as usize);
        items.last().map(|e| e.id)
    });
    Ok(Json(Listing {
        items,
        next: next.flatten(),
    }))
}

async fn show(
    State(ctx): State<Context>,
    Caller(me): Caller,
    Params(id): Params<Uuid>,
) -> Result<Json<EndpointView>, ApiError> {
    let endpoint = store::get(ctx.db.pool(), me, id)
        .await?
        .ok_or(ApiError::NotFound("no such endpoint"))?;
    Ok(Json(endpoint))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Update {
    url: Option<String>,
    description: Option<String>,
    event_types: Option<Vec<String>>,
    enabled: Option<bool>,
}

async fn update(
    State(ctx): State<Context>,
    Caller(me): Caller,
    Params(id): Params<Uuid>,
    Body(body): Body<Update>,
) -> Result<Json<EndpointView>, ApiError> {
    let changes = store::Changes {
        url: match body.url {
            Some(raw) => Some(
                EndpointUrl::parse(&raw, ctx.config.delivery.allow_private)
                    .await
                    .map_err(ApiError::BadRequest)?,
            ),
            None => None,
        },
        description: body.description.map(description).transpose()?,
        event_types: body.event_types.as_deref().map(event_types).transpose()?,
        enabled: body.enabled,
    };
    let endpoint = store::update(ctx.db.pool(), me, id, changes)
        .await?
        .ok_or(ApiError::NotFound("no such endpoint"))?;
    Ok(Json(endpoint))
}

async fn remove(
    State(ctx): State<Context>,
    Caller(me): Caller,
    Params(id): Params<Uuid>,
) -> Result<StatusCode, ApiError> {
    if store::delete(ctx.db.pool(), me, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("no such endpoint"))
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Rotate {
    overlap_seconds: Option<u64>,
}

async fn rotate(
    State(ctx): State<Context>,
    Caller(me): Caller,
    Params(id): Params<Uuid>,
    body: axum::body::Bytes,
) -> Result<Json<EndpointView>, ApiError> {
    // The body is optional: an empty one rotates with the default overlap.
    let body: Rotate = if body.is_empty() {
        Rotate::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?
    };
    let overlap = match body.overlap_seconds {
        None => DEFAULT_OVERLAP,
        Some(secs) if Duration::from_secs(secs) <= MAX_OVERLAP => Duration::from_secs(secs),
        Some(_) => {
            return Err(ApiError::BadRequest(format!(
                "overlap_seconds is at most {}",
                MAX_OVERLAP.as_secs()
            )));
        }
    };
    let endpoint = store::rotate(ctx.db.pool(), me, id, overlap)
        .await?
        .ok_or(ApiError::NotFound("no such endpoint"))?;
    Ok(Json(endpoint))
}

/// The event types asked for: at least one, each known, each once.
fn event_types(names: &[String]) -> Result<Vec<EventType>, ApiError> {
    if names.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "event_types names at least one of: {}",
            EventType::list()
        )));
    }
    let mut types = Vec::new();
    for name in names {
        let t = EventType::parse(name).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "unknown event type {name:?}; known: {}",
                EventType::list()
            ))
        })?;
        if !types.contains(&t) {
            types.push(t);
        }
    }
    Ok(types)
}

fn description(text: String) -> Result<String, ApiError> {
    let text = text.trim().to_owned();
    if text.chars().count() > MAX_DESCRIPTION {
        return Err(ApiError::BadRequest(format!(
            "the description is longer than {MAX_DESCRIPTION} characters"
        )));
    }
    if text.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "the description contains control characters".into(),
        ));
    }
    Ok(text)
}
