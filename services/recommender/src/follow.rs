//! Memory follows PostgreSQL: every replica applies every stamped change
//! ([`crate::changes`]) to its own index and tastes, whichever replica wrote it.
//!
//! The consumers and the embedding worker only write PostgreSQL and then wake this
//! replica's follower, so a change is in this replica's memory a few milliseconds after
//! its commit and in every other replica's within `INDEX_FOLLOW_INTERVAL_MILLIS`. The
//! follower is the only task that inserts into the graph, which is what lets it also take
//! the index's snapshots ([`crate::snapshot`]) without pausing anyone: no insert can run
//! while it dumps, and searches go on.

use std::{sync::Arc, time::Duration};

use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::{sync::Notify, task::JoinHandle, time::Instant};
use uuid::Uuid;

use crate::{
    Serving,
    index::Row,
    snapshot::{self, Snapshots},
    taste::{self, Score, Tastes},
};

/// Rows read per query while catching up.
const PAGE: i64 = 2_000;

/// Where the follower is: the last `videos` row applied, as `(change_seq, id)`, and the
/// last `user_signals` row, as `(change_seq, user_id, video_id)`. Everything at or before
/// them is in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub videos: (i64, Uuid),
    pub signals: (i64, Uuid, Uuid),
}

/// Everything stamped up to `stamp`, whatever its key.
pub fn through(stamp: i64) -> (i64, Uuid) {
    (stamp, Uuid::max())
}

/// A read-only transaction on one snapshot, and the highest stamp in `table` as of it: the
/// rows read in it and that stamp agree, and a change committed after it carries a higher
/// stamp (crate::changes), so nothing falls between a full read and the follower.
async fn consistent_read(
    pool: &PgPool,
    table: &str,
) -> sqlx::Result<(sqlx::Transaction<'static, sqlx::Postgres>, i64)> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let stamp: i64 =
        sqlx::query_scalar(&format!("SELECT coalesce(max(change_seq), 0) FROM {table}"))
            .fetch_one(&mut *tx)
            .await?;
    Ok((tx, stamp))
}

/// Every signal in PostgreSQL, as one consistent read, and the cursor after them.
pub async fn load_tastes(pool: &PgPool, tastes: &Tastes) -> sqlx::Result<(i64, Uuid, Uuid)> {
    let (mut tx, stamp) = consistent_read(pool, "user_signals").await?;
    let signals: Vec<(Uuid, Uuid, f64, OffsetDateTime, bool)> =
        sqlx::query_as("SELECT user_id, video_id, score, score_at, watched FROM user_signals")
            .fetch_all(&mut *tx)
            .await?;
    tx.commit().await?;
    for (user, video, value, at, watched) in signals {
        let score = Score {
            value,
            at: taste::unix(at),
        };
        tastes.set(user, video, score, watched);
    }
    Ok((stamp, Uuid::max(), Uuid::max()))
}

/// Every current vector in PostgreSQL (for a build from scratch), as one consistent
/// read, and the cursor after them.
pub async fn load_vectors(pool: &PgPool) -> sqlx::Result<(Vec<Row>, (i64, Uuid))> {
    let (mut tx, stamp) = consistent_read(pool, "videos").await?;
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, embedding, visibility = 'public' AND ready, embedding_seq FROM videos
         WHERE embedding IS NOT NULL AND NOT deleted",
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((rows, through(stamp)))
}

/// Applies every change after `cursor` to `serving`, moving the cursor; returns how many
/// rows it read.
pub async fn catch_up(
    pool: &PgPool,
    serving: &Arc<Serving>,
    cursor: &mut Cursor,
) -> anyhow::Result<usize> {
    let mut total = 0;
    loop {
        let read = videos_page(pool, serving, &mut cursor.videos).await?;
        total += read;
        if read < PAGE as usize {
            break;
        }
    }
    loop {
        let read = signals_page(pool, &serving.tastes, &mut cursor.signals).await?;
        total += read;
        if read < PAGE as usize {
            break;
        }
    }
    Ok(total)
}

/// One page of changed videos. Flags are applied as read; vectors the index does not
/// have yet (by stamp) are read in a second query, only for those rows, and inserted
/// together.
async fn videos_page(
    pool: &PgPool,
    serving: &Arc<Serving>,
    cursor: &mut (i64, Uuid),
) -> anyhow::Result<usize> {
    let rows: Vec<(Uuid, i64, i64, bool, bool, bool)> = sqlx::query_as(
        "SELECT id, change_seq, embedding_seq, visibility = 'public' AND ready AND NOT deleted,
                deleted, embedding IS NOT NULL
         FROM videos WHERE (change_seq, id) > ($1, $2)
         ORDER BY change_seq, id LIMIT $3",
    )
    .bind(cursor.0)
    .bind(cursor.1)
    .bind(PAGE)
    .fetch_all(pool)
    .await?;
    let index = &serving.index;
    let mut wanted = Vec::new();
    for &(id, _, embedding_seq, listable, deleted, embedded) in &rows {
        if deleted {
            index.remove(id);
            serving.tastes.forget_video(id);
        } else if !embedded {
            // Not embedded yet, or its vector was made by another model.
            index.drop_vector(id, listable);
        } else if index.stamp(&id) != Some(embedding_seq) {
            wanted.push(id);
        } else {
            index.set_listable(id, listable);
        }
    }
    if !wanted.is_empty() {
        // The current vector, whatever its stamp now: a newer one than the first query
        // saw comes back with its own stamp, and its row again on the next page.
        let vectors: Vec<Row> = sqlx::query_as(
            "SELECT id, embedding, visibility = 'public' AND ready, embedding_seq FROM videos
             WHERE id = ANY($1) AND embedding IS NOT NULL AND NOT deleted",
        )
        .bind(&wanted)
        .fetch_all(pool)
        .await?;
        let serving = serving.clone();
        tokio::task::spawn_blocking(move || serving.index.upsert_many(vectors)).await?;
    }
    if let Some(&(id, stamp, ..)) = rows.last() {
        *cursor = (stamp, id);
    }
    Ok(rows.len())
}

/// One page of changed signals.
async fn signals_page(
    pool: &PgPool,
    tastes: &Tastes,
    cursor: &mut (i64, Uuid, Uuid),
) -> sqlx::Result<usize> {
    let rows: Vec<(Uuid, Uuid, f64, OffsetDateTime, bool, i64)> = sqlx::query_as(
        "SELECT user_id, video_id, score, score_at, watched, change_seq FROM user_signals
         WHERE (change_seq, user_id, video_id) > ($1, $2, $3)
         ORDER BY change_seq, user_id, video_id LIMIT $4",
    )
    .bind(cursor.0)
    .bind(cursor.1)
    .bind(cursor.2)
    .bind(PAGE)
    .fetch_all(pool)
    .await?;
    for &(user, video, value, at, watched, _) in &rows {
        let score = Score {
            value,
            at: taste::unix(at),
        };
        tastes.set(user, video, score, watched);
    }
    if let Some(&(user, video, .., stamp)) = rows.last() {
        *cursor = (stamp, user, video);
    }
    Ok(rows.len())
}

/// Follows PostgreSQL until shutdown: on every wake-up (a local commit) and every
/// `interval` (other replicas' commits), then takes a snapshot when one is due.
pub fn spawn(
    pool: PgPool,
    serving: Arc<Serving>,
    mut cursor: Cursor,
    wake: Arc<Notify>,
    interval: Duration,
    mut snapshots: Option<Snapshots>,
    shutdown: &platform::Shutdown,
) {
    let shutdown = shutdown.triggered();
    tokio::spawn(async move {
        tokio::pin!(shutdown);
        // An upload still running (the next snapshot waits for it).
        let mut uploading: Option<JoinHandle<()>> = None;
        loop {
            match catch_up(&pool, &serving, &mut cursor).await {
                Ok(read) if read > 0 => {
                    metrics::gauge!("recommender_index_vectors").set(serving.index.len() as f64);
                    metrics::gauge!("recommender_index_dead_slots")
                        .set(serving.index.dead_slots() as f64);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "following changes failed; will retry"),
            }
            metrics::gauge!("recommender_follow_stamp").set(cursor.videos.0 as f64);
            if let Some(snapshots) = snapshots.as_mut()
                && uploading.as_ref().is_none_or(|u| u.is_finished())
                && snapshots.due(cursor.videos, Instant::now())
            {
                uploading = snapshot::take(snapshots, &pool, &serving, cursor.videos).await;
            }
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(interval) => {}
                () = &mut shutdown => break,
            }
        }
        if let Some(upload) = uploading {
            // A snapshot half uploaded is never referenced (the manifest goes last).
            upload.abort();
        }
    });
}
