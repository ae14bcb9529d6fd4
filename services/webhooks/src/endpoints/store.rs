//! The `endpoints` table. Every query that reads or changes one endpoint is keyed by its
//! owner too, so an owner check cannot be forgotten: another user's endpoint is simply
//! not found.

use std::time::Duration;

use serde::Serialize;
use sqlx::{FromRow, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use super::url::EndpointUrl;
use crate::{catalog::EventType, delivery::signature::Secret};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The owner's own videos and account.
    Channel,
    /// Every channel's events (admins).
    Platform,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Channel => "channel",
            Self::Platform => "platform",
        }
    }
}

/// An endpoint as its owner sees it. `secret` is present only in the answers that made
/// it (registration, rotation): it is shown once.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct EndpointView {
    pub id: Uuid,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub scope: String,
    pub enabled: bool,
    /// Why it was disabled when that was not its owner's doing (a 410, failing for days).
    pub disabled_reason: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub failing_since: Option<OffsetDateTime>,
    /// Until when the previous secret still signs (after a rotation).
    #[serde(with = "time::serde::rfc3339::option")]
    pub previous_secret_expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[sqlx(skip)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

const COLUMNS: &str = "id, url, description, event_types, scope, enabled, disabled_reason, \
    failing_since, CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END \
    AS previous_secret_expires_at, created_at, updated_at";

pub struct NewEndpoint {
    pub owner_id: Uuid,
    pub scope: Scope,
    pub url: EndpointUrl,
    pub description: String,
    pub event_types: Vec<EventType>,
}

fn names(types: &[EventType]) -> Vec<&'static str> {
    types.iter().map(|t| t.as_str()).collect()
}

/// Registers an endpoint with a new secret, unless its owner already has `max`.
/// (Two concurrent registrations may both pass the count; the limit is against abuse,
/// not an invariant.)
pub async fn create(
    pool: &PgPool,
    new: NewEndpoint,
    max: i64,
) -> Result<Option<EndpointView>, sqlx::Error> {
    let secret = Secret::generate();
    let row: Option<EndpointView> = sqlx::query_as(&format!(
        "INSERT INTO endpoints (id, owner_id, scope, url, description, event_types, secret)
         SELECT $1, $2, $3, $4, $5, $6, $7
         WHERE (SELECT count(*) FROM endpoints WHERE owner_id = $2) < $8
         RETURNING {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(new.owner_id)
    .bind(new.scope.as_str())
    .bind(new.url.as_str())
    .bind(&new.description)
    .bind(names(&new.event_types))
    .bind(secret.as_bytes())
    .bind(max)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|e| EndpointView {
        secret: Some(secret.reveal()),
        ..e
    }))
}

pub async fn list(
    pool: &PgPool,
    owner: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<EndpointView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM endpoints WHERE owner_id = $1 AND ($2::uuid IS NULL OR id > $2)
         ORDER BY id LIMIT $3"
    ))
    .bind(owner)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn get(
    pool: &PgPool,
    owner: Uuid,
    id: Uuid,
) -> Result<Option<EndpointView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM endpoints WHERE owner_id = $1 AND id = $2"
    ))
    .bind(owner)
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// What a PATCH changes; `None` leaves a field alone.
pub struct Changes {
    pub url: Option<EndpointUrl>,
    pub description: Option<String>,
    pub event_types: Option<Vec<EventType>>,
    pub enabled: Option<bool>,
}

/// Applies `changes`. Enabling an endpoint clears why it was disabled and its failure
/// streak (its owner says it is fixed); disabling it settles its pending deliveries as
/// failed (they can be replayed once it is enabled again).
pub async fn update(
    pool: &PgPool,
    owner: Uuid,
    id: Uuid,
    changes: Changes,
) -> Result<Option<EndpointView>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let row: Option<EndpointView> = sqlx::query_as(&format!(
        "UPDATE endpoints SET
             url = COALESCE($3::text, url),
             description = COALESCE($4::text, description),
             event_types = COALESCE($5::text[], event_types),
             enabled = COALESCE($6::boolean, enabled),
             disabled_reason = CASE WHEN $6::boolean IS NULL THEN disabled_reason END,
             failing_since = CASE WHEN $6::boolean THEN NULL ELSE failing_since END,
             updated_at = now()
         WHERE owner_id = $1 AND id = $2
         RETURNING {COLUMNS}"
    ))
    .bind(owner)
    .bind(id)
    .bind(changes.url.as_ref().map(EndpointUrl::as_str))
    .bind(changes.description)
    .bind(changes.event_types.as_deref().map(names))
    .bind(changes.enabled)
    .fetch_optional(&mut *tx)
    .await?;
    if changes.enabled == Some(false) && row.is_some() {
        crate::deliveries::store::fail_pending(&mut tx, id, "the endpoint was disabled").await?;
    }
    tx.commit().await?;
    Ok(row)
}

pub async fn delete(pool: &PgPool, owner: Uuid, id: Uuid) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query("DELETE FROM endpoints WHERE owner_id = $1 AND id = $2")
        .bind(owner)
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected();
    Ok(deleted == 1)
}

/// A new secret; the current one becomes the previous and keeps signing for `overlap`.
pub async fn rotate(
    pool: &PgPool,
    owner: Uuid,
    id: Uuid,
    overlap: Duration,
) -> Result<Option<EndpointView>, sqlx::Error> {
    let secret = Secret::generate();
    let row: Option<EndpointView> = sqlx::query_as(&format!(
        "UPDATE endpoints SET
             previous_secret = secret,
             previous_secret_expires_at = now() + $4 * interval '1 second',
             secret = $3,
             updated_at = now()
         WHERE owner_id = $1 AND id = $2
         RETURNING {COLUMNS}"
    ))
    .bind(owner)
    .bind(id)
    .bind(secret.as_bytes())
    .bind(overlap.as_secs_f64())
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|e| EndpointView {
        secret: Some(secret.reveal()),
        ..e
    }))
}
