//! The delivery log of an endpoint, and replays.
//!
//! ```text
//! GET  /webhooks/endpoints/{id}/deliveries?state=failed&before=…&limit=…   newest first
//! GET  /webhooks/endpoints/{id}/deliveries/{delivery}                      with its attempts
//! POST /webhooks/endpoints/{id}/deliveries/{delivery}/replay               202
//! POST /webhooks/endpoints/{id}/replay  {"since": "2026-12-01T00:00:00Z"}   every failed one
//! ```
//!
//! A replay sends the same body under the same `webhook-id` (receivers deduplicate by
//! it), as a new attempt in the log, with the retry schedule started over.

pub mod store;

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    routing::{get, post},
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use self::store::{AttemptView, DeliveryView, ReplayRefused};
use crate::{
    Context,
    endpoints::{Listing, page_size},
    error::ApiError,
    extract::{Body, Caller, Params, QueryOf},
};

pub fn router() -> Router<Context> {
    Router::new()
        .route("/webhooks/endpoints/{id}/deliveries", get(list))
        .route("/webhooks/endpoints/{id}/deliveries/{delivery}", get(show))
        .route(
            "/webhooks/endpoints/{id}/deliveries/{delivery}/replay",
            post(replay),
        )
        .route("/webhooks/endpoints/{id}/replay", post(replay_failed))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Page {
    state: Option<String>,
    before: Option<i64>,
    limit: Option<i64>,
}

async fn list(
    State(ctx): State<Context>,
    Caller(me): Caller,
    Params(endpoint): Params<Uuid>,
    QueryOf(page): QueryOf<Page>,
) -> Result<Json<Listing<DeliveryView, i64>>, ApiError> {
    let limit = page_size(page.limit)?;
    if let Some(state) = page.state.as_deref()
        && !matches!(state, "pending" | "delivered" | "failed")
    {
        return Err(ApiError::BadRequest(
            "state is pending, delivered or failed".into(),
        ));
    }
    // An endpoint that is not the caller's has no log to show (and no empty one either).
    crate::endpoints::store::get(ctx.db.pool(), me, endpoint)
        .await?
        .ok_or(ApiError::NotFound("no such endpoint"))?;
    let mut items = store::list(
        ctx.db.pool(),
        me,
        endpoint,
        page.state.as_deref(),
        page.before,
        limit + 1,
    )
    .await?;
    let next = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|d| d.id)
    } else {
        None
    };
    Ok(Json(Listing { items, next }))
}

#[derive(Serialize)]
struct Detail {
    #[serde(flatten)]
    delivery: DeliveryView,
    attempt_log: Vec<AttemptView>,
}

async fn show(
    State(ctx): State<Context>,
    Caller(me): Caller,
    Params((endpoint, id)): Params<(Uuid, i64)>,
) -> Result<Json<Detail>, ApiError> {
    let delivery = store::get(ctx.db.pool(), me, endpoint, id)
        .await?
        .ok_or(ApiError::NotFound("no such delivery"))?;
    let attempt_log = store::attempts(ctx.db.pool(), id).await?;
    Ok(Json(Detail {
        delivery,
        attempt_log,
    }))
}

fn refused(why: ReplayRefused) -> ApiError {
    match why {
        ReplayRefused::NotFound => ApiError::NotFound("no such endpoint or delivery"),
        ReplayRefused::Disabled => {
            ApiError::Conflict("the endpoint is disabled; enable it before replaying".into())
        }
        ReplayRefused::Pending => {
            ApiError::Conflict("the delivery is pending: an attempt is already due".into())
        }
    }
}

async fn replay(
    State(ctx): State<Context>,
    Caller(me): Caller,
    Params((endpoint, id)): Params<(Uuid, i64)>,
) -> Result<StatusCode, ApiError> {
    store::replay(ctx.db.pool(), me, endpoint, id)
        .await?
        .map_err(refused)?;
    ctx.dispatcher.wake();
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplaySince {
    #[serde(with = "time::serde::rfc3339")]
    since: OffsetDateTime,
}

#[derive(Serialize)]
struct Replayed {
    replayed: u64,
}

async fn replay_failed(
    State(ctx): State<Context>,
    Caller(me): Caller,
    Params(endpoint): Params<Uuid>,
    Body(body): Body<ReplaySince>,
) -> Result<(StatusCode, Json<Replayed>), ApiError> {
    let replayed = store::replay_failed(ctx.db.pool(), me, endpoint, body.since)
        .await?
        .map_err(refused)?;
    ctx.dispatcher.wake();
    Ok((StatusCode::ACCEPTED, Json(Replayed { replayed })))
}
