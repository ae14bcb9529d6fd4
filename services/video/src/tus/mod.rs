//! tus 1.0 on `/video/upload`: core, creation, creation-with-upload, termination,
//! expiration. Every call after creation is the owner's only.

pub mod metadata;

use axum::{
    Router,
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header},
    middleware,
    response::{IntoResponse, Response},
    routing::{options, patch},
};
use events::{Envelope, video::VideoCreated};
use time::OffsetDateTime;
use uuid::Uuid;

use platform::{
    client_ip::ClientIp,
    rate_limit::{Decision, Subject},
};

use crate::{
    Context,
    error::ApiError,
    identity::{Caller, Viewer},
    limits::{self, Usage},
    uploads,
    videos::{AssetStatus, Video, keys},
};

pub const TUS_VERSION: &str = "1.0.0";
const EXTENSIONS: &str = "creation,creation-with-upload,termination,expiration";
const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";

const TUS_RESUMABLE: HeaderName = HeaderName::from_static("tus-resumable");
const UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
const UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");
const UPLOAD_EXPIRES: HeaderName = HeaderName::from_static("upload-expires");

pub fn routes() -> Router<Context> {
    Router::new()
        .route("/video/upload", options(capabilities).post(create))
        .route(
            "/video/upload/{id}",
            patch(append).head(offset).delete(terminate),
        )
        .layer(middleware::map_response(|mut response: Response| async {
            response
                .headers_mut()
                .insert(TUS_RESUMABLE, HeaderValue::from_static(TUS_VERSION));
            response
        }))
}

/// 412 unless the client speaks our version (every request but OPTIONS).
fn require_tus(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(TUS_RESUMABLE) {
        Some(v) if v == TUS_VERSION => Ok(()),
        _ => Err(ApiError::TusVersion),
    }
}

fn number(headers: &HeaderMap, name: &HeaderName) -> Result<Option<i64>, ApiError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    ApiError::BadRequest(format!("{name} must be a non-negative integer"))
                })
        })
        .transpose()
}

/// An HTTP date (RFC 9110 IMF-fixdate), as tus wants for `Upload-Expires`.
fn http_date(at: OffsetDateTime) -> HeaderValue {
    // RFC 2822 in UTC is the same text with a numeric zone instead of "GMT".
    let text = at
        .to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc2822)
        .expect("formattable date");
    let text = text.strip_suffix(" +0000").unwrap_or(&text);
    HeaderValue::from_str(&format!("{text} GMT")).expect("ASCII date")
}

/// `Tus-Max-Size` is what this caller may upload now: `UPLOAD_MAX_SIZE`, lowered to the
/// quota they have left when the request carries an identity (the gateway passes one on
/// this public route when the client sends its token).
async fn capabilities(
    State(ctx): State<Context>,
    Viewer(viewer): Viewer,
) -> Result<Response, ApiError> {
    let mut max_size = ctx.config.uploads.max_size;
    if let Some(user) = viewer {
        let mut conn = ctx.db.pool().acquire().await?;
        let usage = Usage::of(&mut conn, user).await?;
        if let Some(remaining) = usage.remaining(&ctx.config.limits) {
            max_size = max_size.min(remaining);
        }
    }
    let mut response = (
        StatusCode::NO_CONTENT,
        [
            ("tus-version", TUS_VERSION.to_owned()),
            ("tus-extension", EXTENSIONS.to_owned()),
            ("tus-max-size", max_size.to_string()),
        ],
    )
        .into_response();
    if viewer.is_some() {
        // Per user: no shared cache may hand it to someone else, or keep it past a change.
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
    }
    Ok(response)
}

/// Counts this creation against the caller's and their address's rates (429 when over).
async fn admit_creation(ctx: &Context, owner: Uuid, ip: ClientIp) -> Result<(), ApiError> {
    let limits = &ctx.config.limits;
    let checks = [
        (Subject::User(owner), limits.user_rate),
        (Subject::Ip(ip.0), limits.ip_rate),
    ];
    match ctx
        .limiter
        .check_all("upload", &checks)
        .await
        .map_err(ApiError::unavailable)?
    {
        Decision::Allowed => Ok(()),
        limited => {
            tracing::info!(%owner, ip = %ip.0, "upload creation rate-limited");
            Err(ApiError::RateLimited(
                limited.retry_after_secs().unwrap_or(1),
            ))
        }
    }
}

/// The owner's upload, or 404 (others' uploads are indistinguishable from missing ones),
/// or 410 once expired.
async fn owned_upload(ctx: &Context, id: Uuid, caller: Uuid) -> Result<Video, ApiError> {
    let video = Video::find(ctx.db.pool(), id)
        .await?
        .filter(|v| v.owner_id == caller && !v.is_deleted())
        .ok_or(ApiError::NotFound("no such upload"))?;
    if video.is_expired() {
        return Err(ApiError::Gone);
    }
    Ok(video)
}

fn is_offset_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(OFFSET_OCTET_STREAM))
}

async fn create(
    State(ctx): State<Context>,
    Caller(owner): Caller,
    ip: ClientIp,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    require_tus(&headers)?;
    let length = match number(&headers, &UPLOAD_LENGTH)? {
        Some(length) => length,
        None if headers.contains_key("upload-defer-length") => {
            return Err(ApiError::BadRequest(
                "Upload-Defer-Length is not supported; send Upload-Length".into(),
            ));
        }
        None => return Err(ApiError::BadRequest("Upload-Length is required".into())),
    };
    if length == 0 {
        return Err(ApiError::BadRequest("an empty file is not a video".into()));
    }
    if length as u64 > ctx.config.uploads.max_size {
        return Err(ApiError::TooLarge(format!(
            "Upload-Length exceeds the maximum of {} bytes",
            ctx.config.uploads.max_size
        )));
    }
    let meta = metadata::parse(headers.get("upload-metadata").and_then(|v| v.to_str().ok()))
        .map_err(ApiError::BadRequest)?;
    let content_length = number(&headers, &header::CONTENT_LENGTH)?;
    let with_upload =
        content_length.is_some_and(|n| n > 0) || headers.contains_key(header::TRANSFER_ENCODING);
    if with_upload && !is_offset_stream(&headers) {
        return Err(ApiError::UnsupportedMediaType(
            "a creation request with data must be application/offset+octet-stream",
        ));
    }
    if content_length.is_some_and(|n| n > length) {
        return Err(ApiError::TooLarge(
            "the body is longer than Upload-Length".into(),
        ));
    }

    // Limits after the request is known to be well-formed, before anything is stored:
    // the rate first (cheap, in Redis), then quota and concurrency under the owner's lock,
    // which the transaction holds until the row is in (crate::limits).
    admit_creation(&ctx, owner, ip).await?;
    let mut tx = ctx.db.pool().begin().await?;
    limits::reserve(&mut tx, owner, length as u64, &ctx.config.limits).await?;

    let id = Uuid::now_v7();
    let multipart = ctx
        .storage
        .client
        .create_multipart_upload()
        .bucket(&ctx.storage.name)
        .key(keys::source(id))
        .send()
        .await
        .map_err(ApiError::storage)?;
    let upload_id = multipart.upload_id().unwrap_or_default().to_owned();

    let expires_at: OffsetDateTime = sqlx::query_scalar(
        "INSERT INTO videos (id, owner_id, status, metadata, filename, upload_length, part_size,
                             s3_upload_id, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() + $9 * interval '1 second')
         RETURNING expires_at",
    )
    .bind(id)
    .bind(owner)
    .bind(AssetStatus::Uploading)
    .bind(sqlx::types::Json(&meta.metadata))
    .bind(&meta.filename)
    .bind(length)
    .bind(ctx.config.uploads.part_size as i64)
    .bind(&upload_id)
    .bind(ctx.config.uploads.expiry.as_secs_f64())
    .fetch_one(&mut *tx)
    .await?;
    let created = Envelope::new(VideoCreated {
        video_id: id,
        owner_id: owner,
        metadata: meta.metadata,
    });
    events::outbox::enqueue(&mut tx, &ctx.events, &created).await?;
    tx.commit().await?;
    ctx.wake_relay();
    tracing::info!(video_id = %id, %owner, length, "upload created");

    let mut response = (
        StatusCode::CREATED,
        [(header::LOCATION, format!("/video/upload/{id}"))],
    )
        .into_response();
    response
        .headers_mut()
        .insert(UPLOAD_EXPIRES, http_date(expires_at));
    if with_upload {
        let offset = write(&ctx, id, owner, 0, body).await?;
        response.headers_mut().insert(UPLOAD_OFFSET, offset.into());
    }
    Ok(response)
}

async fn offset(
    State(ctx): State<Context>,
    Caller(caller): Caller,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_tus(&headers)?;
    let video = owned_upload(&ctx, id, caller).await?;
    if video.status == AssetStatus::Uploading && video.upload_offset == video.upload_length {
        // Every byte is in, but the completion was cut short (a crash): finish it now.
        let ctx = ctx.clone();
        tokio::spawn(async move {
            if let Err(e) = uploads::finalize(&ctx, id).await {
                tracing::warn!(video_id = %id, error = %e, "finishing an upload failed; the sweeper retries");
            }
        });
    }
    let mut response = (
        StatusCode::OK,
        [
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (UPLOAD_OFFSET, video.upload_offset.into()),
            (UPLOAD_LENGTH, video.upload_length.into()),
        ],
    )
        .into_response();
    if video.status == AssetStatus::Uploading {
        response
            .headers_mut()
            .insert(UPLOAD_EXPIRES, http_date(video.expires_at));
    }
    Ok(response)
}

async fn append(
    State(ctx): State<Context>,
    Caller(caller): Caller,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    require_tus(&headers)?;
    if !is_offset_stream(&headers) {
        return Err(ApiError::UnsupportedMediaType(
            "PATCH requests must be application/offset+octet-stream",
        ));
    }
    let claimed = number(&headers, &UPLOAD_OFFSET)?
        .ok_or_else(|| ApiError::BadRequest("Upload-Offset is required".into()))?;
    let content_length = number(&headers, &header::CONTENT_LENGTH)?;
    // Cheap checks before taking the lock; repeated under it.
    let video = owned_upload(&ctx, id, caller).await?;
    check_patch(&video, claimed, content_length)?;
    let offset = write(&ctx, id, caller, claimed, body).await?;
    let video = Video::find(ctx.db.pool(), id).await?;
    let mut response = (StatusCode::NO_CONTENT, [(UPLOAD_OFFSET, offset)]).into_response();
    if let Some(video) = video.filter(|v| v.status == AssetStatus::Uploading) {
        response
            .headers_mut()
            .insert(UPLOAD_EXPIRES, http_date(video.expires_at));
    }
    Ok(response)
}

fn check_patch(video: &Video, claimed: i64, content_length: Option<i64>) -> Result<(), ApiError> {
    if claimed != video.upload_offset {
        return Err(ApiError::Conflict(format!(
            "Upload-Offset is {claimed} but the upload is at {}",
            video.upload_offset
        )));
    }
    if video.status != AssetStatus::Uploading && content_length.is_some_and(|n| n > 0) {
        return Err(ApiError::Conflict("the upload is already complete".into()));
    }
    if content_length.is_some_and(|n| claimed + n > video.upload_length) {
        return Err(ApiError::TooLarge(format!(
            "the chunk would end past Upload-Length ({})",
            video.upload_length
        )));
    }
    Ok(())
}

/// Takes the lock, re-checks the offset and appends. The work runs in its own task: if the
/// client disconnects, what already arrived is still made durable (and the lock released)
/// instead of being dropped with the request.
async fn write(
    ctx: &Context,
    id: Uuid,
    caller: Uuid,
    claimed: i64,
    body: Body,
) -> Result<i64, ApiError> {
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let lock = uploads::lock(&ctx, id).await?;
        let video = owned_upload(&ctx, id, caller).await?;
        check_patch(&video, claimed, None)?;
        if video.status != AssetStatus::Uploading {
            return Ok(video.upload_offset);
        }
        let offset = uploads::append(&ctx, &video, body.into_data_stream()).await;
        lock.rollback().await.ok();
        offset
    })
    .await
    .map_err(ApiError::unavailable)?
}

async fn terminate(
    State(ctx): State<Context>,
    Caller(caller): Caller,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    require_tus(&headers)?;
    let video = Video::find(ctx.db.pool(), id)
        .await?
        .filter(|v| v.owner_id == caller && !v.is_deleted())
        .ok_or(ApiError::NotFound("no such upload"))?;
    crate::assets::delete(&ctx, &video).await?;
    Ok(StatusCode::NO_CONTENT)
}
