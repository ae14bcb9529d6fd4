//! Video events → the recommender's catalogue, and the worker that embeds it.
//!
//! The `recommender.videos` queue takes `video.created` (the uploader's metadata),
//! `video.updated` (edits, visibility), `video.ready` and `video.deleted`. A batch of them
//! is applied to PostgreSQL in one stamped transaction (each event once, by id;
//! crate::changes) and acknowledged; every replica's follower then applies it to its
//! in-memory index (crate::follow). Applying an event never waits for the model: a
//! change of text only marks the row as needing an embedding (`text_version`), and the
//! [`embedder`] catches up in the background. So a slow model delays a video's *arrival*
//! in results, never the acknowledgement of other events, and never a removal: deletion
//! and visibility changes take effect as soon as their batch commits.
//!
//! Events may arrive out of order and more than once: any event may create the row, the
//! uploader's metadata is taken from `video.created` only while the row has none (an
//! edit wins), `ready` and `deleted` only ever turn on.

use std::{sync::Arc, time::Duration};

use events::{
    consumer::{self, BatchOutcome},
    envelope::DecodeError,
    video::{VideoEvent, VideoEventKind, VideoMetadata},
};
use lapin::message::Delivery;
use sqlx::{PgConnection, PgPool};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::{Context, changes, embed::Model};

/// The events the videos queue binds.
pub const KINDS: [VideoEventKind; 4] = [
    VideoEventKind::Created,
    VideoEventKind::Updated,
    VideoEventKind::Ready,
    VideoEventKind::Deleted,
];

/// What applying an event did to a video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Its listability is now this (public, ready, not deleted).
    Listable(Uuid, bool),
    Deleted(Uuid),
}

pub fn spawn(ctx: &Context, shutdown: &platform::Shutdown) {
    let pool = ctx.db.pool().clone();
    let wakes = (ctx.embed_wake.clone(), ctx.follow_wake.clone());
    consumer::spawn_batched(
        ctx.rabbit.clone(),
        ctx.config.videos_queue(),
        ctx.config.batching(),
        shutdown,
        move |batch| {
            let (pool, (embed, follow)) = (pool.clone(), wakes.clone());
            async move { handle(&pool, &embed, &follow, batch).await }
        },
    );
}

async fn handle(
    pool: &PgPool,
    embed_wake: &Notify,
    follow_wake: &Notify,
    batch: Vec<Delivery>,
) -> BatchOutcome {
    let mut reject = Vec::new();
    let bodies: Vec<(usize, &[u8])> = batch
        .iter()
        .enumerate()
        .map(|(i, d)| (i, d.data.as_slice()))
        .collect();
    let outcome = async {
        let changes::Stamped { mut tx, stamp } = changes::begin(pool).await?;
        let mut changed = false;
        let mut to_embed = false;
        for (index, body) in bodies {
            match apply(&mut tx, stamp, body).await {
                Ok(Some((_, text_changed))) => {
                    changed = true;
                    to_embed |= text_changed;
                }
                Ok(None) => {}
                Err(ApplyError::Decode(e)) => {
                    if consumer::Outcome::undecodable(&e) == consumer::Outcome::Reject {
                        reject.push(index);
                    }
                }
                Err(ApplyError::Store(e)) => return Err(e),
            }
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>((changed, to_embed))
    }
    .await;
    match outcome {
        Ok((changed, to_embed)) => {
            if changed {
                follow_wake.notify_one();
            }
            if to_embed {
                embed_wake.notify_one();
            }
            metrics::counter!("recommender_video_events_total").increment(batch.len() as u64);
            BatchOutcome::Ack { reject }
        }
        Err(e) => {
            tracing::warn!(error = %e, "video events not applied; will retry");
            BatchOutcome::Retry
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Store(#[from] sqlx::Error),
}

/// Applies one encoded event inside `tx` (a stamped transaction: every row written carries
/// `stamp`, crate::changes). Returns what changed and whether the video's
/// text changed (it needs embedding); None for a duplicate or an event of a type this
/// queue does not apply. An event of a type that is no video event, or that does not
/// decode, is an [`ApplyError::Decode`].
///
/// Dispatches on the envelope's `type` (events::video::VideoEvent), not the routing key
/// (tests and replays deliver straight to the queue).
pub async fn apply(
    tx: &mut PgConnection,
    stamp: i64,
    body: &[u8],
) -> Result<Option<(Change, bool)>, ApplyError> {
    // Decoded before recording the id, so a malformed event is rejected, not swallowed.
    let envelope = VideoEvent::decode(body)?;
    let id = envelope.id;
    let applied = match envelope.data {
        VideoEvent::Created(e) => {
            if !first_time(tx, id).await? {
                return Ok(None);
            }
            match metadata(tx, stamp, e.video_id, e.owner_id, &e.metadata, false).await? {
                Some(applied) => applied,
                None => return Ok(None),
            }
        }
        VideoEvent::Updated(e) => {
            if !first_time(tx, id).await? {
                return Ok(None);
            }
            match metadata(tx, stamp, e.video_id, e.owner_id, &e.metadata, true).await? {
                Some(applied) => applied,
                None => return Ok(None),
            }
        }
        VideoEvent::Ready(e) => {
            if !first_time(tx, id).await? {
                return Ok(None);
            }
            let listable: bool = sqlx::query_scalar(
                "INSERT INTO videos (id, owner_id, ready, change_seq) VALUES ($1, $2, true, $3)
                 ON CONFLICT (id) DO UPDATE SET ready = true, updated_at = now(),
                     change_seq = EXCLUDED.change_seq
                 RETURNING visibility = 'public' AND ready AND NOT deleted",
            )
            .bind(e.video_id)
            .bind(e.owner_id)
            .bind(stamp)
            .fetch_one(&mut *tx)
            .await?;
            (Change::Listable(e.video_id, listable), false)
        }
        VideoEvent::Deleted(e) => {
            if !first_time(tx, id).await? {
                return Ok(None);
            }
            // The row stays (a late video.created must not bring it back); its vector and
            // the users' signals about it go.
            sqlx::query(
                "INSERT INTO videos (id, owner_id, deleted, change_seq) VALUES ($1, $2, true, $3)
                 ON CONFLICT (id) DO UPDATE SET deleted = true, embedding = NULL,
                     title = '', description = '', tags = '{}', updated_at = now(),
                     change_seq = EXCLUDED.change_seq",
            )
            .bind(e.video_id)
            .bind(e.owner_id)
            .bind(stamp)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM user_signals WHERE video_id = $1")
                .bind(e.video_id)
                .execute(&mut *tx)
                .await?;
            (Change::Deleted(e.video_id), false)
        }
        VideoEvent::Uploaded(_)
        | VideoEvent::Progress(_)
        | VideoEvent::Failed(_)
        | VideoEvent::Captions(_) => {
            tracing::debug!(kind = %envelope.kind, "ignored video event");
            return Ok(None);
        }
    };
    Ok(Some(applied))
}

/// Remembers an event id; false if it was already applied.
async fn first_time(conn: &mut PgConnection, event: Uuid) -> sqlx::Result<bool> {
    let inserted =
        sqlx::query("INSERT INTO processed_events (id) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(event)
            .execute(conn)
            .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Stores metadata: from `video.created` only while the row has none, from an edit
/// always. The text version moves only when the embedded text changed.
async fn metadata(
    conn: &mut PgConnection,
    stamp: i64,
    video: Uuid,
    owner: Uuid,
    m: &VideoMetadata,
    is_edit: bool,
) -> sqlx::Result<Option<(Change, bool)>> {
    let row: Option<(bool, bool)> = sqlx::query_as(
        "INSERT INTO videos (id, owner_id, title, description, tags, category, visibility,
                             has_metadata, text_version, change_seq)
         VALUES ($1, $2, $3, $4, $5, $6, $7, true, 1, $9)
         ON CONFLICT (id) DO UPDATE SET
             title = EXCLUDED.title, description = EXCLUDED.description, tags = EXCLUDED.tags,
             category = EXCLUDED.category, visibility = EXCLUDED.visibility,
             has_metadata = true, updated_at = now(), change_seq = EXCLUDED.change_seq,
             text_version = videos.text_version
                 + CASE WHEN (videos.title, videos.description, videos.tags)
                             IS DISTINCT FROM (EXCLUDED.title, EXCLUDED.description, EXCLUDED.tags)
                             OR NOT videos.has_metadata
                        THEN 1 ELSE 0 END
         WHERE NOT videos.deleted AND ($8 OR NOT videos.has_metadata)
         RETURNING visibility = 'public' AND ready AND NOT deleted,
                   embedded_version IS DISTINCT FROM text_version",
    )
    .bind(video)
    .bind(owner)
    .bind(&m.title)
    .bind(&m.description)
    .bind(&m.tags)
    .bind(&m.category)
    .bind(m.visibility.as_str())
    .bind(is_edit)
    .bind(stamp)
    .fetch_optional(conn)
    .await?;
    // No row back: the video was deleted, or this is a late `created` after an edit;
    // nothing changed.
    Ok(row.map(|(listable, pending)| (Change::Listable(video, listable), pending)))
}

/// Embeds what needs embedding, a batch at a time, until shutdown: woken by the video
/// consumer when a text changed, and every few seconds regardless (a wake-up may be lost
/// across a crash; the rows are not). Each stored batch wakes the follower, which puts
/// the vectors into the index. Two replicas may embed the same row at once; the second
/// store wins and the index takes its vector (the same text gives the same vector).
pub fn embedder(
    pool: PgPool,
    model: Arc<Model>,
    wake: Arc<Notify>,
    follow_wake: Arc<Notify>,
    batch_size: usize,
    shutdown: &platform::Shutdown,
) {
    let shutdown = shutdown.triggered();
    tokio::spawn(async move {
        tokio::pin!(shutdown);
        loop {
            let pause = match embed_batch(&pool, &model, &follow_wake, batch_size).await {
                Ok(n) if n == batch_size => Duration::ZERO, // more may be waiting
                Ok(_) => Duration::from_secs(5),
                Err(e) => {
                    tracing::warn!(error = %e, "embedding batch failed; will retry");
                    Duration::from_secs(2)
                }
            };
            if pause.is_zero() {
                continue;
            }
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(pause) => {}
                () = &mut shutdown => return,
            }
        }
    });
}

/// Embeds up to `batch_size` videos whose text changed; returns how many it took.
pub async fn embed_batch(
    pool: &PgPool,
    model: &Arc<Model>,
    follow_wake: &Notify,
    batch_size: usize,
) -> anyhow::Result<usize> {
    let rows: Vec<(Uuid, String, Vec<String>, String, i64)> = sqlx::query_as(
        "SELECT id, title, tags, description, text_version FROM videos
         WHERE has_metadata AND NOT deleted AND embedded_version IS DISTINCT FROM text_version
         ORDER BY updated_at LIMIT $1",
    )
    .bind(batch_size as i64)
    .fetch_all(pool)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let texts: Vec<String> = rows
        .iter()
        .map(|(_, title, tags, description, _)| crate::embed::video_text(title, tags, description))
        .collect();
    let started = std::time::Instant::now();
    let embedder = model.clone();
    let vectors = tokio::task::spawn_blocking(move || embedder.embed(&texts)).await??;
    metrics::histogram!("recommender_embed_batch_seconds").record(started.elapsed().as_secs_f64());

    let changes::Stamped { mut tx, stamp } = changes::begin(pool).await?;
    for ((id, .., text_version), vector) in rows.iter().zip(vectors) {
        // Only if the text is still the one embedded (an edit meanwhile leaves the row
        // pending for the next batch) and the video was not deleted.
        sqlx::query(
            "UPDATE videos SET embedding = $2, embedded_version = $3, model = $4,
                 model_version = $5, embedded_at = now(), change_seq = $6, embedding_seq = $6
             WHERE id = $1 AND text_version = $3 AND NOT deleted",
        )
        .bind(id)
        .bind(&vector)
        .bind(text_version)
        .bind(&model.name)
        .bind(&model.version)
        .bind(stamp)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    follow_wake.notify_one();
    metrics::counter!("recommender_embedded_total").increment(rows.len() as u64);
    Ok(rows.len())
}
