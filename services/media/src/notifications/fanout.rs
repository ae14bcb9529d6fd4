//! Telling a channel's subscribers about its new video, in batches.
//!
//! The catalogue's `video.ready` (or the edit that makes a ready video public) writes one
//! small job row, `notification_fanouts`, in its own transaction ([`enqueue`]): the event
//! is acknowledged as soon as the video is ready, whatever the channel's size, and the
//! job exists exactly when the video became listed. This worker then walks the channel's
//! followers in id order, [`FanoutConfig::batch`] at a time, each batch one transaction
//! that inserts the batch's notifications and moves the job's `after_follower` past it
//! (or deletes the job after the last). A crash between batches resumes at the next one;
//! a batch that committed is never redone, and one redone after a crash mid-batch finds
//! its rows' `dedupe_key` taken. No transaction holds more than one batch of rows, and
//! the catalogue's queue never waits for any of it.
//!
//! Jobs are claimed with `FOR UPDATE SKIP LOCKED`, so every replica's worker helps and no
//! two work on the same video. The replica whose catalogue wrote a job wakes its worker at
//! once; the others notice within [`FanoutConfig::poll`].
//!
//! A channel with more than [`FanoutConfig::fan_in_above`] subscribers when the job
//! starts is a fan-in instead: the job's one step writes one `notification_posts` row,
//! which every subscriber's list and unread count read from then on (crate::
//! notifications::store), and announces it live with one hub message on the channel's
//! `posts:` topic, which its subscribers' `notificationAdded` streams listen to. Nothing
//! is written or sent per subscriber.
//!
//! After each batch commits, its notifications go to `notificationAdded` subscribers
//! through the hub, in one round trip per batch (`Hub::publish_many`).

use std::{sync::Arc, time::Duration};

use sqlx::PgConnection;
use tokio::sync::Notify;
use uuid::Uuid;

use super::{Kind, store::NotificationRow};
use crate::{
    Context,
    realtime::{Event, channels},
};

#[derive(Debug, Clone, Copy)]
pub struct FanoutConfig {
    /// `NOTIFICATION_FANOUT_BATCH`: followers notified per transaction.
    pub batch: i64,
    /// `NOTIFICATION_FANOUT_POLL_MILLIS`: how often an idle worker looks for jobs other
    /// replicas wrote (its own wake it at once).
    pub poll: Duration,
    /// `NOTIFICATION_FANIN_SUBSCRIBERS`: a channel with more subscribers than this has a
    /// new video read by each subscriber on demand (one post row) instead of written to
    /// each (crate::notifications, "Large channels").
    pub fan_in_above: i64,
}

/// Wakes this replica's worker when a job was written here.
#[derive(Clone, Default)]
pub struct FanoutWake(Arc<Notify>);

impl FanoutWake {
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// Writes the job of notifying `channel`'s followers of `video`, in the caller's
/// transaction (once per video while one is pending).
pub async fn enqueue(conn: &mut PgConnection, video: Uuid, channel: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO notification_fanouts (video_id, channel_id) VALUES ($1, $2)
         ON CONFLICT (video_id) DO NOTHING",
    )
    .bind(video)
    .bind(channel)
    .execute(conn)
    .await?;
    Ok(())
}

/// Runs the worker until shutdown.
pub fn spawn(ctx: &Context, shutdown: &platform::Shutdown) {
    let ctx = ctx.clone();
    let stop = shutdown.triggered();
    tokio::spawn(async move {
        tokio::pin!(stop);
        let config = ctx.config.notifications;
        loop {
            let idle = match step(&ctx, config).await {
                Ok(Some(_)) => continue,
                Ok(None) => config.poll,
                Err(e) => {
                    tracing::warn!(error = %e, "notification fan-out batch failed; will retry");
                    config.poll.max(Duration::from_secs(1))
                }
            };
            tokio::select! {
                _ = &mut stop => return,
                _ = ctx.fanout_wake.0.notified() => {}
                _ = tokio::time::sleep(idle) => {}
            }
        }
    });
}

/// Does one batch of the oldest unclaimed job, if any; returns how many it notified.
pub async fn step(ctx: &Context, config: FanoutConfig) -> sqlx::Result<Option<usize>> {
    let mut tx = ctx.db.pool().begin().await?;
    let job: Option<(Uuid, Uuid, Option<Uuid>)> = sqlx::query_as(
        "SELECT video_id, channel_id, after_follower FROM notification_fanouts
         ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED",
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some((video, channel, after)) = job else {
        return Ok(None);
    };
    // Made private or deleted while the job waited: nobody else is told.
    let listed: bool = sqlx::query_scalar(&format!(
        "SELECT EXISTS (SELECT 1 FROM videos WHERE id = $1 AND {})",
        crate::catalogue::store::LISTED
    ))
    .bind(video)
    .fetch_one(&mut *tx)
    .await?;
    // A large channel: the job's first (and only) step posts the video.
    if listed && after.is_none() {
        let subscribers: i64 = sqlx::query_scalar(
            "SELECT coalesce((SELECT subscriber_count FROM channels WHERE id = $1), 0)",
        )
        .bind(channel)
        .fetch_one(&mut *tx)
        .await?;
        if subscribers > config.fan_in_above {
            // None: posted before (listed, unlisted, listed again), told once already.
            let post = write_post(&mut tx, video, channel).await?;
            finish(&mut tx, video).await?;
            tx.commit().await?;
            if let Some(post) = post {
                metrics::counter!("media_notification_posts_total").increment(1);
                let event = Event::Notification(post.announcement(video));
                if let Err(e) = ctx
                    .realtime
                    .hub
                    .publish(&channels::posts(&channel), &event)
                    .await
                {
                    tracing::warn!(error = %e, %video, "a large channel's post not published live");
                }
            }
            return Ok(Some(0));
        }
    }
    let followers: Vec<Uuid> = if listed {
        next_followers(&mut tx, channel, after, config.batch).await?
    } else {
        Vec::new()
    };
    let written: Vec<NotificationRow> = if followers.is_empty() {
        Vec::new()
    } else {
        insert_batch(&mut tx, video, &followers).await?
    };
    match followers.last() {
        Some(last) if followers.len() as i64 == config.batch => {
            sqlx::query("UPDATE notification_fanouts SET after_follower = $2 WHERE video_id = $1")
                .bind(video)
                .bind(last)
                .execute(&mut *tx)
                .await?;
        }
        _ => finish(&mut tx, video).await?,
    }
    tx.commit().await?;
    metrics::counter!("media_notifications_fanned_out_total").increment(written.len() as u64);
    super::announce(ctx, &written).await;
    Ok(Some(written.len()))
}

/// The next batch of `channel`'s followers after `after`, in id order.
async fn next_followers(
    conn: &mut PgConnection,
    channel: Uuid,
    after: Option<Uuid>,
    batch: i64,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar(
        "SELECT follower_id FROM follows
         WHERE channel_id = $1 AND ($2::uuid IS NULL OR follower_id > $2)
         ORDER BY follower_id LIMIT $3",
    )
    .bind(channel)
    .bind(after)
    .bind(batch)
    .fetch_all(conn)
    .await
}

/// Ends the job.
async fn finish(conn: &mut PgConnection, video: Uuid) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM notification_fanouts WHERE video_id = $1")
        .bind(video)
        .execute(conn)
        .await?;
    Ok(())
}

/// A large channel's new video, as every subscriber reads it (migrations/0012).
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
struct Post {
    id: Uuid,
    created_at: time::OffsetDateTime,
}

impl Post {
    /// The post as one live message for all the channel's subscribers: no recipient
    /// (nil); each subscriber's stream fills in its own viewer.
    fn announcement(self, video: Uuid) -> NotificationRow {
        NotificationRow {
            id: self.id,
            recipient_id: Uuid::nil(),
            kind: Kind::NewVideo.as_str().to_owned(),
            actor_id: None,
            video_id: Some(video),
            comment_id: None,
            detail: None,
            created_at: self.created_at,
            read_at: None,
        }
    }
}

/// Writes the one row a fan-in's subscribers read; `None` if the video was posted before.
async fn write_post(
    conn: &mut PgConnection,
    video: Uuid,
    channel: Uuid,
) -> sqlx::Result<Option<Post>> {
    sqlx::query_as(
        "INSERT INTO notification_posts (id, video_id, channel_id) VALUES ($1, $2, $3)
         ON CONFLICT (video_id) DO NOTHING
         RETURNING id, created_at",
    )
    .bind(Uuid::now_v7())
    .bind(video)
    .bind(channel)
    .fetch_optional(conn)
    .await
}

/// One batch's `new_video` notifications, skipping followers who turned the kind off.
async fn insert_batch(
    conn: &mut PgConnection,
    video: Uuid,
    followers: &[Uuid],
) -> sqlx::Result<Vec<NotificationRow>> {
    let kind = Kind::NewVideo;
    // Time-ordered ids: the primary key grows at its end instead of taking a random
    // place per row. No actor: it is the video's owner (the `actor` field says so), and
    // leaving it out keeps these rows, the most numerous, out of the actor index.
    let ids: Vec<Uuid> = followers.iter().map(|_| Uuid::now_v7()).collect();
    sqlx::query_as(&format!(
        "INSERT INTO notifications AS n (id, recipient_id, kind, dedupe_key, video_id)
         SELECT r.id, r.recipient, $3, $4, $5 FROM unnest($1::uuid[], $2::uuid[]) AS r(id, recipient)
         WHERE NOT EXISTS (SELECT 1 FROM notification_settings s
                           WHERE s.user_id = r.recipient AND s.kind = $3 AND s.delivery = 'off')
         ON CONFLICT ON CONSTRAINT notifications_once DO NOTHING
         RETURNING {}",
        super::store::COLUMNS
    ))
    .bind(&ids)
    .bind(followers)
    .bind(kind.as_str())
    .bind(format!("{}:{video}", kind.as_str()))
    .bind(video)
    .fetch_all(conn)
    .await
}
