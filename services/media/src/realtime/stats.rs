//! Counter changes, coalesced before they are published.
//!
//! A popular video can take hundreds of likes a second; its `videoStats` subscribers want
//! the counts a few times a second, not every increment. So writers only mark the video
//! dirty ([`StatsFeed::touch`], no I/O), and one task per replica, at most once per
//! `REALTIME_STATS_INTERVAL_MILLIS`, reads the counters of every dirty video in one query
//! and publishes each video's current counts. Publishing the counts read from the
//! database (not increments) means a lost or reordered message is corrected by the next
//! one. Each subscriber then coalesces again ([`StatsStream`], what `videoStats` yields),
//! so with several replicas publishing, a client still gets at most one update per
//! interval, the latest.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use platform::Shutdown;
use tokio::sync::Notify;
use uuid::Uuid;

use super::{Event, Hub, Received, Subscription, channels, memo::Probe, wire::StatsUpdate};
use crate::catalogue::store as videos;

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

/// One `videoStats` subscription: the counters now, then the latest counters at most once
/// per interval, and only when they differ from what was sent last.
pub(super) struct StatsStream {
    pool: sqlx::PgPool,
    video: Uuid,
    subscription: Subscription,
    probe: Probe,
    interval: Duration,
    first: Option<StatsUpdate>,
    last_sent: Option<StatsUpdate>,
    last_at: tokio::time::Instant,
}

impl StatsStream {
    /// `now` is sent first; `subscription` watches the video's stats channel.
    pub(super) fn new(
        pool: sqlx::PgPool,
        video: Uuid,
        subscription: Subscription,
        probe: Probe,
        interval: Duration,
        now: StatsUpdate,
    ) -> Self {
        Self {
            pool,
            video,
            subscription,
            probe,
            interval,
            first: Some(now),
            last_sent: None,
            last_at: tokio::time::Instant::now(),
        }
    }

    pub(super) fn into_stream(self) -> impl futures::Stream<Item = StatsUpdate> {
        futures::stream::unfold(self, |mut state| async move {
            state.next().await.map(|update| (update, state))
        })
    }

    async fn next(&mut self) -> Option<StatsUpdate> {
        if let Some(first) = self.first.take() {
            return Some(self.sent(first, None));
        }
        loop {
            let mut latest = self.wait_for_update().await?;
            // Coalesce: whatever else arrives before the interval is up replaces it.
            tokio::time::sleep_until(self.last_at + self.interval).await;
            while let Some(received) = self.subscription.try_recv() {
                if let Some(update) = self.update_from(received).await {
                    latest = update;
                }
            }
            if Some(latest.0) != self.last_sent {
                return Some(self.sent(latest.0, latest.1));
            }
        }
    }

    async fn wait_for_update(&mut self) -> Option<(StatsUpdate, Option<i64>)> {
        loop {
            let received = self.subscription.recv().await?;
            if let Some(update) = self.update_from(received).await {
                return Some(update);
            }
        }
    }

    /// A counter update, with its publication time; after missed messages, the counters
    /// are read afresh.
    async fn update_from(&self, received: Received) -> Option<(StatsUpdate, Option<i64>)> {
        match received {
            Received::Event(message) => match &message.event {
                Event::Stats(update) => Some((*update, Some(message.published_at_micros))),
                _ => None,
            },
            Received::Missed(_) => videos::get(&self.pool, self.video)
                .await
                .ok()
                .flatten()
                .map(|row| (StatsUpdate::from(&row), None)),
        }
    }

    fn sent(&mut self, update: StatsUpdate, published_at: Option<i64>) -> StatsUpdate {
        if let Some(at) = published_at {
            self.probe.mark(at);
        }
        self.last_sent = Some(update);
        self.last_at = tokio::time::Instant::now();
        update
    }
}
