//! Caption tracks of a ready video, one per language, managed by its owner:
//!
//! * `PUT /video/{id}/captions/{language}?label=English`: adds or replaces the track; the
//!   body is WebVTT or SRT (converted), checked by [`format`] before anything is stored;
//! * `DELETE /video/{id}/captions/{language}`: removes it;
//! * `GET /video/{id}` lists them.
//!
//! A track is stored under the video's HLS tree (`hls/{id}/captions/{language}.vtt` and its
//! one-segment playlist, [`playlist`]), so it is served, signed and removed with the
//! ladder; the master playlist is rewritten to list the tracks as a subtitle group, without
//! re-transcoding. Edits of one video take its upload lock, so two never interleave their
//! master rewrites. The rows are the truth: a redone transcode rewrites the master without
//! subtitles, and the assets consumer puts them back ([`restore`]). Every change announces
//! the whole list as `video.captions` (through the outbox, in the same transaction), which
//! media lists on `Video.captions`.

pub mod format;
pub mod playlist;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, Query, State},
    http::StatusCode,
    routing,
};
use events::{
    Envelope,
    video::{CaptionTrack, VideoCaptions},
};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    Context,
    error::ApiError,
    identity::Caller,
    storage, uploads,
    videos::{AssetStatus, Video, keys},
};

pub fn routes() -> Router<Context> {
    Router::new().route(
        "/video/{id}/captions/{language}",
        routing::put(upsert).delete(remove),
    )
}

/// `en`, `pt-BR`, `zh-Hant`: a BCP 47 language tag's usual shape, which also keeps it safe
/// in a key and inside the playlist's quotes.
fn language(tag: &str) -> Result<String, ApiError> {
    let mut parts = tag.split('-');
    let primary = parts.next().unwrap_or_default();
    let ok = (2..=3).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_lowercase())
        && parts
            .all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
    if ok && tag.len() <= 35 {
        Ok(tag.to_owned())
    } else {
        Err(ApiError::BadRequest(format!(
            "not a language tag (e.g. en, pt-BR): {tag:?}"
        )))
    }
}

/// A track's name in players' menus: 1–64 characters, no quotes or control characters
/// (it is written inside the master playlist's quotes).
fn label(label: Option<String>, language: &str) -> Result<String, ApiError> {
    let label = label.unwrap_or_else(|| language.to_owned());
    let label = label.trim();
    if label.is_empty()
        || label.chars().count() > 64
        || label.chars().any(|c| c.is_control() || c == '"')
    {
        return Err(ApiError::BadRequest(
            "label: 1–64 characters, without quotes or control characters".into(),
        ));
    }
    Ok(label.to_owned())
}

#[derive(Deserialize)]
struct LabelQuery {
    label: Option<String>,
}

/// The caller's ready video, or why not.
async fn owned_ready(ctx: &Context, id: Uuid, caller: Uuid) -> Result<Video, ApiError> {
    let video = Video::find(ctx.db.pool(), id)
        .await?
        .filter(|v| v.owner_id == caller && !v.is_deleted())
        .ok_or(ApiError::NotFound("no such video"))?;
    if video.status != AssetStatus::Ready {
        return Err(ApiError::Conflict(
            "captions can be added once the video is ready".into(),
        ));
    }
    Ok(video)
}

async fn upsert(
    State(ctx): State<Context>,
    Caller(caller): Caller,
    Path((id, tag)): Path<(Uuid, String)>,
    Query(query): Query<LabelQuery>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let language = language(&tag)?;
    let label = label(query.label, &language)?;
    if body.len() > format::MAX_BYTES {
        return Err(ApiError::TooLarge(format!(
            "a caption file may be at most {} KiB",
            format::MAX_BYTES / 1024
        )));
    }
    let cues = format::parse(&body).map_err(ApiError::BadRequest)?;
    let video = owned_ready(&ctx, id, caller).await?;
    let mut tx = uploads::lock(&ctx, id).await?;
    let created: bool = sqlx::query_scalar(
        "INSERT INTO captions (video_id, language, label) VALUES ($1, $2, $3)
         ON CONFLICT (video_id, language) DO UPDATE SET label = EXCLUDED.label, updated_at = now()
         RETURNING (xmax = 0)",
    )
    .bind(id)
    .bind(&language)
    .bind(&label)
    .fetch_one(&mut *tx)
    .await?;
    let prefix = keys::hls_prefix(id);
    let duration = video.duration_seconds.unwrap_or(0.0);
    storage::put(
        &ctx,
        &format!("{prefix}captions/{language}.vtt"),
        format::to_vtt(&cues),
        "text/vtt",
    )
    .await?;
    storage::put(
        &ctx,
        &format!("{prefix}captions/{language}.m3u8"),
        playlist::media_playlist(&language, duration),
        "application/vnd.apple.mpegurl",
    )
    .await?;
    rewrite_master(&ctx, &mut tx, &video).await?;
    announce(&ctx, &mut tx, &video).await?;
    tx.commit().await?;
    ctx.wake_relay();
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(describe(id, &language, &label))))
}

async fn remove(
    State(ctx): State<Context>,
    Caller(caller): Caller,
    Path((id, tag)): Path<(Uuid, String)>,
) -> Result<StatusCode, ApiError> {
    let language = language(&tag)?;
    let video = owned_ready(&ctx, id, caller).await?;
    let mut tx = uploads::lock(&ctx, id).await?;
    let removed = sqlx::query("DELETE FROM captions WHERE video_id = $1 AND language = $2")
        .bind(id)
        .bind(&language)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if removed == 0 {
        return Err(ApiError::NotFound("no such caption track"));
    }
    // The master first, so no player is sent to files that are gone.
    rewrite_master(&ctx, &mut tx, &video).await?;
    announce(&ctx, &mut tx, &video).await?;
    tx.commit().await?;
    ctx.wake_relay();
    let prefix = keys::hls_prefix(id);
    storage::delete_keys(
        &ctx,
        vec![
            format!("{prefix}captions/{language}.vtt"),
            format!("{prefix}captions/{language}.m3u8"),
        ],
    )
    .await
    .map_err(|e| ApiError::unavailable(anyhow::anyhow!(e)))?;
    Ok(StatusCode::NO_CONTENT)
}

fn describe(id: Uuid, language: &str, label: &str) -> Value {
    json!({
        "language": language,
        "label": label,
        "url": format!("/video/{id}/hls/captions/{language}.vtt"),
        "playlist_url": format!("/video/{id}/hls/captions/{language}.m3u8"),
    })
}

/// The tracks of `id`, oldest first (the first is the master's default).
async fn tracks(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Vec<playlist::Track>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT language, label FROM captions WHERE video_id = $1 ORDER BY created_at, language",
    )
    .bind(id)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(language, label)| playlist::Track { language, label })
        .collect())
}

/// The caption tracks of `id` as `GET /video/{id}` lists them.
pub async fn list(ctx: &Context, id: Uuid) -> sqlx::Result<Vec<Value>> {
    let mut conn = ctx.db.pool().acquire().await?;
    Ok(tracks(&mut conn, id)
        .await?
        .iter()
        .map(|t| describe(id, &t.language, &t.label))
        .collect())
}

/// Queues `video.captions` with the video's tracks as they now are, and a new revision.
async fn announce(ctx: &Context, conn: &mut PgConnection, video: &Video) -> Result<(), ApiError> {
    let revision: i64 = sqlx::query_scalar(
        "UPDATE videos SET captions_revision = captions_revision + 1 WHERE id = $1
         RETURNING captions_revision",
    )
    .bind(video.id)
    .fetch_one(&mut *conn)
    .await?;
    let prefix = keys::hls_prefix(video.id);
    let tracks = tracks(&mut *conn, video.id)
        .await?
        .into_iter()
        .map(|t| CaptionTrack {
            vtt_key: format!("{prefix}captions/{}.vtt", t.language),
            language: t.language,
            label: t.label,
        })
        .collect();
    let event = Envelope::new(VideoCaptions {
        video_id: video.id,
        owner_id: video.owner_id,
        revision,
        tracks,
    });
    events::outbox::enqueue(conn, &ctx.events, &event).await?;
    Ok(())
}

/// Rewrites the master playlist of `video` to list its current tracks.
async fn rewrite_master(
    ctx: &Context,
    conn: &mut PgConnection,
    video: &Video,
) -> Result<(), ApiError> {
    let key = video
        .manifest_key
        .clone()
        .ok_or(ApiError::Conflict("the video has no playlist yet".into()))?;
    let tracks = tracks(conn, video.id).await?;
    let master = storage::get_text(ctx, &key).await?;
    storage::put(
        ctx,
        &key,
        playlist::with_tracks(&master, &tracks),
        "application/vnd.apple.mpegurl",
    )
    .await
}

/// Puts the tracks back into the master after a transcode rewrote it (a redelivered job
/// that ran again). Nothing to do for a video without captions.
pub async fn restore(ctx: &Context, id: Uuid) -> Result<(), ApiError> {
    let Some(video) = Video::find(ctx.db.pool(), id).await? else {
        return Ok(());
    };
    let mut tx = uploads::lock(ctx, id).await?;
    if tracks(&mut tx, id).await?.is_empty() || video.status != AssetStatus::Ready {
        return Ok(());
    }
    rewrite_master(ctx, &mut tx, &video).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_and_labels() {
        for ok in ["en", "pt-BR", "zh-Hant", "fil"] {
            assert!(language(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "e", "EN", "english", "en_US", "en-", "en-\"x", "../en", "en/x",
        ] {
            assert!(language(bad).is_err(), "{bad}");
        }
        assert_eq!(label(None, "en").unwrap(), "en");
        assert_eq!(label(Some(" Français ".into()), "fr").unwrap(), "Français");
        for bad in ["", "   ", "a\"b", "line\nbreak", &"x".repeat(65)] {
            assert!(label(Some(bad.to_owned()), "en").is_err(), "{bad:?}");
        }
    }
}
