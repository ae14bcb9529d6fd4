//! `trendingChanged`: the global top list, pushed when it changes.
//!
//! # Where changes come from
//!
//! The ranker writes the trending sorted sets in Redis and, after every batch it applies,
//! announces it on the real-time hub's `trending` channel
//! (`events::trending::trending_moved_channel`). A media replica with `trendingChanged`
//! subscribers watches that channel once, through its one hub connection, like any other
//! live update (the hub reference-counts it), so announcements cost nothing on replicas
//! that nobody asks for trending.
//!
//! # One read per window per replica
//!
//! All subscribers of a window on a replica share one [`Board`] task. On an announcement,
//! at most once per `REALTIME_TRENDING_INTERVAL_MILLIS` (1 s), it reads the top
//! `GRAPHQL_MAX_PAGE` listed videos (the same read as the `trending` query) and, when the
//! list differs from the previous one, publishes it through a [`watch`] channel. A watch
//! holds only the latest value, so a subscriber that is slow to send skips lists instead
//! of queueing them: memory does not grow with slow clients. Each subscriber pushes its
//! own first `limit` videos, and only when those changed (order included), so a change
//! further down the list is no news to a top-5 subscriber.
//!
//! The ranker's scores only change when events arrive (forward decay: a set's order never
//! moves with time alone), so announcements cover ranking changes. Listing changes do not
//! go through the ranker (a video made private or deleted drops out at read time), nor
//! does an announcement lost while the hub's Redis connection was down; both are caught
//! by a re-read every `REALTIME_TRENDING_REFRESH_SECS` (and at once after a hub gap).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use async_graphql::{Context, Result, Subscription};
use events::trending::Scope;
use futures::{Stream, stream};
use tokio::{sync::watch, time::Instant};
use uuid::Uuid;

use super::{TrendingWindow, check_limit, key, top_rows};
use crate::{
    catalogue::{Video, VideoRow},
    context::AppContext,
    realtime::{Received, channels, metrics::counted},
};

/// A window's current top list, as read by its board (`None` until the first read).
type TopList = Option<Arc<Vec<VideoRow>>>;

/// The boards running on this replica, one per window that has subscribers.
#[derive(Clone, Default)]
pub struct TrendingBoards {
    boards: Arc<Mutex<HashMap<TrendingWindow, watch::Sender<TopList>>>>,
}

impl TrendingBoards {
    /// Follows `window`'s top list, starting its board if it is the first subscriber.
    fn follow(&self, app: &AppContext, window: TrendingWindow) -> watch::Receiver<TopList> {
        let mut boards = self.boards.lock().unwrap();
        if let Some(sender) = boards.get(&window) {
            return sender.subscribe();
        }
        let (sender, receiver) = watch::channel(None);
        boards.insert(window, sender.clone());
        let board = Board {
            app: app.clone(),
            window,
            sender,
            boards: self.clone(),
        };
        tokio::spawn(board.run());
        receiver
    }

    /// Removes `window`'s board if nobody follows it any more (checked under the lock
    /// [`TrendingBoards::follow`] subscribes under, so no subscriber is left on a board
    /// that stopped).
    fn retire(&self, window: TrendingWindow, sender: &watch::Sender<TopList>) -> bool {
        let mut boards = self.boards.lock().unwrap();
        if sender.receiver_count() > 0 {
            return false;
        }
        boards.remove(&window);
        true
    }

    /// Windows with a running board (for tests).
    pub fn running(&self) -> usize {
        self.boards.lock().unwrap().len()
    }
}

/// The task that reads one window's top list for every local subscriber.
struct Board {
    app: AppContext,
    window: TrendingWindow,
    sender: watch::Sender<TopList>,
    boards: TrendingBoards,
}

impl Board {
    async fn run(self) {
        let config = self.app.realtime.config.clone();
        let key = key(&self.app, self.window, &Scope::Global);
        let max = self.app.config.limits.max_page;
        let stop = self.app.realtime.shutdown.triggered();
        tokio::pin!(stop);
        let mut announcements = None;
        let mut last: Option<Vec<Uuid>> = None;
        let mut last_read: Option<Instant> = None;
        loop {
            // Subscribe before reading: an announcement made after the read is then
            // sure to trigger another read.
            if announcements.is_none() {
                match self.app.realtime.hub.subscribe(channels::TRENDING).await {
                    Ok(subscription) => announcements = Some(subscription),
                    Err(e) => tracing::warn!(error = %e, "trending announcements unavailable"),
                }
            }
            if let Some(at) = last_read {
                tokio::select! {
                    () = tokio::time::sleep_until(at + config.trending_interval) => {}
                    () = &mut stop => return,
                }
            }
            // Everything announced so far is covered by the read below.
            if let Some(subscription) = announcements.as_mut() {
                while subscription.try_recv().is_some() {}
            }
            last_read = Some(Instant::now());
            match top_rows(&self.app, &key, max).await {
                Ok(rows) => {
                    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
                    if last.as_ref() != Some(&ids) {
                        last = Some(ids);
                        self.sender.send_replace(Some(Arc::new(rows)));
                    }
                }
                Err(e) => tracing::warn!(error = ?e, window = ?self.window, "trending not read"),
            }
            // Wait for a reason to read again.
            let refresh = tokio::time::sleep(match announcements {
                Some(_) => config.trending_refresh,
                None => config.trending_interval,
            });
            tokio::pin!(refresh);
            loop {
                tokio::select! {
                    received = next_announcement(&mut announcements) => match received {
                        Some(_) => break,
                        // The hub is gone: the service is stopping.
                        None => return,
                    },
                    () = &mut refresh => break,
                    () = self.sender.closed() => {
                        if self.boards.retire(self.window, &self.sender) {
                            return;
                        }
                    }
                    () = &mut stop => return,
                }
            }
        }
    }
}

/// The next announcement (or gap), or never without a subscription.
async fn next_announcement(
    announcements: &mut Option<crate::realtime::Subscription>,
) -> Option<Received> {
    match announcements {
        Some(subscription) => subscription.recv().await,
        None => std::future::pending().await,
    }
}

#[derive(Default)]
pub struct TrendingSubscription;

#[Subscription]
impl TrendingSubscription {
    /// The `limit` most popular listed videos now (as `trending(window)` lists them):
    /// the current list at once, then the new list whenever it changes (membership or
    /// order), at most once per `REALTIME_TRENDING_INTERVAL_MILLIS` (1 s).
    async fn trending_changed(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "TrendingWindow::Day")] window: TrendingWindow,
        #[graphql(default = 10)] limit: i32,
    ) -> Result<impl Stream<Item = Vec<Video>> + use<>> {
        let app = AppContext::get(ctx);
        let limit = check_limit(app, limit)?;
        let receiver = app.trending_boards.follow(app, window);
        let state = (receiver, None::<Vec<Uuid>>);
        Ok(counted(stream::unfold(
            state,
            move |(mut receiver, mut pushed)| async move {
                loop {
                    let list = receiver.borrow_and_update().clone();
                    if let Some(list) = list {
                        let top = &list[..limit.min(list.len())];
                        let ids: Vec<Uuid> = top.iter().map(|r| r.id).collect();
                        if pushed.as_ref() != Some(&ids) {
                            pushed = Some(ids);
                            let videos = top.iter().cloned().map(Video::from).collect();
                            return Some((videos, (receiver, pushed)));
                        }
                    }
                    // The board stopped (the service is stopping): end the subscription.
                    receiver.changed().await.ok()?;
                }
            },
        )))
    }
}
