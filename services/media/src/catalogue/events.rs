//! Filling the catalogue from `video.*` events.
//!
//! Each event is applied in one transaction together with its id in `processed_events`, so
//! a redelivered event finds its id there and changes nothing. Events may also arrive out
//! of order (different publishers, retries): any event may create the row (they all carry
//! the owner), a status only moves up in rank, the uploader's metadata is taken from
//! `video.created` only while the row has none, and a deleted video stays deleted.
//!
//! A video whose owner's account was erased is buried as it arrives (crate::erasure,
//! *late events*): an upload begun before the account was deleted never reaches the feed.

use events::{
    Envelope, Namespace,
    consumer::{self, Outcome},
    topology::VIDEO_EVENTS,
    video::{VideoEvent, VideoEventKind, VideoStatus},
};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    Context, erasure,
    notifications::{self, Kind, NewNotification, NotificationRow, fanout},
};

/// The events this consumer applies; the others (progress, updated) are not bound.
const KINDS: [VideoEventKind; 6] = [
    VideoEventKind::Created,
    VideoEventKind::Uploaded,
    VideoEventKind::Ready,
    VideoEventKind::Failed,
    VideoEventKind::Deleted,
    VideoEventKind::Captions,
];

/// Consumes media's `media.catalogue` queue until shutdown.
pub fn spawn(ctx: &Context, shutdown: &platform::Shutdown) {
    let namespace = ctx.config.namespace();
    let mut spec = namespace.queue("media.catalogue");
    for kind in KINDS {
        spec = spec.bind(VIDEO_EVENTS, &namespace.routing_key(kind.routing_key()));
    }
    let ctx = ctx.clone();
    consumer::spawn(ctx.rabbit.clone(), spec, 32, shutdown, move |delivery| {
        let ctx = ctx.clone();
        async move { handle(&ctx, &delivery.data).await }
    });
}

/// Dispatches on the envelope's `type` (events::video::VideoEvent; not the routing key,
/// which is the queue name when an event is delivered to this queue directly, as tests and
/// replays do).
async fn handle(ctx: &Context, body: &[u8]) -> Outcome {
    let envelope = match VideoEvent::decode(body) {
        Ok(envelope) => envelope,
        Err(error) => return Outcome::undecodable(&error),
    };
    match apply(ctx.db.pool(), &ctx.events, &envelope).await {
        Ok(applied) => {
            if applied.fanout {
                ctx.fanout_wake.wake();
            }
            notifications::announce(ctx, &applied.notified).await;
            // Deleted through the video service: its live subscribers end, on every
            // replica (after the commit; again for a duplicate, which is harmless).
            if let VideoEvent::Deleted(deleted) = &envelope.data {
                ctx.realtime.access_changed(deleted.video_id).await;
            }
            Outcome::Ack
        }
        Err(e) => {
            let kind = &envelope.kind;
            tracing::warn!(%kind, error = %e, "video event not applied; will retry");
            Outcome::Retry
        }
    }
}

/// What applying an event asks of the caller once it committed.
#[derive(Debug, Default)]
pub struct Applied {
    /// Notifications written (the owner's `VIDEO_READY` / `VIDEO_FAILED`), to send live.
    pub notified: Vec<NotificationRow>,
    /// A subscriber fan-out job was written (crate::notifications::fanout).
    pub fanout: bool,
}

/// Applies one decoded event (also usable by tests to check idempotence directly).
pub async fn apply(
    pool: &PgPool,
    namespace: &Namespace,
    envelope: &Envelope<VideoEvent>,
) -> sqlx::Result<Applied> {
    let mut applied = Applied::default();
    let (id, at) = (envelope.id, envelope.occurred_at);
    let mut tx = pool.begin().await?;
    // Events that may create or revive a live row hold the owner's erasure lock until
    // commit, and bury the video if the owner is gone (crate::erasure, *late events*).
    let live = match &envelope.data {
        VideoEvent::Created(e) => Some((e.video_id, e.owner_id)),
        VideoEvent::Uploaded(e) => Some((e.video_id, e.owner_id)),
        VideoEvent::Ready(e) => Some((e.video_id, e.owner_id)),
        VideoEvent::Failed(e) => Some((e.video_id, e.owner_id)),
        VideoEvent::Deleted(_)
        | VideoEvent::Progress(_)
        | VideoEvent::Updated(_)
        | VideoEvent::Captions(_) => None,
    };
    if let Some((_, owner)) = live {
        erasure::lock_owner_shared(&mut tx, owner).await?;
    }
    macro_rules! first_time {
        () => {
            if !record(&mut tx, id).await? {
                return Ok(applied); // a duplicate: already applied
            }
        };
    }
    match &envelope.data {
        VideoEvent::Created(e) => {
            first_time!();
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
            // Its `video.ready` came first: the subscribers learn of it now.
            applied.fanout = fan_out_if_listed(&mut tx, e.video_id).await?;
        }
        VideoEvent::Uploaded(e) => {
            first_time!();
            advance(&mut tx, e.video_id, e.owner_id, VideoStatus::Processing, at).await?;
        }
        VideoEvent::Ready(e) => {
            first_time!();
            if advance(&mut tx, e.video_id, e.owner_id, VideoStatus::Ready, at).await? {
                sqlx::query(
                    "UPDATE videos SET duration_seconds = $2, manifest_key = $3,
                         thumbnail_key = $4, published_at = COALESCE(published_at, $5),
                         posters = $6, storyboard = $7
                     WHERE id = $1",
                )
                .bind(e.video_id)
                .bind(e.duration_seconds)
                .bind(&e.manifest_key)
                .bind(&e.thumbnail_key)
                .bind(at)
                .bind(sqlx::types::Json(&e.posters))
                .bind(e.storyboard.as_ref().map(sqlx::types::Json))
                .execute(&mut *tx)
                .await?;
                let ready = NewNotification {
                    video: Some(e.video_id),
                    ..NewNotification::new(e.owner_id, Kind::VideoReady, e.video_id)
                };
                applied
                    .notified
                    .extend(notifications::store::notify(&mut tx, &ready).await?);
                applied.fanout = fan_out_if_listed(&mut tx, e.video_id).await?;
            }
        }
        VideoEvent::Failed(e) => {
            first_time!();
            if advance(&mut tx, e.video_id, e.owner_id, VideoStatus::Failed, at).await? {
                sqlx::query("UPDATE videos SET failure_reason = $2 WHERE id = $1")
                    .bind(e.video_id)
                    .bind(&e.reason)
                    .execute(&mut *tx)
                    .await?;
                let failed = NewNotification {
                    video: Some(e.video_id),
                    detail: Some(e.reason.clone()),
                    ..NewNotification::new(e.owner_id, Kind::VideoFailed, e.video_id)
                };
                applied
                    .notified
                    .extend(notifications::store::notify(&mut tx, &failed).await?);
            }
        }
        VideoEvent::Deleted(e) => {
            first_time!();
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
        VideoEvent::Captions(e) => {
            first_time!();
            // Only a newer list replaces the one kept (events may arrive out of order).
            sqlx::query(
                "UPDATE videos SET captions = $2, captions_revision = $3
                 WHERE id = $1 AND captions_revision < $3",
            )
            .bind(e.video_id)
            .bind(sqlx::types::Json(&e.tracks))
            .bind(e.revision)
            .execute(&mut *tx)
            .await?;
        }
        VideoEvent::Progress(_) | VideoEvent::Updated(_) => {
            tracing::debug!(kind = %envelope.kind, "ignored video event");
            return Ok(applied);
        }
    }
    if let Some((video, owner)) = live
        && erasure::bury_if_erased(&mut tx, namespace, video).await?
    {
        // Its `video.deleted` goes out with the relay's next poll (within a second).
        tracing::info!(%video, %owner, "video of an erased account buried on arrival");
    }
    tx.commit().await?;
    Ok(applied)
}

/// Writes the job of telling the video's subscribers, if it is listed now (ready, public,
/// not deleted). True if a job was written.
pub async fn fan_out_if_listed(conn: &mut PgConnection, video: Uuid) -> sqlx::Result<bool> {
    let listed: Option<Uuid> = sqlx::query_scalar(&format!(
        "SELECT owner_id FROM videos WHERE id = $1 AND {}",
        super::store::LISTED
    ))
    .bind(video)
    .fetch_optional(&mut *conn)
    .await?;
    match listed {
        Some(owner) => {
            fanout::enqueue(conn, video, owner).await?;
            Ok(true)
        }
        None => Ok(false),
    }
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
