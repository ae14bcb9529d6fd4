//! `commentEvents`: a video's comment changes, replayed from MongoDB after the client's
//! cursor, then live from the hub, with no gap and no duplicate at the seam.
//!
//! Every comment write stamps the comment with a fresh `version` (a UUIDv7: time-ordered)
//! and publishes the new state. A client's cursor is the version of the last change it
//! saw ([`crate::cursor::encode_version`]); "what it missed" is every comment whose
//! version is newer, in version order.
//!
//! Invariants:
//! * the resolver subscribes to the hub *before* the replay reads storage, so anything
//!   written after the read reaches the live feed;
//! * a live event whose comment the replay already showed at the same or a newer version
//!   is skipped (the seam is duplicate-free);
//! * whatever cannot be delivered in order (the subscriber lagged, the hub lost Redis, the
//!   replay failed or is longer than `REALTIME_REPLAY_MAX`) becomes one `RESYNC` carrying
//!   the cursor to resume from, and the subscription ends;
//! * an `access_changed` message ends the feed with `NOT_FOUND` once the viewer may no
//!   longer see the video ([`super::access`]).

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
};

use async_graphql::{Enum, Object};
use futures::{Stream, stream};
use uuid::Uuid;

use super::{
    access::Audience,
    hub::{Message, Received, Subscription},
    memo::{Memoised, Probe},
    metrics,
    wire::{ChangeKind, Event},
};
use crate::{
    comments::{
        Comment,
        store::{CommentDoc, Comments},
    },
    cursor::encode_version,
};

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

/// One `commentEvents` subscription's state: the replay (while it lasts), then the live
/// feed.
pub(super) struct CommentFeed {
    comments: Comments,
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
    /// The viewer, asked again whenever who may see the video changes.
    audience: Audience,
    done: bool,
}

/// What the feed yields: an event, or the error that ends it (the viewer may no longer
/// see the video).
pub type FeedItem = Result<Memoised<CommentEvent>, async_graphql::Error>;

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
    /// The feed of `video`'s changes after `after` (none: from now on), over a hub
    /// `subscription` of the video's comment channel that is already confirmed.
    pub(super) fn new(
        comments: Comments,
        video: Uuid,
        after: Option<Uuid>,
        replay_max: usize,
        subscription: Subscription,
        probe: Probe,
        audience: Audience,
    ) -> Self {
        Self {
            comments,
            video,
            replay: after.map(|after| Replay {
                from: after.to_string(),
                next: after.to_string(),
                pending: VecDeque::new(),
                exhausted: false,
                fetched: 0,
            }),
            replay_max,
            replayed: HashMap::new(),
            // Without `after`, a resync resumes from "now": what changed after subscribing.
            cursor: after.unwrap_or_else(Uuid::now_v7),
            subscription,
            probe,
            audience,
            done: false,
        }
    }

    /// The feed's events, until `RESYNC`, the viewer losing sight of the video, or the
    /// hub's end.
    pub(super) fn into_stream(self) -> impl Stream<Item = FeedItem> {
        stream::unfold(self, |mut feed| async move {
            feed.next().await.map(|event| (event, feed))
        })
    }

    async fn next(&mut self) -> Option<FeedItem> {
        if self.done {
            return None;
        }
        if let Some(event) = self.next_replayed().await {
            return Some(Ok(Memoised::Execute(event)));
        }
        loop {
            match self.subscription.recv().await? {
                Received::Missed(_) => return Some(Ok(Memoised::Execute(self.resync()))),
                Received::Event(message) => {
                    if let Event::AccessChanged(_) = &message.event {
                        if let Err(gone) = self.audience.recheck().await {
                            self.done = true;
                            return Some(Err(gone));
                        }
                        continue;
                    }
                    let Event::Comment(change) = &message.event else {
                        continue;
                    };
                    let Some(version) = change.comment.version.as_deref() else {
                        continue;
                    };
                    if self.audience.blocks(&change.comment.author_id) {
                        continue;
                    }
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
                        cursor: encode_version(cursor),
                        comment: Some(CommentSource::Live(message.clone())),
                    };
                    // Everything in a live event comes from the message itself (the
                    // cursor is its version), so identical operations render it
                    // identically; an unparsable version would leave this subscriber's
                    // own cursor in it, so that one is not shared.
                    return Some(Ok(match parsed {
                        Some(_) => self.probe.memoised(&message, event),
                        None => Memoised::Execute(event()),
                    }));
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
                    let audience = &self.audience;
                    replay
                        .pending
                        .extend(page.into_iter().filter(|c| !audience.blocks(&c.author_id)));
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
            cursor: encode_version(self.cursor),
            comment: Some(CommentSource::Stored(Box::new(doc))),
        })
    }

    /// Tells the client to resume from its last cursor, and ends the subscription.
    fn resync(&mut self) -> CommentEvent {
        self.done = true;
        metrics::resync();
        CommentEvent {
            kind: CommentEventKind::Resync,
            cursor: encode_version(self.cursor),
            comment: None,
        }
    }
}
