//! Counter changes, coalesced before they are published.
//!
//! A popular video can take hundreds of likes a second; its `videoStats` subscribers want
//! the counts a few times a second, not every increment. So writers only mark the video
//! dirty ([`StatsFeed::touch`], no I/O), and one task per replica, at most once per
//! `REALTIME_STATS_INTERVAL_MILLIS`, reads the counters of every dirty video in one query
//! and publishes each video's current counts. Publishing the counts read from the
//! database (not increments) means a lost or reordered message is corrected by the next
//! one. Each subscriber then coalesces again ([`super::graphql`]), so with several
//! replicas publishing, a client still gets at most one update per interval.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use platform::Shutdown;
use tokio::sync::Notify;
use uuid::Uuid;

use super::{Event, Hub, channels, graphql::StatsUpdate};

#[derive(Clone)]
pub struct StatsFeed {
    dirty: Arc<Mutex<HashSet<Uuid>>>,
    wake: Arc<Notify>,
}

impl StatsFeed {
    pub fn start(hub: Hub, db: sqlx::PgPool, interval: Duration, shutdown: &Shutdown) -> Self {
        let feed = Self {
            dirty: Arc::default(),
            wake: Arc::default(),
        };
        let task = feed.clone();
        let stop = shutdown.triggered();
        tokio::spawn(async move {
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    () = task.wake.notified() => {}
                    () = &mut stop => return,
                }
                // Let the burst that woke us accumulate.
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    () = &mut stop => return,
                }
                let videos: Vec<Uuid> = task.dirty.lock().unwrap().drain().collect();
                if let Err(e) = publish(&hub, &db, &videos).await {
                    tracing::warn!(error = %e, "video stats not published");
                }
            }
        });
        feed
    }

    /// A counter of `video` changed (a like, a comment, a view…).
    pub fn touch(&self, video: Uuid) {
        self.dirty.lock().unwrap().insert(video);
        self.wake.notify_one();
    }
}

async fn publish(hub: &Hub, db: &sqlx::PgPool, videos: &[Uuid]) -> anyhow::Result<()> {
    if videos.is_empty() {
        return Ok(());
    }
    let rows: Vec<(Uuid, i64, i64, i64)> = sqlx::query_as(
        "SELECT id, likes_count, views_count, comments_count FROM videos WHERE id = ANY($1)",
    )
    .bind(videos)
    .fetch_all(db)
    .await?;
    for (video_id, likes, views, comments) in rows {
        let event = Event::Stats(StatsUpdate {
            video_id,
            likes,
            views,
            comments,
        });
        hub.publish(&channels::stats(&video_id), &event).await?;
    }
    Ok(())
}
