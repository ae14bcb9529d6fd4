//! HLS delivery: `/video/{id}/hls/{path}` and `/video/{id}/thumbnail.jpg`, streamed from
//! S3 with `Range` support. Public and unlisted videos are served to anyone, private ones
//! to their owner only (and never stored by caches).
//!
//! `/video/{id}/signed/{token}/{path}` serves the same tree to whoever holds a playback
//! token (identity::playback) made for this video, with no header: what native players
//! need. The token must verify for this video (403 otherwise, and when expired), the video
//! must exist and be ready (404), and the viewer it was made for must still be allowed to
//! see it (403: a video made private since).
//!
//! Segments and stills (whole-file GETs) come through crate::hls_cache, from memory when
//! hot; everything else streams from S3 chunk by chunk.

use aws_sdk_s3::operation::get_object::GetObjectOutput;
use axum::{
    Router,
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use events::video::Visibility;
use uuid::Uuid;

use crate::{
    Context,
    error::ApiError,
    hls_cache::{HlsCache, Lookup},
    identity::Viewer,
    videos::{AssetStatus, Video, keys},
};

pub fn routes() -> Router<Context> {
    Router::new()
        .route("/video/{id}/hls/{*path}", get(hls))
        .route("/video/{id}/thumbnail.jpg", get(thumbnail))
        .route("/video/{id}/signed/{token}/{*path}", get(signed))
}

/// A relative path inside the video's HLS tree: plain names only, nothing that climbs out.
fn is_plain_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 200
        && path.split('/').all(|segment| {
            !segment.is_empty()
                && !segment.starts_with('.')
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
        })
}

async fn playable(ctx: &Context, id: Uuid, viewer: Option<Uuid>) -> Result<Video, ApiError> {
    Video::find(ctx.db.pool(), id)
        .await?
        .filter(|v| v.visible_to(viewer) && v.status == AssetStatus::Ready)
        .ok_or(ApiError::NotFound("no such video, or not ready"))
}

async fn hls(
    State(ctx): State<Context>,
    Viewer(viewer): Viewer,
    Path((id, path)): Path<(Uuid, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !is_plain_path(&path) {
        return Err(ApiError::NotFound("no such file"));
    }
    let video = playable(&ctx, id, viewer).await?;
    serve(
        &ctx,
        &video,
        &format!("{}{path}", keys::hls_prefix(id)),
        &headers,
    )
    .await
}

async fn signed(
    State(ctx): State<Context>,
    Path((id, token, path)): Path<(Uuid, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = ctx
        .config
        .playback_key
        .as_ref()
        .ok_or(ApiError::NotFound("signed playback is not configured"))?;
    if !is_plain_path(&path) {
        return Err(ApiError::NotFound("no such file"));
    }
    let grant = key
        .verify(&token, id, time::OffsetDateTime::now_utc())
        .map_err(|e| ApiError::Forbidden(e.to_string()))?;
    let video = Video::find(ctx.db.pool(), id)
        .await?
        .filter(|v| v.status == AssetStatus::Ready)
        .ok_or(ApiError::NotFound("no such video, or not ready"))?;
    if !video.visible_to(grant.viewer) {
        return Err(ApiError::Forbidden(
            "this token's viewer may no longer see this video".into(),
        ));
    }
    serve(
        &ctx,
        &video,
        &format!("{}{path}", keys::hls_prefix(id)),
        &headers,
    )
    .await
}

async fn thumbnail(
    State(ctx): State<Context>,
    Viewer(viewer): Viewer,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let video = playable(&ctx, id, viewer).await?;
    let key = video
        .thumbnail_key
        .clone()
        .ok_or(ApiError::NotFound("this video has no thumbnail"))?;
    serve(&ctx, &video, &key, &headers).await
}

fn content_type(key: &str) -> &'static str {
    match key.rsplit('.').next() {
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("ts") => "video/mp2t",
        Some("m4s") => "video/iso.segment",
        Some("mp4") => "video/mp4",
        Some("jpg") => "image/jpeg",
        Some("vtt") => "text/vtt; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Segments and stills never change under their key, so caches keep them; playlists
/// might be rewritten (a re-transcode, a caption added) and name what a viewer may see, so
/// they are cached for a minute at most: a video made private leaves shared caches within
/// a minute. Private media is never stored by any cache.
fn cache_control(key: &str, visibility: Visibility) -> &'static str {
    if visibility == Visibility::Private {
        "private, no-store"
    } else if key.ends_with(".m3u8") || key.ends_with(".vtt") {
        "public, max-age=60"
    } else {
        "public, max-age=31536000, immutable"
    }
}

/// Whether `key` of `video` is answered with a redirect to S3 (crate::config::Delivery):
/// segments and images of public videos only. Playlists and VTT files name their
/// neighbours relatively, so they must come from here.
fn redirected(video: &Video, key: &str) -> bool {
    video.metadata.visibility == Visibility::Public && HlsCache::keeps(key)
}

/// A 302 to a presigned GET of `key` on S3's public endpoint.
async fn redirect(
    ctx: &Context,
    presigner: &aws_sdk_s3::Client,
    ttl: std::time::Duration,
    key: &str,
) -> Result<Response, ApiError> {
    let signing =
        aws_sdk_s3::presigning::PresigningConfig::expires_in(ttl).map_err(ApiError::unavailable)?;
    let request = presigner
        .get_object()
        .bucket(&ctx.storage.name)
        .key(key)
        .presigned(signing)
        .await
        .map_err(ApiError::storage)?;
    // The redirect may be cached, but never past the presigned URL's life.
    let max_age = (ttl.as_secs() / 2).min(600);
    Ok(Response::builder()
        .status(StatusCode::FOUND)
        .header(header::LOCATION, request.uri())
        .header(header::CACHE_CONTROL, format!("public, max-age={max_age}"))
        .body(Body::empty())
        .map_err(ApiError::unavailable)?
        .into_response())
}

async fn serve(
    ctx: &Context,
    video: &Video,
    key: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    if let Some((presigner, ttl)) = &ctx.presigner
        && redirected(video, key)
    {
        return redirect(ctx, presigner, *ttl, key).await;
    }
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let object = match &ctx.hls_cache {
        Some(cache) if range.is_none() && HlsCache::keeps(key) => {
            cache.get(key, || get_object(ctx, key, None)).await?
        }
        _ => Lookup::Fetched(Box::new(get_object(ctx, key, range).await?)),
    };
    let mut response = Response::builder()
        .header(header::CONTENT_TYPE, content_type(key))
        .header(header::ACCEPT_RANGES, "bytes")
        .header(
            header::CACHE_CONTROL,
            cache_control(key, video.metadata.visibility),
        );
    if video.metadata.visibility == Visibility::Private {
        response = response.header(header::VARY, "Authorization");
    }
    let e_tag = match &object {
        Lookup::Cached(cached) => cached.e_tag.as_deref(),
        Lookup::Fetched(fetched) => fetched.e_tag(),
    };
    if let Some(e_tag) = e_tag.and_then(|e| HeaderValue::from_str(e).ok()) {
        response = response.header(header::ETAG, e_tag);
    }
    let response = match object {
        // One shared buffer, handed to hyper whole: no copy per response.
        Lookup::Cached(cached) => response
            .status(StatusCode::OK)
            .header(header::CONTENT_LENGTH, cached.bytes.len())
            .body(Body::from(cached.bytes)),
        Lookup::Fetched(fetched) => {
            if let Some(length) = fetched.content_length() {
                response = response.header(header::CONTENT_LENGTH, length);
            }
            if let Some(range) = fetched.content_range() {
                response = response
                    .status(StatusCode::PARTIAL_CONTENT)
                    .header(header::CONTENT_RANGE, range);
            }
            // The object's body is passed on chunk by chunk as S3 sends it (tens of KiB
            // each), not copied through a reader: a 4 KiB `ReaderStream` cost a copy and a
            // frame per 4 KiB. Memory stays bounded by what hyper holds in flight per
            // connection.
            let chunks = futures::stream::unfold(fetched.body, |mut body| async move {
                body.next().await.map(|chunk| (chunk, body))
            });
            response.body(Body::from_stream(chunks))
        }
    };
    Ok(response.map_err(ApiError::unavailable)?.into_response())
}

/// GETs `key` (a `range` of it, if asked) from the bucket: 404 for a missing object, 416
/// for a range outside it.
async fn get_object(
    ctx: &Context,
    key: &str,
    range: Option<String>,
) -> Result<GetObjectOutput, ApiError> {
    ctx.storage
        .client
        .get_object()
        .bucket(&ctx.storage.name)
        .key(key)
        .set_range(range)
        .send()
        .await
        .map_err(|e| {
            if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                ApiError::NotFound("no such file")
            } else if e.raw_response().is_some_and(|r| r.status().as_u16() == 416) {
                ApiError::RangeNotSatisfiable
            } else {
                ApiError::storage(e)
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_paths_are_served() {
        assert!(is_plain_path("master.m3u8"));
        assert!(is_plain_path("720p/seg_00001.ts"));
        assert!(!is_plain_path("../sources/x"));
        assert!(!is_plain_path("720p/../../x"));
        assert!(!is_plain_path(".hidden"));
        assert!(!is_plain_path("a//b"));
        assert!(!is_plain_path("a/b%2e"));
        assert!(!is_plain_path(""));
    }

    #[test]
    fn private_media_is_never_stored_and_playlists_are_short_lived() {
        assert_eq!(
            cache_control("720p/seg_00000.ts", Visibility::Public),
            "public, max-age=31536000, immutable"
        );
        for key in ["master.m3u8", "storyboard.vtt"] {
            assert_eq!(
                cache_control(key, Visibility::Unlisted),
                "public, max-age=60"
            );
        }
        for key in ["master.m3u8", "720p/seg_00000.ts", "poster-320.jpg"] {
            assert_eq!(cache_control(key, Visibility::Private), "private, no-store");
        }
    }
}
