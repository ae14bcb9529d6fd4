//! The subscriptions: `commentEvents`, `uploadProgress`, `videoStats`.
//!
//! Each resolver checks what the viewer may see, subscribes to its hub channel (waiting
//! for Redis to confirm), and returns a stream that turns hub messages into GraphQL
//! values. The stream owns the hub [`Subscription`]: when the client completes the
//! operation or disconnects, the stream is dropped and so is the channel reference.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Mutex,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use async_graphql::{Context, Enum, ID, Object, Result, Subscription as GqlSubscription};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use futures::{Stream, stream};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    channels,
    hub::{Event, HubError, Message, Received, Subscription},
    memo::{Memoised, OperationKey},
    metrics,
};
use crate::{
    catalogue::{VideoRow, parse_id, store as videos},
    comments::{Comment, store::CommentDoc},
    error::Error,
    schema::{AppContext, viewer},
};

// ---------------------------------------------------------------------------------------
// What travels through the hub.

/// What happened to a comment.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[graphql(name = "CommentChangeKind")]
pub enum ChangeKind {
    Added,
    Edited,
    Deleted,
}

/// A comment as it is after the change (its `version` is the change's position).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommentChange {
    pub kind: ChangeKind,
    pub comment: CommentDoc,
}

/// Transcoding progress of one video (from `video.progress`), or its end (`ready`,
/// `failed`, from `video.ready`/`video.failed`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProgressUpdate {
    pub video_id: Uuid,
    pub owner_id: Uuid,
    pub stage: String,
    pub percent: f64,
    pub speed: Option<f64>,
    pub eta_seconds: Option<f64>,
    pub failure_reason: Option<String>,
}

impl ProgressUpdate {
    /// Nothing follows `ready` or `failed`.
    pub fn is_final(&self) -> bool {
        matches!(self.stage.as_str(), "ready" | "failed")
    }
}

/// A video's counters.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatsUpdate {
    pub video_id: Uuid,
    pub likes: i64,
    pub views: i64,
    pub comments: i64,
}

impl From<&VideoRow> for StatsUpdate {
    fn from(row: &VideoRow) -> Self {
        Self {
            video_id: row.id,
            likes: row.likes_count,
            views: row.views_count,
            comments: row.comments_count,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Delivery latency.

/// Set by a subscription's stream to the publication time of the event it is yielding;
/// read by the connection once the resulting `next` message is on the socket, so the
/// latency histogram covers publish → Redis → hub → GraphQL → socket.
///
/// It also carries the operation's [`OperationKey`] (set by the connection) and, for the
/// item being yielded, what the connection needs to share its payload (see
/// [`super::memo`]).
#[derive(Clone, Default)]
pub struct Probe(Arc<ProbeInner>);

#[derive(Default)]
struct ProbeInner {
    at: AtomicI64,
    key: Option<OperationKey>,
    memo: Mutex<Option<MemoState>>,
}

/// The memo's part in the item being yielded.
pub enum MemoState {
    /// Its payload was rendered already: send this.
    Hit(Arc<str>),
    /// Render it, then store the payload in this message's memo.
    Miss(Arc<Message>),
}

impl Probe {
    /// The probe of an operation whose results may be shared under `key`.
    pub fn with_key(key: OperationKey) -> Self {
        Self(Arc::new(ProbeInner {
            key: Some(key),
            ..Default::default()
        }))
    }

    pub fn key(&self) -> Option<&OperationKey> {
        self.0.key.as_ref()
    }

    pub fn mark(&self, published_at_micros: i64) {
        self.0.at.store(published_at_micros, Ordering::Relaxed);
    }

    /// The marked time, once.
    pub fn take(&self) -> Option<i64> {
        Some(self.0.at.swap(0, Ordering::Relaxed)).filter(|at| *at > 0)
    }

    /// Looks `message` up in its memo under this operation's key: `Rendered` when the
    /// payload is there (the connection will send it), else `Execute(item)`.
    pub fn memoised<T>(&self, message: &Arc<Message>, item: impl FnOnce() -> T) -> Memoised<T> {
        let Some(key) = &self.0.key else {
            return Memoised::Execute(item());
        };
        let (state, out) = match message.memo.get(key) {
            Some(payload) => (MemoState::Hit(payload), Memoised::Rendered),
            None => (MemoState::Miss(message.clone()), Memoised::Execute(item())),
        };
        *self.0.memo.lock().unwrap() = Some(state);
        out
    }

    /// What [`Probe::memoised`] decided for the item just yielded, once.
    pub fn take_memo(&self) -> Option<MemoState> {
        self.0.memo.lock().unwrap().take()
    }
}

fn probe(ctx: &Context<'_>) -> Probe {
    ctx.data_opt::<Probe>().cloned().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// GraphQL types.

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum CommentEventKind {
    /// A new comment (or reply).
    Added,
    /// Its text changed.
    Edited,
    /// It was deleted (the comment comes without text or author).
    Deleted,
    /// Events were missed (the client fell behind, or the server lost its feed). The
    /// subscription ends after this; subscribe again with `after: cursor` to get what was
    /// missed.
    Resync,
}

pub struct CommentEvent {
    kind: CommentEventKind,
    cursor: String,
    comment: Option<CommentSource>,
}

/// Live events share the hub's decoded message; replayed ones own their document.
enum CommentSource {
    Live(Arc<Message>),
    Stored(Box<CommentDoc>),
}

#[Object]
impl CommentEvent {
    async fn kind(&self) -> CommentEventKind {
        self.kind
    }

    /// Where this event is in the video's comment history: pass it as `after` to resume
    /// after it.
    async fn cursor(&self) -> &str {
        &self.cursor
    }

    /// The comment as it is after the change; null for `RESYNC`.
    async fn comment(&self) -> Option<Comment> {
        match self.comment.as_ref()? {
            CommentSource::Stored(doc) => Some(Comment((**doc).clone())),
            CommentSource::Live(message) => match &message.event {
                Event::Comment(change) => Some(Comment(change.comment.clone())),
                _ => None,
            },
        }
    }
}

#[Object(name = "UploadProgress")]
impl ProgressUpdate {
    async fn video_id(&self) -> ID {
        ID(self.video_id.to_string())
    }

    /// `probing`, `transcoding`, `uploading`, `done` while the transcoder works; then
    /// `ready` or `failed`, after which the subscription completes.
    async fn stage(&self) -> &str {
        &self.stage
    }

    /// 0–100, never decreasing.
    async fn percent(&self) -> f64 {
        self.percent
    }

    /// Encoding speed relative to real time, when known.
    async fn speed(&self) -> Option<f64> {
        self.speed
    }

    async fn eta_seconds(&self) -> Option<f64> {
        self.eta_seconds
    }

    /// Why it failed (stage `failed`).
    async fn failure_reason(&self) -> Option<&str> {
        self.failure_reason.as_deref()
    }
}

#[Object(name = "VideoStats")]
impl StatsUpdate {
    async fn video_id(&self) -> ID {
        ID(self.video_id.to_string())
    }

    async fn like_count(&self) -> i64 {
        self.likes
    }

    async fn view_count(&self) -> i64 {
        self.views
    }

    async fn comment_count(&self) -> i64 {
        self.comments
    }
}

// ---------------------------------------------------------------------------------------
// Resolvers.

#[derive(Default)]
pub struct RealtimeSubscription;

#[GqlSubscription]
impl RealtimeSubscription {
    /// Comments of a video as they are added, edited and deleted (replies included).
    /// With `after` (the `cursor` of the last event received), first everything that
    /// changed since, from storage, oldest first, then live events, with no gap and no
    /// duplicate between the two.
    async fn comment_events(
        &self,
        ctx: &Context<'_>,
        video_id: ID,
        after: Option<String>,
    ) -> Result<impl Stream<Item = Memoised<CommentEvent>> + use<>> {
        let video = parse_id(&video_id)?;
        let after = after.as_deref().map(decode_cursor).transpose()?;
        let app = AppContext::get(ctx);
        visible_video(ctx, video).await?;
        // Live first, then the replay: whatever is published from now on reaches the
        // subscription, so nothing falls between the replay's read and the live feed.
        let subscription = subscribe(app, &channels::comments(&video)).await?;
        let feed = CommentFeed {
            comments: app.comments.clone(),
            video,
            replay: after.map(|after| Replay {
                from: after.to_string(),
                next: after.to_string(),
                pending: VecDeque::new(),
                exhausted: false,
                fetched: 0,
            }),
            replay_max: app.realtime.config.replay_max,
            replayed: HashMap::new(),
            // Without `after`, a resync resumes from "now": what changed after subscribing.
            cursor: after.unwrap_or_else(Uuid::now_v7),
            subscription,
            probe: probe(ctx),
            done: false,
        };
        Ok(counted(stream::unfold(feed, |mut feed| async move {
            feed.next().await.map(|event| (event, feed))
        })))
    }

    /// Transcoding progress of one of the viewer's own videos, until it is `ready` or
    /// `failed`. Updates arrive at most every half second (the transcoder's pace).
    async fn upload_progress(
        &self,
        ctx: &Context<'_>,
        video_id: ID,
    ) -> Result<impl Stream<Item = ProgressUpdate> + use<>> {
        let me = viewer(ctx).require()?;
        let video = parse_id(&video_id)?;
        let app = AppContext::get(ctx);
        // The catalogue may not know the video yet (its `video.created` is on its way);
        // then the events' owner decides, below.
        let row = videos::get(app.db.pool(), video)
            .await
            .map_err(Error::from)?;
        if let Some(row) = row
            && (row.owner_id != me || row.deleted_at.is_some())
        {
            return Err(Error::Forbidden("only its owner follows an upload").into());
        }
        let subscription = subscribe(app, &channels::progress(&video)).await?;
        let state = (subscription, probe(ctx), -1.0_f64, false);
        Ok(counted(stream::unfold(
            state,
            move |(mut subscription, probe, mut last, done)| async move {
                if done {
                    return None;
                }
                loop {
                    let Received::Event(message) = subscription.recv().await? else {
                        continue; // progress supersedes itself: missing some is harmless
                    };
                    let Event::Progress(update) = &message.event else {
                        continue;
                    };
                    // Replicas publish concurrently, so an older update may arrive late.
                    if update.owner_id != me || (update.percent < last && !update.is_final()) {
                        continue;
                    }
                    last = update.percent;
                    probe.mark(message.published_at_micros);
                    let done = update.is_final();
                    return Some((update.clone(), (subscription, probe, last, done)));
                }
            },
        )))
    }

    /// A video's like, view and comment counts: now, then whenever they change, at most
    /// once per `REALTIME_STATS_INTERVAL_MILLIS` (the latest value wins).
    async fn video_stats(
        &self,
        ctx: &Context<'_>,
        video_id: ID,
    ) -> Result<impl Stream<Item = StatsUpdate> + use<>> {
        let video = parse_id(&video_id)?;
        let app = AppContext::get(ctx);
        let subscription = subscribe(app, &channels::stats(&video)).await?;
        let now = StatsUpdate::from(&visible_video(ctx, video).await?);
        let state = StatsStream {
            pool: app.db.pool().clone(),
            video,
            subscription,
            probe: probe(ctx),
            interval: app.realtime.config.stats_interval,
            first: Some(now),
            last_sent: None,
            last_at: tokio::time::Instant::now(),
        };
        Ok(counted(stream::unfold(state, |mut state| async move {
            state.next().await.map(|update| (update, state))
        })))
    }
}

async fn subscribe(app: &AppContext, channel: &str) -> Result<Subscription, Error> {
    app.realtime
        .hub
        .subscribe(channel)
        .await
        .map_err(|e: HubError| Error::Internal(e.into()))
}

/// The video, if the viewer may see it. Through the batching loader: a reconnect storm
/// opens thousands of subscriptions in seconds, and one query per subscribe would queue
/// them all for the pool's few connections.
async fn visible_video(ctx: &Context<'_>, video: Uuid) -> Result<VideoRow, async_graphql::Error> {
    let app = AppContext::get(ctx);
    Ok(app
        .videos
        .load_one(video)
        .await?
        .filter(|v| v.visible_to(viewer(ctx).id()))
        .ok_or(Error::NotFound("no such video"))?)
}

/// Keeps `media_realtime_subscriptions` right however the stream ends.
pub(crate) fn counted<S: Stream>(inner: S) -> impl Stream<Item = S::Item> {
    struct Guard;
    impl Drop for Guard {
        fn drop(&mut self) {
            metrics::subscription_ended();
        }
    }
    metrics::subscription_started();
    let guard = Guard;
    futures::StreamExt::map(inner, move |item| {
        let _ = &guard;
        item
    })
}

// ---------------------------------------------------------------------------------------
// Cursors: a change's version (a UUIDv7), base64url.

pub fn encode_cursor(version: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(version.as_bytes())
}

pub fn decode_cursor(cursor: &str) -> Result<Uuid, Error> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| Uuid::from_slice(&b).ok())
        .ok_or_else(|| Error::bad_input("invalid cursor"))
}

// ---------------------------------------------------------------------------------------
// commentEvents: replay, then live.

/// Every comment write stamps the comment with a fresh `version` (a UUIDv7: time-ordered)
/// and publishes the new state. A client's cursor is the version of the last change it
/// saw; "what it missed" is every comment whose version is newer, in version order.
struct CommentFeed {
    comments: crate::comments::store::Comments,
    video: Uuid,
    replay: Option<Replay>,
    replay_max: usize,
    /// Comment id → version delivered by the replay. A live event for the same comment at
    /// the same (or an older) version was already shown: skipping it is what makes the
    /// seam duplicate-free.
    replayed: HashMap<String, String>,
    /// The version of the last event delivered (where a resync resumes).
    cursor: Uuid,
    subscription: Subscription,
    probe: Probe,
    done: bool,
}

struct Replay {
    /// The client's `after`: comments created after it are new to the client.
    from: String,
    /// Where the next page starts.
    next: String,
    pending: VecDeque<CommentDoc>,
    exhausted: bool,
    fetched: usize,
}

const REPLAY_PAGE: i64 = 100;

impl CommentFeed {
    async fn next(&mut self) -> Option<Memoised<CommentEvent>> {
        if self.done {
            return None;
        }
        if let Some(event) = self.next_replayed().await {
            return Some(Memoised::Execute(event));
        }
        loop {
            match self.subscription.recv().await? {
                Received::Missed(_) => return Some(Memoised::Execute(self.resync())),
                Received::Event(message) => {
                    let Event::Comment(change) = &message.event else {
                        continue;
                    };
                    let Some(version) = change.comment.version.as_deref() else {
                        continue;
                    };
                    if self
                        .replayed
                        .get(&change.comment.id)
                        .is_some_and(|shown| shown.as_str() >= version)
                    {
                        continue; // the replay already showed this state
                    }
                    let parsed = Uuid::parse_str(version).ok();
                    self.cursor = parsed.unwrap_or(self.cursor);
                    self.probe.mark(message.published_at_micros);
                    let kind = match change.kind {
                        ChangeKind::Added => CommentEventKind::Added,
                        ChangeKind::Edited => CommentEventKind::Edited,
                        ChangeKind::Deleted => CommentEventKind::Deleted,
                    };
                    let cursor = self.cursor;
                    let event = || CommentEvent {
                        kind,
                        cursor: encode_cursor(cursor),
                        comment: Some(CommentSource::Live(message.clone())),
                    };
                    // Everything in a live event comes from the message itself (the
                    // cursor is its version), so identical operations render it
                    // identically; an unparsable version would leave this subscriber's
                    // own cursor in it, so that one is not shared.
                    return Some(match parsed {
                        Some(_) => self.probe.memoised(&message, event),
                        None => Memoised::Execute(event()),
                    });
                }
            }
        }
    }

    /// The next stored change after the client's cursor, reading a page at a time.
    async fn next_replayed(&mut self) -> Option<CommentEvent> {
        let replay = self.replay.as_mut()?;
        if replay.pending.is_empty() && !replay.exhausted {
            match self
                .comments
                .changed_since(self.video, &replay.next, REPLAY_PAGE)
                .await
            {
                Ok(page) => {
                    replay.exhausted = (page.len() as i64) < REPLAY_PAGE;
                    replay.fetched += page.len();
                    if let Some(last) = page.last().and_then(|c| c.version.clone()) {
                        replay.next = last;
                    }
                    replay.pending.extend(page);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "comment replay failed");
                    return Some(self.resync());
                }
            }
            if replay.fetched > self.replay_max {
                // Too far behind to replay event by event: reload instead.
                return Some(self.resync());
            }
        }
        let Some(doc) = replay.pending.pop_front() else {
            self.replay = None;
            return None;
        };
        let version = doc.version.clone().unwrap_or_default();
        let kind = if doc.deleted {
            CommentEventKind::Deleted
        } else if doc.id > replay.from {
            CommentEventKind::Added
        } else {
            CommentEventKind::Edited
        };
        self.cursor = Uuid::parse_str(&version).unwrap_or(self.cursor);
        self.replayed.insert(doc.id.clone(), version);
        Some(CommentEvent {
            kind,
            cursor: encode_cursor(self.cursor),
            comment: Some(CommentSource::Stored(Box::new(doc))),
        })
    }

    /// Tells the client to resume from its last cursor, and ends the subscription.
    fn resync(&mut self) -> CommentEvent {
        self.done = true;
        metrics::resync();
        CommentEvent {
            kind: CommentEventKind::Resync,
            cursor: encode_cursor(self.cursor),
            comment: None,
        }
    }
}

// ---------------------------------------------------------------------------------------
// videoStats: the latest counters, at most once per interval.

struct StatsStream {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let v = Uuid::now_v7();
        assert_eq!(decode_cursor(&encode_cursor(v)).unwrap(), v);
        assert!(decode_cursor("nope").is_err());
        assert!(decode_cursor("").is_err());
    }

    #[test]
    fn versions_order_as_strings_as_they_do_in_time() {
        let a = Uuid::now_v7();
        std::thread::sleep(Duration::from_millis(2));
        let b = Uuid::now_v7();
        assert!(a.to_string() < b.to_string());
    }

    #[test]
    fn events_survive_the_wire() {
        let event = Event::Stats(StatsUpdate {
            video_id: Uuid::now_v7(),
            likes: 3,
            views: 2,
            comments: 1,
        });
        let json = serde_json::to_vec(&super::super::hub::Wire {
            at: 5,
            event: &event,
        })
        .unwrap();
        let back: super::super::hub::Wire<Event> = serde_json::from_slice(&json).unwrap();
        assert_eq!(back.at, 5);
        assert!(matches!(back.event, Event::Stats(s) if s.likes == 3));
    }
}
