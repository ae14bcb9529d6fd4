//! Filling the catalogue from `video.*` events.
//!
//! Each event is applied in one transaction together with its id in `processed_events`, so
//! a redelivered event finds its id there and changes nothing. Events may also arrive out
//! of order (different publishers, retries): any event may create the row (they all carry
//! the owner), a status only moves up in rank, the uploader's metadata is taken from
//! `video.created` only while the row has none, and a deleted video stays deleted.

use events::{
    consumer::{self, Outcome},
    topology::VIDEO_EVENTS,
    video::{VideoCreated, VideoDeleted, VideoFailed, VideoReady, VideoStatus, VideoUploaded},
};
use serde::de::DeserializeOwned;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Context;

/// The events this consumer applies; the others (progress, updated) are not bound.
const KEYS: [&str; 5] = [
    "video.created",
    "video.uploaded",
    "video.ready",
    "video.failed",
    "video.deleted",
];

/// Consumes media's `media.catalogue` queue until shutdown.
pub fn spawn(ctx: &Context, shutdown: impl Future<Output = ()> + Send + 'static) {
    let mut spec = ctx.config.queue("media.catalogue");
    for key in KEYS {
        spec = spec.bind(VIDEO_EVENTS, key);
    }
    let pool = ctx.db.pool().clone();
    consumer::spawn(ctx.rabbit.clone(), spec, 32, shutdown, move |delivery| {
        let pool = pool.clone();
        async move { handle(&pool, &delivery.data).await }
    });
}

/// Dispatches on the envelope's `type` (not the routing key, which is the queue name when
/// an event is delivered to this queue directly, as tests and replays do).
async fn handle(pool: &PgPool, body: &[u8]) -> Outcome {
    #[derive(serde::Deserialize)]
    struct Kind {
        #[serde(rename = "type")]
        kind: String,
    }
    let routing_key = match serde_json::from_slice::<Kind>(body) {
        Ok(k) => k.kind,
        Err(e) => {
            tracing::error!(error = %e, "video event without a type");
            return Outcome::Reject;
        }
    };
    let routing_key = routing_key.as_str();
    match apply(pool, routing_key, body).await {
        Ok(()) => Outcome::Ack,
        Err(ApplyError::Decode(e)) => {
            tracing::error!(%routing_key, error = %e, "undecodable video event");
            Outcome::Reject
        }
        Err(ApplyError::Store(e)) => {
            tracing::warn!(%routing_key, error = %e, "video event not applied; will retry");
            Outcome::Retry
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Decode(#[from] serde_json::Error),
    #[error(transparent)]
    Store(#[from] sqlx::Error),
}

/// Applies one encoded event (also used by tests to check idempotence directly).
pub async fn apply(pool: &PgPool, routing_key: &str, body: &[u8]) -> Result<(), ApplyError> {
    fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<(Uuid, OffsetDateTime, T), ApplyError> {
        let envelope = consumer::decode::<T>(body)?;
        Ok((envelope.id, envelope.occurred_at, envelope.data))
    }
    let mut tx = pool.begin().await?;
    macro_rules! first_time {
        ($id:expr) => {
            if !record(&mut tx, $id).await? {
                return Ok(()); // a duplicate: already applied
            }
        };
    }
    match routing_key {
        "video.created" => {
            let (id, at, e) = decode::<VideoCreated>(body)?;
            first_time!(id);
            let m = &e.metadata;
            sqlx::query(
                "INSERT INTO videos (id, owner_id, title, description, tags, category, visibility,
                                     has_metadata, status, status_rank, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, true, 'uploading', 0, $8)
                 ON CONFLICT (id) DO UPDATE SET
                     title = EXCLUDED.title, description = EXCLUDED.description,
                     tags = EXCLUDED.tags, category = EXCLUDED.category,
                     visibility = EXCLUDED.visibility, has_metadata = true,
                     created_at = LEAST(videos.created_at, EXCLUDED.created_at)
                 WHERE NOT videos.has_metadata",
            )
            .bind(e.video_id)
            .bind(e.owner_id)
            .bind(&m.title)
            .bind(&m.description)
            .bind(&m.tags)
            .bind(&m.category)
            .bind(m.visibility)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        "video.uploaded" => {
            let (id, at, e) = decode::<VideoUploaded>(body)?;
            first_time!(id);
            advance(&mut tx, e.video_id, e.owner_id, VideoStatus::Processing, at).await?;
        }
        "video.ready" => {
            let (id, at, e) = decode::<VideoReady>(body)?;
            first_time!(id);
            if advance(&mut tx, e.video_id, e.owner_id, VideoStatus::Ready, at).await? {
                sqlx::query(
                    "UPDATE videos SET duration_seconds = $2, manifest_key = $3,
                         thumbnail_key = $4, published_at = COALESCE(published_at, $5)
                     WHERE id = $1",
                )
                .bind(e.video_id)
                .bind(e.duration_seconds)
                .bind(&e.manifest_key)
                .bind(&e.thumbnail_key)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            }
        }
        "video.failed" => {
            let (id, at, e) = decode::<VideoFailed>(body)?;
            first_time!(id);
            if advance(&mut tx, e.video_id, e.owner_id, VideoStatus::Failed, at).await? {
                sqlx::query("UPDATE videos SET failure_reason = $2 WHERE id = $1")
                    .bind(e.video_id)
                    .bind(&e.reason)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        "video.deleted" => {
            let (id, at, e) = decode::<VideoDeleted>(body)?;
            first_time!(id);
            sqlx::query(
                "INSERT INTO videos (id, owner_id, status, status_rank, created_at, deleted_at)
                 VALUES ($1, $2, 'uploading', 0, $3, $3)
                 ON CONFLICT (id) DO UPDATE SET deleted_at = COALESCE(videos.deleted_at, $3)",
            )
            .bind(e.video_id)
            .bind(e.owner_id)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        other => {
            tracing::debug!(routing_key = other, "ignored video event");
            return Ok(());
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Remembers an event id; false if it was already applied.
async fn record(conn: &mut PgConnection, event_id: Uuid) -> sqlx::Result<bool> {
    let inserted =
        sqlx::query("INSERT INTO processed_events (id) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(event_id)
            .execute(conn)
            .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Moves the video to `status` unless it is already at or past that rank (creating the
/// row if this is the first event seen for it). True if the status changed.
async fn advance(
    conn: &mut PgConnection,
    video: Uuid,
    owner: Uuid,
    status: VideoStatus,
    at: OffsetDateTime,
) -> sqlx::Result<bool> {
    let changed = sqlx::query(
        "INSERT INTO videos (id, owner_id, status, status_rank, created_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, status_rank = EXCLUDED.status_rank
         WHERE videos.status_rank < EXCLUDED.status_rank",
    )
    .bind(video)
    .bind(owner)
    .bind(status)
    .bind(status.rank())
    .bind(at)
    .execute(conn)
    .await?;
    Ok(changed.rows_affected() == 1)
}
