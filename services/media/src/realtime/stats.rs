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
//! interval, the latest. A subscription whose viewer may no longer see the video (an
//! `access_changed` message, [`super::access`]) ends with `NOT_FOUND`.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use platform::Shutdown;
use tokio::sync::Notify;
use uuid::Uuid;

use super::{
    Event, Hub, Received, Subscription, access::Audience, channels, memo::Probe, wire::StatsUpdate,
};

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
/// per interval, and only when they differ from what was sent last; or, once the viewer
/// may no longer see the video, the error that ends it.
pub(super) struct StatsStream {
    /// The viewer, asked again when who may see the video changes (and after a gap,
    /// together with the counters).
    audience: Audience,
    subscription: Subscription,
    probe: Probe,
    interval: Duration,
    first: Option<StatsUpdate>,
    last_sent: Option<StatsUpdate>,
    last_at: tokio::time::Instant,
    done: bool,
}

/// What a hub message means to one subscription.
enum Step {
    /// New counters, with their publication time (none when read afresh).
    Update(StatsUpdate, Option<i64>),
    /// The viewer may no longer see the video: the last item.
    Gone(async_graphql::Error),
}

impl StatsStream {
    /// `now` is sent first; `subscription` watches the video's stats channel.
    pub(super) fn new(
        audience: Audience,
        subscription: Subscription,
        probe: Probe,
        interval: Duration,
        now: StatsUpdate,
    ) -> Self {
        Self {
            audience,
            subscription,
            probe,
            interval,
            first: Some(now),
            last_sent: None,
            last_at: tokio::time::Instant::now(),
            done: false,
        }
    }

    pub(super) fn into_stream(
        self,
    ) -> impl futures::Stream<Item = Result<StatsUpdate, async_graphql::Error>> {
        futures::stream::unfold(self, |mut state| async move {
            state.next().await.map(|update| (update, state))
        })
    }

    async fn next(&mut self) -> Option<Result<StatsUpdate, async_graphql::Error>> {
        if self.done {
            return None;
        }
        if let Some(first) = self.first.take() {
            return Some(Ok(self.sent(first, None)));
        }
        loop {
            let (mut latest, mut at) = match self.wait_for_step().await? {
                Step::Update(update, at) => (update, at),
                Step::Gone(error) => return Some(Err(self.end(error))),
            };
            // Coalesce: whatever else arrives before the interval is up replaces it.
            tokio::time::sleep_until(self.last_at + self.interval).await;
            while let Some(received) = self.subscription.try_recv() {
                match self.step(received).await {
                    Some(Step::Update(update, published)) => (latest, at) = (update, published),
                    Some(Step::Gone(error)) => return Some(Err(self.end(error))),
                    None => {}
                }
            }
            if Some(latest) != self.last_sent {
                return Some(Ok(self.sent(latest, at)));
            }
        }
    }

    async fn wait_for_step(&mut self) -> Option<Step> {
        loop {
            let received = self.subscription.recv().await?;
            if let Some(step) = self.step(received).await {
                return Some(step);
            }
        }
    }

    /// What `received` means here: counters; after missed messages, the counters read
    /// afresh, with the viewer checked again (the missed ones may have said that who may
    /// see the video changed); after an access change, the viewer checked again.
    async fn step(&self, received: Received) -> Option<Step> {
        match received {
            Received::Event(message) => match &message.event {
                Event::Stats(update) => {
                    Some(Step::Update(*update, Some(message.published_at_micros)))
                }
                Event::AccessChanged(_) => self.audience.recheck().await.err().map(Step::Gone),
                _ => None,
            },
            Received::Missed(_) => Some(match self.audience.recheck().await {
                Ok(row) => Step::Update(StatsUpdate::from(&row), None),
                Err(error) => Step::Gone(error),
            }),
        }
    }

    fn end(&mut self, error: async_graphql::Error) -> async_graphql::Error {
        self.done = true;
        error
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
