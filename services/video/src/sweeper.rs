//! Background upkeep, safe on every replica at once: finishes uploads whose completion was
//! cut short, removes expired uploads (tus expiration: an upload untouched for
//! `UPLOAD_EXPIRY_SECS` is deleted like any video — `video.deleted`, its S3 multipart
//! upload aborted so its parts stop costing storage, staged pieces and row removed), and
//! finishes purges of deleted videos. Runs at start and then every `interval`, at most
//! 100 videos of each kind per round; each query is indexed (migrations/0003 for expiry).

use std::time::Duration;

use platform::{
    Shutdown,
    background::{FirstTick, every},
};
use uuid::Uuid;

use crate::{Context, assets, uploads, videos::Video};

pub fn spawn(ctx: Context, interval: Duration, shutdown: &Shutdown) {
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        every(interval, FirstTick::Now, &shutdown, || async {
            if let Err(error) = sweep(&ctx).await {
                tracing::debug!(%error, "sweep skipped");
            }
        })
        .await;
    });
}

async fn ids(ctx: &Context, sql: &str) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(sql).fetch_all(ctx.db.pool()).await
}

pub async fn sweep(ctx: &Context) -> Result<(), sqlx::Error> {
    let complete = ids(
        ctx,
        "SELECT id FROM videos WHERE status = 'uploading' AND upload_offset = upload_length LIMIT 100",
    )
    .await?;
    for id in complete {
        // Skip an upload a request is writing right now: that request finishes it.
        if let Some(lock) = uploads::try_lock(ctx, id).await? {
            if let Err(error) = uploads::finalize(ctx, id).await {
                tracing::warn!(video_id = %id, %error, "could not finish an upload");
            }
            lock.rollback().await.ok();
        }
    }
    let expired = ids(
        ctx,
        "SELECT id FROM videos WHERE status = 'uploading' AND expires_at < now() LIMIT 100",
    )
    .await?;
    for id in expired {
        if let Some(video) = Video::find(ctx.db.pool(), id).await? {
            tracing::info!(video_id = %id, "removing an expired upload");
            if let Err(error) = assets::delete(ctx, &video).await {
                tracing::warn!(video_id = %id, %error, "could not remove an expired upload");
            }
        }
    }
    let deleted = ids(
        ctx,
        "SELECT id FROM videos WHERE status = 'deleted' LIMIT 100",
    )
    .await?;
    for id in deleted {
        if let Err(error) = assets::purge(ctx, id).await {
            tracing::warn!(video_id = %id, %error, "purge incomplete");
        }
    }
    Ok(())
}
