//! Resumable uploads into an S3 multipart upload of `sources/{id}`.
//!
//! What is acknowledged to the client (`upload_offset`) is always durable:
//!
//! * every full part is uploaded to S3 *before* the row records it and moves the offset;
//! * bytes after the last full part that a request leaves behind (the client sent a small
//!   chunk, or the connection broke) are written as a staged piece `staging/{id}/{start}`
//!   before the row records them; when a later request completes the part, the pieces
//!   are read back into it.
//!
//! A crash between an S3 write and the row update leaves an orphan that the retry
//! overwrites (parts by number, pieces by start offset), so a restarted service, or
//! another replica, resumes from the row alone. One request writes an upload at a time:
//! a transaction-scoped advisory lock, released by PostgreSQL even if the holder dies.

pub mod parts;

use std::fmt::Display;

use aws_sdk_s3::{
    primitives::ByteStream,
    types::{CompletedMultipartUpload, CompletedPart},
};
use bytes::Bytes;
use events::{
    Envelope,
    video::{TranscodeJob, VideoUploaded},
};
use futures::{Stream, StreamExt};
use sqlx::{Postgres, Transaction};
use tokio::io::AsyncReadExt;
use uuid::Uuid;

use crate::{
    Context,
    error::ApiError,
    queues,
    videos::{AssetStatus, Video, keys},
};
use parts::PartAssembler;

/// Takes the upload's write lock, waiting up to the configured time for a request that
/// still holds it. The lock lives as long as the returned transaction.
pub async fn lock(ctx: &Context, id: Uuid) -> Result<Transaction<'static, Postgres>, ApiError> {
    let deadline = tokio::time::Instant::now() + ctx.config.uploads.lock_wait;
    let mut tx = ctx.db.pool().begin().await?;
    loop {
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(lock_key(id))
            .fetch_one(&mut *tx)
            .await?;
        if locked {
            return Ok(tx);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::Locked);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Without the lock: for the sweeper, which skips busy uploads.
pub async fn try_lock(
    ctx: &Context,
    id: Uuid,
) -> Result<Option<Transaction<'static, Postgres>>, sqlx::Error> {
    let mut tx = ctx.db.pool().begin().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(lock_key(id))
        .fetch_one(&mut *tx)
        .await?;
    Ok(locked.then_some(tx))
}

/// The random tail of the UUIDv7: distinct per upload for all practical purposes.
fn lock_key(id: Uuid) -> i64 {
    let bytes = id.as_bytes();
    i64::from_be_bytes(bytes[8..16].try_into().expect("8 bytes"))
}

#[derive(sqlx::FromRow)]
struct Piece {
    start_offset: i64,
    size: i64,
}

/// Appends `body` at the video's current offset (the caller holds the lock and checked
/// the client's `Upload-Offset`). Returns the new, durable offset. A body that breaks off
/// keeps what arrived; a body that runs past `Upload-Length` is refused (413) and nothing
/// of it beyond the full parts already stored is kept.
pub async fn append<S, E>(ctx: &Context, video: &Video, mut body: S) -> Result<i64, ApiError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Display,
{
    let part_size = usize::try_from(video.part_size).expect("part size fits in memory");
    let completed_parts: i64 =
        sqlx::query_scalar("SELECT count(*) FROM upload_parts WHERE video_id = $1")
            .bind(video.id)
            .fetch_one(ctx.db.pool())
            .await?;
    let mut pieces: Vec<Piece> = sqlx::query_as(
        "SELECT start_offset, size FROM upload_pieces WHERE video_id = $1 ORDER BY start_offset",
    )
    .bind(video.id)
    .fetch_all(ctx.db.pool())
    .await?;
    let mut state = State {
        offset: video.upload_offset,
        parts: completed_parts,
    };
    let staged = state.offset - completed_parts * video.part_size;
    let piece_bytes: i64 = pieces.iter().map(|p| p.size).sum();
    if staged != piece_bytes || staged < 0 || staged >= video.part_size {
        return Err(ApiError::unavailable(anyhow::anyhow!(
            "upload {} is inconsistent: offset {} with {completed_parts} parts and {piece_bytes} staged bytes",
            video.id,
            state.offset
        )));
    }
    let mut assembler = PartAssembler::new(part_size, staged as usize);
    let remaining = video.upload_length - state.offset;
    let mut received: i64 = 0;
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                // The client went away mid-request: keep what arrived (tus clients resume
                // from the offset HEAD reports).
                tracing::info!(video_id = %video.id, error = %e, "upload body broke off; keeping what arrived");
                break;
            }
        };
        received += chunk.len() as i64;
        if received > remaining {
            return Err(ApiError::TooLarge(format!(
                "the request carries more than the {remaining} bytes left of Upload-Length"
            )));
        }
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            let taken = assembler.fill(rest);
            rest = &rest[taken..];
            if assembler.is_full() {
                flush_part(ctx, video, &mut assembler, &mut pieces, &mut state).await?;
            }
        }
    }
    let fresh = assembler.fresh().len() as i64;
    if fresh > 0 && state.offset + fresh == video.upload_length {
        // The last part may be short.
        flush_part(ctx, video, &mut assembler, &mut pieces, &mut state).await?;
    } else if fresh > 0 {
        stage_piece(ctx, video, &mut assembler, &mut state).await?;
    }
    if state.offset == video.upload_length {
        finalize(ctx, video.id).await?;
    }
    Ok(state.offset)
}

struct State {
    /// Durable (acknowledged) offset.
    offset: i64,
    /// Completed parts.
    parts: i64,
}

/// Uploads the assembler's part (staged pieces read back first), then records it.
async fn flush_part(
    ctx: &Context,
    video: &Video,
    assembler: &mut PartAssembler,
    pieces: &mut Vec<Piece>,
    state: &mut State,
) -> Result<(), ApiError> {
    let part_start = state.parts * video.part_size;
    read_pieces(
        ctx,
        video.id,
        pieces,
        part_start,
        assembler.placeholder_mut(),
    )
    .await?;
    let fresh = assembler.fresh().len() as i64;
    let part = assembler.take_part();
    let size = part.len() as i64;
    let number =
        i32::try_from(state.parts + 1).map_err(|_| ApiError::TooLarge("too many parts".into()))?;
    let upload_id = video
        .s3_upload_id
        .as_deref()
        .ok_or_else(|| ApiError::Conflict("the upload is already complete".into()))?;
    let uploaded = ctx
        .storage
        .client
        .upload_part()
        .bucket(&ctx.storage.name)
        .key(keys::source(video.id))
        .upload_id(upload_id)
        .part_number(number)
        .content_length(size)
        .body(ByteStream::from(part))
        .send()
        .await
        .map_err(ApiError::storage)?;
    let etag = uploaded.e_tag().unwrap_or_default().to_owned();

    let new_offset = state.offset + fresh;
    debug_assert_eq!(new_offset, part_start + size);
    let mut tx = ctx.db.pool().begin().await?;
    sqlx::query(
        "INSERT INTO upload_parts (video_id, part_number, etag, size) VALUES ($1, $2, $3, $4)
         ON CONFLICT (video_id, part_number) DO UPDATE SET etag = $3, size = $4",
    )
    .bind(video.id)
    .bind(number)
    .bind(&etag)
    .bind(size)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM upload_pieces WHERE video_id = $1")
        .bind(video.id)
        .execute(&mut *tx)
        .await?;
    advance(&mut tx, ctx, video.id, state.offset, new_offset).await?;
    tx.commit().await?;

    let staged: Vec<String> = pieces
        .drain(..)
        .map(|p| keys::piece(video.id, p.start_offset))
        .collect();
    crate::storage::delete_keys_in_background(ctx, staged);
    state.offset = new_offset;
    state.parts += 1;
    Ok(())
}

/// Writes the request's leftover bytes as a staged piece, then records it.
async fn stage_piece(
    ctx: &Context,
    video: &Video,
    assembler: &mut PartAssembler,
    state: &mut State,
) -> Result<(), ApiError> {
    let staged = assembler.staged();
    let bytes = assembler.take_part().slice(staged..);
    let size = bytes.len() as i64;
    ctx.storage
        .client
        .put_object()
        .bucket(&ctx.storage.name)
        .key(keys::piece(video.id, state.offset))
        .content_length(size)
        .body(ByteStream::from(bytes))
        .send()
        .await
        .map_err(ApiError::storage)?;
    let mut tx = ctx.db.pool().begin().await?;
    sqlx::query(
        "INSERT INTO upload_pieces (video_id, start_offset, size) VALUES ($1, $2, $3)
         ON CONFLICT (video_id, start_offset) DO UPDATE SET size = $3",
    )
    .bind(video.id)
    .bind(state.offset)
    .bind(size)
    .execute(&mut *tx)
    .await?;
    advance(&mut tx, ctx, video.id, state.offset, state.offset + size).await?;
    tx.commit().await?;
    state.offset += size;
    Ok(())
}

/// Moves the acknowledged offset (and the expiry), guarding against a concurrent writer.
async fn advance(
    tx: &mut Transaction<'static, Postgres>,
    ctx: &Context,
    id: Uuid,
    from: i64,
    to: i64,
) -> Result<(), ApiError> {
    let moved = sqlx::query(
        "UPDATE videos SET upload_offset = $3, updated_at = now(),
                expires_at = now() + $4 * interval '1 second'
         WHERE id = $1 AND upload_offset = $2 AND status = 'uploading'",
    )
    .bind(id)
    .bind(from)
    .bind(to)
    .bind(ctx.config.uploads.expiry.as_secs_f64())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if moved == 1 {
        Ok(())
    } else {
        Err(ApiError::Conflict(
            "the upload changed while this request was writing it".into(),
        ))
    }
}

/// Reads the staged pieces of the current part into `into` (its first bytes).
async fn read_pieces(
    ctx: &Context,
    id: Uuid,
    pieces: &[Piece],
    part_start: i64,
    into: &mut [u8],
) -> Result<(), ApiError> {
    for piece in pieces {
        let at = usize::try_from(piece.start_offset - part_start).expect("piece inside the part");
        let end = at + usize::try_from(piece.size).expect("piece size");
        let object = ctx
            .storage
            .client
            .get_object()
            .bucket(&ctx.storage.name)
            .key(keys::piece(id, piece.start_offset))
            .send()
            .await
            .map_err(ApiError::storage)?;
        object
            .body
            .into_async_read()
            .read_exact(&mut into[at..end])
            .await
            .map_err(ApiError::unavailable)?;
    }
    Ok(())
}

/// Completes the multipart upload of a fully received video and moves it to
/// `processing`, queueing `video.uploaded` and the transcode job in the same transaction.
/// Idempotent: the sweeper calls it again for an upload whose completion was cut short.
pub async fn finalize(ctx: &Context, id: Uuid) -> Result<(), ApiError> {
    let Some(video) = Video::find(ctx.db.pool(), id).await? else {
        return Ok(());
    };
    if video.status != AssetStatus::Uploading || video.upload_offset != video.upload_length {
        return Ok(());
    }
    let upload_id = video.s3_upload_id.clone().unwrap_or_default();
    let parts: Vec<(i32, String)> = sqlx::query_as(
        "SELECT part_number, etag FROM upload_parts WHERE video_id = $1 ORDER BY part_number",
    )
    .bind(id)
    .fetch_all(ctx.db.pool())
    .await?;
    let completed = CompletedMultipartUpload::builder()
        .set_parts(Some(
            parts
                .into_iter()
                .map(|(number, etag)| {
                    CompletedPart::builder()
                        .part_number(number)
                        .e_tag(etag)
                        .build()
                })
                .collect(),
        ))
        .build();
    let key = keys::source(id);
    let completion = ctx
        .storage
        .client
        .complete_multipart_upload()
        .bucket(&ctx.storage.name)
        .key(&key)
        .upload_id(&upload_id)
        .multipart_upload(completed)
        .send()
        .await;
    if let Err(e) = completion {
        // An earlier attempt may have completed it and crashed before recording that.
        let stored = ctx
            .storage
            .client
            .head_object()
            .bucket(&ctx.storage.name)
            .key(&key)
            .send()
            .await
            .ok()
            .and_then(|h| h.content_length());
        if stored != Some(video.upload_length) {
            return Err(ApiError::storage(e));
        }
    }

    let mut tx = ctx.db.pool().begin().await?;
    let moved = sqlx::query(
        "UPDATE videos SET status = $2, s3_upload_id = NULL, updated_at = now()
         WHERE id = $1 AND status = 'uploading'",
    )
    .bind(id)
    .bind(AssetStatus::Processing)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if moved == 1 {
        let uploaded = Envelope::new(VideoUploaded {
            video_id: id,
            owner_id: video.owner_id,
            size_bytes: video.upload_length as u64,
        });
        events::outbox::enqueue(&mut tx, &ctx.events, &uploaded).await?;
        let job = Envelope::new(TranscodeJob {
            video_id: id,
            owner_id: video.owner_id,
            source_key: key,
        });
        queues::enqueue_job(&mut tx, &ctx.config.queue_prefix, &job).await?;
    }
    tx.commit().await?;
    ctx.wake_relay();
    crate::storage::delete_prefix_in_background(ctx, keys::staging_prefix(id));
    tracing::info!(video_id = %id, bytes = video.upload_length, "upload complete; transcode queued");
    Ok(())
}
