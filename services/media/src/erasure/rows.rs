//! An erased account's rows in PostgreSQL: videos, likes, follows. Each function loops
//! over transactions of at most [`BATCH`] rows until none is left, and returns how many it
//! removed. A counter moves in the transaction that removes its rows, by exactly the rows
//! removed, so it always equals its rows, also when a crash cuts the loop short.

use events::{
    Envelope,
    interaction::{Action, ViewerKey},
    outbox,
    video::VideoDeleted,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    Context,
    catalogue::{VideoRow, store::COLUMNS},
    interactions,
};

/// Rows per transaction: large enough that an ordinary account takes one or two, small
/// enough that no transaction holds many locks for long.
pub const BATCH: i64 = 100;

/// Deletes the account's videos as `deleteVideo` does: tombstone and `video.deleted` in
/// one transaction, so the video service purges each one's files, then ends their live
/// subscriptions.
pub async fn bury_videos(ctx: &Context, user: Uuid) -> sqlx::Result<u64> {
    let mut total = 0;
    loop {
        let mut tx = ctx.db.pool().begin().await?;
        let buried: Vec<Uuid> = sqlx::query_scalar(
            "UPDATE videos SET deleted_at = now()
             WHERE id IN (SELECT id FROM videos WHERE owner_id = $1 AND deleted_at IS NULL
                          ORDER BY id LIMIT $2 FOR UPDATE)
               AND deleted_at IS NULL
             RETURNING id",
        )
        .bind(user)
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        for &video_id in &buried {
            let event = VideoDeleted {
                video_id,
                owner_id: user,
            };
            outbox::enqueue(&mut tx, &ctx.events, &Envelope::new(event)).await?;
        }
        tx.commit().await?;
        ctx.relay.notify();
        // Live subscribers of these videos end now, on every replica, not only once
        // `video.deleted` comes back through the catalogue queue.
        for &video_id in &buried {
            ctx.realtime.access_changed(video_id).await;
        }
        total += buried.len() as u64;
        if (buried.len() as i64) < BATCH {
            return Ok(total);
        }
    }
}

/// Deletes the account's likes and takes each off its video's `likes_count`. The videos
/// are locked first, in id order, as `likeVideo` locks a video before its like row, so
/// an erasure and concurrent likes never deadlock. Each removed like puts its retraction
/// (`unlike`, with the like's time) in the outbox, so trending forgets exactly it.
pub async fn drop_likes(ctx: &Context, user: Uuid) -> sqlx::Result<u64> {
    let mut total = 0;
    loop {
        let mut tx = ctx.db.pool().begin().await?;
        let videos: Vec<VideoRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM videos
             WHERE id IN (SELECT video_id FROM likes WHERE user_id = $1 ORDER BY video_id LIMIT $2)
             ORDER BY id FOR UPDATE"
        ))
        .bind(user)
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        let ids: Vec<Uuid> = videos.iter().map(|v| v.id).collect();
        let removed: Vec<(Uuid, OffsetDateTime)> = sqlx::query_as(
            "DELETE FROM likes WHERE user_id = $1 AND video_id = ANY($2)
             RETURNING video_id, created_at",
        )
        .bind(user)
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        // One like per (user, video): each removed row is one off its video's count.
        let unliked: Vec<Uuid> = removed.iter().map(|(video, _)| *video).collect();
        sqlx::query("UPDATE videos SET likes_count = likes_count - 1 WHERE id = ANY($1)")
            .bind(&unliked)
            .execute(&mut *tx)
            .await?;
        for (video, liked_at) in &removed {
            if let Some(row) = videos.iter().find(|v| v.id == *video) {
                let action = Action::Unlike {
                    liked_at: *liked_at,
                };
                let event = interactions::interaction(row, ViewerKey::user(user), action);
                ctx.interactions.enqueue(&mut tx, event).await?;
            }
        }
        tx.commit().await?;
        ctx.relay.notify();
        for video in &unliked {
            ctx.realtime.stats.touch(*video);
        }
        total += removed.len() as u64;
        if (videos.len() as i64) < BATCH {
            return Ok(total);
        }
    }
}

/// Deletes the account's subscriptions and takes each off its channel's
/// `subscriber_count`. The channel rows are locked in id order, so erasures of two
/// accounts following the same channels do not deadlock.
pub async fn drop_follows(ctx: &Context, user: Uuid) -> sqlx::Result<u64> {
    let mut total = 0;
    loop {
        let mut tx = ctx.db.pool().begin().await?;
        let channels: Vec<Uuid> = sqlx::query_scalar(
            "DELETE FROM follows
             WHERE follower_id = $1
               AND channel_id IN (SELECT channel_id FROM follows WHERE follower_id = $1
                                  ORDER BY channel_id LIMIT $2)
             RETURNING channel_id",
        )
        .bind(user)
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query("SELECT id FROM channels WHERE id = ANY($1) ORDER BY id FOR UPDATE")
            .bind(&channels)
            .execute(&mut *tx)
            .await?;
        // One follow per (follower, channel): each removed row is one subscriber less.
        sqlx::query(
            "UPDATE channels SET subscriber_count = subscriber_count - 1 WHERE id = ANY($1)",
        )
        .bind(&channels)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        total += channels.len() as u64;
        if (channels.len() as i64) < BATCH {
            return Ok(total);
        }
    }
}

/// Deletes the follows of the account's channel and its subscriber count with them; the
/// channel's row goes with its last follower.
pub async fn drop_followers(ctx: &Context, user: Uuid) -> sqlx::Result<u64> {
    let mut total = 0;
    loop {
        let mut tx = ctx.db.pool().begin().await?;
        let removed = sqlx::query(
            "DELETE FROM follows
             WHERE channel_id = $1
               AND follower_id IN (SELECT follower_id FROM follows WHERE channel_id = $1
                                   ORDER BY follower_id LIMIT $2)",
        )
        .bind(user)
        .bind(BATCH)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("UPDATE channels SET subscriber_count = subscriber_count - $2 WHERE id = $1")
            .bind(user)
            .bind(removed as i64)
            .execute(&mut *tx)
            .await?;
        let last = (removed as i64) < BATCH;
        if last {
            sqlx::query("DELETE FROM channels WHERE id = $1 AND subscriber_count = 0")
                .bind(user)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        total += removed;
        if last {
            return Ok(total);
        }
    }
}

/// Deletes the account's playlists; their items go with them (`ON DELETE CASCADE`), up to
/// [`crate::playlists::MAX_ITEMS`] each, hence a few playlists per transaction. Others'
/// playlists keep the account's videos as items, hidden now that they are deleted.
pub async fn drop_playlists(ctx: &Context, user: Uuid) -> sqlx::Result<u64> {
    delete_in_batches(
        ctx,
        "DELETE FROM playlists
         WHERE id IN (SELECT id FROM playlists WHERE owner_id = $1 LIMIT $2)",
        user,
        10,
    )
    .await
}

/// Runs `sql`, a DELETE of at most `$2` rows of user `$1`, until it removes fewer than
/// `batch`; returns how many it removed in all.
async fn delete_in_batches(ctx: &Context, sql: &str, user: Uuid, batch: i64) -> sqlx::Result<u64> {
    let mut total = 0;
    loop {
        let removed = sqlx::query(sql)
            .bind(user)
            .bind(batch)
            .execute(ctx.db.pool())
            .await?
            .rows_affected();
        total += removed;
        if (removed as i64) < batch {
            return Ok(total);
        }
    }
}

/// Deletes the account's notifications, those it caused for others (its comments, its
/// subscriptions, its videos' announcements, rows or posts), its notification settings
/// and read mark, then any fan-out of its videos still pending. [`BATCH`] × 10 rows per statement.
pub async fn drop_notifications(ctx: &Context, user: Uuid) -> sqlx::Result<u64> {
    let mut total = 0;
    for sql in [
        "DELETE FROM notifications WHERE id IN (
             SELECT id FROM notifications WHERE recipient_id = $1 LIMIT $2)",
        "DELETE FROM notifications WHERE id IN (
             SELECT id FROM notifications WHERE actor_id = $1 LIMIT $2)",
    ] {
        total += delete_in_batches(ctx, sql, user, BATCH * 10).await?;
    }
    for sql in [
        "DELETE FROM notification_settings WHERE user_id = $1",
        "DELETE FROM notification_marks WHERE user_id = $1",
        "DELETE FROM notification_fanouts WHERE channel_id = $1",
        // A large channel's posts (one per video, not per subscriber).
        "DELETE FROM notification_posts WHERE channel_id = $1",
    ] {
        sqlx::query(sql).bind(user).execute(ctx.db.pool()).await?;
    }
    Ok(total)
}

/// Deletes the account's held words and blocks, and the blocks naming it (each user's
/// blocks are capped, so these are small).
pub async fn drop_comment_rules(ctx: &Context, user: Uuid) -> sqlx::Result<u64> {
    let mut removed = 0;
    for sql in [
        "DELETE FROM held_words WHERE channel_id = $1",
        "DELETE FROM channel_blocks WHERE channel_id = $1 OR user_id = $1",
        "DELETE FROM user_blocks WHERE blocker_id = $1 OR blocked_id = $1",
    ] {
        removed += sqlx::query(sql)
            .bind(user)
            .execute(ctx.db.pool())
            .await?
            .rows_affected();
    }
    Ok(removed)
}

/// Deletes the account's watch history and its pause.
pub async fn drop_history(ctx: &Context, user: Uuid) -> sqlx::Result<u64> {
    let removed = delete_in_batches(
        ctx,
        "DELETE FROM watch_history WHERE user_id = $1 AND video_id IN (
             SELECT video_id FROM watch_history WHERE user_id = $1 LIMIT $2)",
        user,
        BATCH * 10,
    )
    .await?;
    sqlx::query("DELETE FROM history_paused WHERE user_id = $1")
        .bind(user)
        .execute(ctx.db.pool())
        .await?;
    Ok(removed)
}
