//! This service's queue of video events: what the transcoder produced (`video.ready`,
//! `video.failed`) becomes the asset's status; catalogue edits (`video.updated`) and
//! deletions made through media (`video.deleted`) keep HLS access and storage in step.
//!
//! Every handler is idempotent: a status only moves forward (`uploading`/`processing` to
//! `ready`/`failed`), so duplicates and late arrivals change nothing.

use events::{
    consumer::{self, Outcome},
    topology::VIDEO_EVENTS,
    video::{VideoDeleted, VideoEvent, VideoEventKind, VideoFailed, VideoReady, VideoUpdated},
};
use lapin::message::Delivery;

use crate::{Context, queues, videos::AssetStatus};

/// The events this queue binds; the others are not this service's business.
const KINDS: [VideoEventKind; 4] = [
    VideoEventKind::Ready,
    VideoEventKind::Failed,
    VideoEventKind::Updated,
    VideoEventKind::Deleted,
];

pub fn spawn(ctx: Context, shutdown: &platform::Shutdown) {
    let mut spec = queues::assets(&ctx.config.queue_prefix);
    for kind in KINDS {
        spec = spec.bind(VIDEO_EVENTS, &ctx.events.routing_key(kind.routing_key()));
    }
    consumer::spawn(ctx.rabbit.clone(), spec, 16, shutdown, move |delivery| {
        let ctx = ctx.clone();
        async move { handle(&ctx, delivery).await }
    });
}

/// Dispatches on the envelope's `type` (events::video::VideoEvent), like every consumer.
async fn handle(ctx: &Context, delivery: Delivery) -> Outcome {
    let event = match VideoEvent::decode(&delivery.data) {
        Ok(envelope) => envelope.data,
        Err(error) => return Outcome::undecodable(&error),
    };
    let outcome = match event {
        VideoEvent::Ready(ready) => ready_(ctx, ready).await,
        VideoEvent::Failed(failed) => failed_(ctx, failed).await,
        VideoEvent::Updated(updated) => updated_(ctx, updated).await,
        VideoEvent::Deleted(deleted) => deleted_(ctx, deleted).await,
        VideoEvent::Created(_)
        | VideoEvent::Uploaded(_)
        | VideoEvent::Progress(_)
        | VideoEvent::Captions(_) => Ok(()),
    };
    match outcome {
        Ok(()) => Outcome::Ack,
        Err(error) => {
            tracing::warn!(%error, "video event not handled yet; will retry");
            Outcome::Retry
        }
    }
}

async fn ready_(ctx: &Context, ready: VideoReady) -> Result<(), sqlx::Error> {
    let status: Option<AssetStatus> = sqlx::query_scalar(
        "UPDATE videos SET status = $2, manifest_key = $3, thumbnail_key = $4,
                duration_seconds = $5, renditions = $6, failure_reason = NULL, updated_at = now()
         WHERE id = $1 AND status IN ('uploading', 'processing')
         RETURNING status",
    )
    .bind(ready.video_id)
    .bind(AssetStatus::Ready)
    .bind(&ready.manifest_key)
    .bind(&ready.thumbnail_key)
    .bind(ready.duration_seconds)
    .bind(sqlx::types::Json(&ready.renditions))
    .fetch_optional(ctx.db.pool())
    .await?;
    if status.is_some() {
        tracing::info!(video_id = %ready.video_id, "video ready");
    } else {
        purge_if_deleted(ctx, ready.video_id).await?;
    }
    // A transcode run again (a redelivered job) rewrote the master without its subtitles.
    if let Err(error) = crate::captions::restore(ctx, ready.video_id).await {
        tracing::warn!(video_id = %ready.video_id, %error, "captions not restored to the master");
        return Err(sqlx::Error::Protocol(format!(
            "captions not restored: {error}"
        )));
    }
    Ok(())
}

/// Outputs of a video deleted while it was transcoding arrive after (or during) the purge:
/// remove them again. With the row already gone only the outputs are left to remove.
async fn purge_if_deleted(ctx: &Context, id: uuid::Uuid) -> Result<(), sqlx::Error> {
    let status: Option<AssetStatus> = sqlx::query_scalar("SELECT status FROM videos WHERE id = $1")
        .bind(id)
        .fetch_optional(ctx.db.pool())
        .await?;
    let purged = match status {
        Some(AssetStatus::Deleted) => super::purge(ctx, id).await,
        None => super::purge_outputs(ctx, id).await,
        Some(_) => Ok(()), // a duplicate of a result already recorded
    };
    if let Err(error) = purged {
        tracing::warn!(video_id = %id, %error, "purge incomplete; the sweeper retries");
    }
    Ok(())
}

async fn failed_(ctx: &Context, failed: VideoFailed) -> Result<(), sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE videos SET status = $2, failure_reason = $3, updated_at = now()
         WHERE id = $1 AND status IN ('uploading', 'processing')",
    )
    .bind(failed.video_id)
    .bind(AssetStatus::Failed)
    .bind(&failed.reason)
    .execute(ctx.db.pool())
    .await?;
    if updated.rows_affected() == 1 {
        tracing::info!(video_id = %failed.video_id, reason = failed.reason, "video failed");
    }
    Ok(())
}

async fn updated_(ctx: &Context, updated: VideoUpdated) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE videos SET metadata = $3, updated_at = now()
         WHERE id = $1 AND owner_id = $2 AND status <> 'deleted'",
    )
    .bind(updated.video_id)
    .bind(updated.owner_id)
    .bind(sqlx::types::Json(&updated.metadata))
    .execute(ctx.db.pool())
    .await?;
    Ok(())
}

/// Deleted through the catalogue: mark it (without announcing it again) and purge.
async fn deleted_(ctx: &Context, deleted: VideoDeleted) -> Result<(), sqlx::Error> {
    let marked = sqlx::query(
        "UPDATE videos SET status = $3, updated_at = now()
         WHERE id = $1 AND owner_id = $2 AND status <> $3",
    )
    .bind(deleted.video_id)
    .bind(deleted.owner_id)
    .bind(AssetStatus::Deleted)
    .execute(ctx.db.pool())
    .await?;
    if marked.rows_affected() == 1
        && let Err(error) = super::purge(ctx, deleted.video_id).await
    {
        tracing::warn!(video_id = %deleted.video_id, %error, "purge incomplete; the sweeper retries");
    }
    Ok(())
}
