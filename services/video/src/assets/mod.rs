//! A video as an asset: its status (`GET /video/{id}`), its deletion (`DELETE /video/{id}`)
//! and the consumer that records what the transcoder produced.

pub mod consumer;
pub mod moderation;

use axum::{
    Json, Router,
    extract::{Path, State},
    http::StatusCode,
    routing::get,
};
use events::{Envelope, video::VideoDeleted};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    Context,
    error::ApiError,
    identity::{Caller, Viewer},
    storage, uploads,
    videos::{AssetStatus, Video, keys},
};

pub fn routes() -> Router<Context> {
    Router::new().route("/video/{id}", get(show).delete(remove))
}

/// A path segment that is not a video id names no video: 404, like an unknown id (so
/// `/video/metrics` and friends answer as every other prefix does, not with a parse error).
async fn show(
    State(ctx): State<Context>,
    Viewer(viewer): Viewer,
    id: Result<Path<Uuid>, axum::extract::rejection::PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Ok(Path(id)) = id else {
        return Err(ApiError::NotFound("no such video"));
    };
    let video = Video::find(ctx.db.pool(), id)
        .await?
        .filter(|v| v.visible_to(viewer))
        .ok_or(ApiError::NotFound("no such video"))?;
    let mut described = describe(&video);
    described["captions"] = Value::Array(crate::captions::list(&ctx, id).await?);
    Ok(Json(described))
}

fn describe(video: &Video) -> Value {
    let id = video.id;
    let ready = video.status == AssetStatus::Ready;
    let renditions: Vec<Value> = video
        .renditions
        .iter()
        .map(|r| {
            json!({
                "name": r.name, "width": r.width, "height": r.height, "bandwidth": r.bandwidth,
                "playlist_url": r.playlist_key.strip_prefix(&keys::hls_prefix(id))
                    .map(|rest| format!("/video/{id}/hls/{rest}")),
            })
        })
        .collect();
    let meta = &video.metadata.0;
    json!({
        "id": id,
        "owner_id": video.owner_id,
        "status": video.status,
        "failure_reason": video.failure_reason,
        "title": meta.title,
        "description": meta.description,
        "tags": meta.tags,
        "category": meta.category,
        "visibility": meta.visibility,
        "filename": video.filename,
        "size_bytes": video.upload_length,
        "uploaded_bytes": video.upload_offset,
        "duration_seconds": video.duration_seconds,
        "renditions": renditions,
        "manifest_url": ready.then(|| format!("/video/{id}/hls/master.m3u8")),
        "thumbnail_url": (ready && video.thumbnail_key.is_some()).then(|| format!("/video/{id}/thumbnail.jpg")),
        "created_at": video.created_at.format(&time::format_description::well_known::Rfc3339).ok(),
    })
}

async fn remove(
    State(ctx): State<Context>,
    Caller(caller): Caller,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    let video = Video::find(ctx.db.pool(), id)
        .await?
        .filter(|v| v.owner_id == caller && !v.is_deleted())
        .ok_or(ApiError::NotFound("no such video"))?;
    delete(&ctx, &video).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Marks the video deleted and queues `video.deleted` in one transaction (from then on it
/// is invisible), then removes its objects. If that is cut short, the sweeper finishes it.
pub async fn delete(ctx: &Context, video: &Video) -> Result<(), ApiError> {
    // No PATCH may be writing parts while the multipart upload is aborted.
    let lock = uploads::lock(ctx, video.id).await?;
    let mut tx = ctx.db.pool().begin().await?;
    let marked = sqlx::query(
        "UPDATE videos SET status = $2, updated_at = now() WHERE id = $1 AND status <> $2",
    )
    .bind(video.id)
    .bind(AssetStatus::Deleted)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if marked == 1 {
        let deleted = Envelope::new(VideoDeleted {
            video_id: video.id,
            owner_id: video.owner_id,
        });
        events::outbox::enqueue(&mut tx, &ctx.events, &deleted).await?;
    }
    tx.commit().await?;
    lock.rollback().await.ok();
    ctx.wake_relay();
    if let Err(error) = purge(ctx, video.id).await {
        tracing::warn!(video_id = %video.id, %error, "purge incomplete; the sweeper retries");
    }
    Ok(())
}

/// Removes every object of a video marked deleted, then its row.
pub async fn purge(ctx: &Context, id: Uuid) -> Result<(), String> {
    let upload_id: Option<Option<String>> =
        sqlx::query_scalar("SELECT s3_upload_id FROM videos WHERE id = $1 AND status = $2")
            .bind(id)
            .bind(AssetStatus::Deleted)
            .fetch_optional(ctx.db.pool())
            .await
            .map_err(|e| e.to_string())?;
    if let Some(Some(upload_id)) = upload_id {
        // Already aborted is fine; anything else is retried by the sweeper.
        let aborted = ctx
            .storage
            .client
            .abort_multipart_upload()
            .bucket(&ctx.storage.name)
            .key(keys::source(id))
            .upload_id(upload_id)
            .send()
            .await;
        if let Err(e) = aborted {
            let gone = e.as_service_error().is_some_and(|s| s.is_no_such_upload());
            if !gone {
                return Err(aws_sdk_s3::error::DisplayErrorContext(e).to_string());
            }
        }
    }
    storage::delete_keys(ctx, vec![keys::source(id)]).await?;
    storage::delete_prefix(ctx, &keys::staging_prefix(id)).await?;
    purge_outputs(ctx, id).await?;
    sqlx::query("DELETE FROM videos WHERE id = $1 AND status = $2")
        .bind(id)
        .bind(AssetStatus::Deleted)
        .execute(ctx.db.pool())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(video_id = %id, "video purged");
    Ok(())
}

/// Removes what the transcoder wrote for a video.
pub async fn purge_outputs(ctx: &Context, id: Uuid) -> Result<(), String> {
    storage::delete_keys(ctx, vec![keys::thumbnail(id)]).await?;
    storage::delete_prefix(ctx, &keys::hls_prefix(id)).await
}
