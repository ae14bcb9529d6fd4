//! Notifications: what a signed-in user is told about.
//!
//! | kind | to whom | written by |
//! |---|---|---|
//! | `NEW_VIDEO` | each subscriber of the channel | [`fanout`], after the catalogue's `video.ready` (or the edit that makes a ready video public) |
//! | `VIDEO_READY`, `VIDEO_FAILED` | the video's owner | the catalogue's `video.ready` / `video.failed` transaction |
//! | `VIDEO_COMMENT` | the video's owner | `addComment`, with its counter and `comment.added` |
//! | `COMMENT_REPLY` | the parent comment's author | `addComment` |
//! | `NEW_SUBSCRIBER` | the channel's owner | `subscribe`, with its counter and `subscription.added` |
//! | `WEBHOOK_DISABLED` | the endpoint's owner | [`events`], on the webhooks service's `webhook.endpoint_disabled` |
//!
//! Every notification is written in the transaction of the write or event it reports
//! (so it exists exactly when that happened), once per recipient and subject (a unique
//! `dedupe_key`: a redelivered event or a retried batch adds nothing), and not at all for
//! a recipient who turned its kind off. Nobody is notified of their own doing. After the
//! commit it goes live to the recipient's `notificationAdded` subscriptions through the
//! hub (channel `notifications:<user>`); a client that was away reads the list and the
//! unread count, which are the truth.
//!
//! **Large channels: fan-out on write below a threshold, fan-in on read above it.** A
//! channel's new video is one job row in the catalogue's transaction, done off the
//! catalogue's queue by a worker every replica runs ([`fanout`]):
//! - With at most `NOTIFICATION_FANIN_SUBSCRIBERS` (10,000) subscribers, batches of
//!   `NOTIFICATION_FANOUT_BATCH` followers per transaction get a row each. Reading stays
//!   one index range per user, the cheapest list and count there are.
//! - Above it, one `notification_posts` row, which each subscriber's list and unread
//!   count merge with their own rows (`store::POSTS`: an index probe per followed channel
//!   that has posts). A million-subscriber upload is then one row, visible to all at once,
//!   instead of a million rows written over minutes while every other write waits on the
//!   same disk (bench/RESULTS.md "Notifications": at 100,000 subscribers, rows took
//!   5.7–14.6 s and raised like p99 1.25–4.1× meanwhile; a post is seen by all in
//!   0.1–0.3 s, likes unchanged). It goes live as one hub message on
//!   the channel's `posts:` topic, which the `notificationAdded` streams of its
//!   subscribers listen to. Read state for posts is a mark per reader (how far
//!   `markNotificationsRead` went), not a row per post.
//!
//!   Two differences a reader can see: a post shows only to subscribers who followed
//!   before it was made and still follow; turning new videos off hides the posts already
//!   made (rows already written stay). The threshold keeps the read side's extra work to
//!   the few channels that large, which most readers follow none of.
//!
//! Rows older than `NOTIFICATION_RETENTION_SECS` (default 90 days) are pruned.

pub mod events;
pub mod fanout;
pub mod store;

use async_graphql::{
    Context, Enum, ID, Object, Result, SimpleObject, Subscription, connection::Connection,
};
use futures::{Stream, StreamExt, stream};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    catalogue::Video,
    context::{AppContext, count_query, viewer},
    cursor::{Cursor, Page},
    error::Error,
    realtime::{Event, Received, channels},
    users::User,
};
pub use fanout::{FanoutConfig, FanoutWake};
pub use store::{NewNotification, NotificationRow};

/// What a notification is about.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "NotificationKind")]
pub enum Kind {
    /// A channel the user subscribes to published a video.
    NewVideo,
    /// Someone replied to the user's comment.
    CommentReply,
    /// Someone commented on the user's video.
    VideoComment,
    /// The user's upload finished transcoding.
    VideoReady,
    /// The user's upload could not be transcoded (`detail` says why).
    VideoFailed,
    /// Someone subscribed to the user's channel.
    NewSubscriber,
    /// The webhooks service disabled one of the user's endpoints (`detail` says which and why).
    WebhookDisabled,
    /// A moderator hid one of the user's videos (`detail` says why; crate::moderation).
    VideoHidden,
    /// A moderator made one of the user's hidden videos visible again (`detail` says why).
    VideoRestored,
}

impl Kind {
    pub const ALL: [Self; 9] = [
        Self::NewVideo,
        Self::CommentReply,
        Self::VideoComment,
        Self::VideoReady,
        Self::VideoFailed,
        Self::NewSubscriber,
        Self::WebhookDisabled,
        Self::VideoHidden,
        Self::VideoRestored,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NewVideo => "new_video",
            Self::CommentReply => "comment_reply",
            Self::VideoComment => "video_comment",
            Self::VideoReady => "video_ready",
            Self::VideoFailed => "video_failed",
            Self::NewSubscriber => "new_subscriber",
            Self::WebhookDisabled => "webhook_disabled",
            Self::VideoHidden => "video_hidden",
            Self::VideoRestored => "video_restored",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// How a user gets a kind of notification.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum NotificationDelivery {
    /// Not at all.
    Off,
    /// In the list, the unread count and `notificationAdded` (the default).
    InApp,
}

#[derive(SimpleObject)]
pub struct NotificationSetting {
    pub kind: Kind,
    pub delivery: NotificationDelivery,
}

pub struct Notification(pub NotificationRow);

#[Object]
impl Notification {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn kind(&self) -> Option<Kind> {
        Kind::parse(&self.0.kind)
    }

    async fn created_at(&self) -> OffsetDateTime {
        self.0.created_at
    }

    async fn read(&self) -> bool {
        self.0.read_at.is_some()
    }

    /// Who caused it: the commenter, the new subscriber, the publishing channel (null
    /// for the user's own uploads and webhooks, or an account that is gone).
    async fn actor(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let app = AppContext::get(ctx);
        let actor = match (self.0.actor_id, self.0.video_id) {
            (Some(actor), _) => actor,
            // A new video's rows leave the channel out (crate::notifications::fanout):
            // it is the video's owner.
            (None, Some(video)) if self.0.kind == Kind::NewVideo.as_str() => {
                match app.videos.load_one(video).await? {
                    Some(row) => row.owner_id,
                    None => return Ok(None),
                }
            }
            _ => return Ok(None),
        };
        app.users.load_one(actor).await
    }

    /// The video it is about, while the recipient may see it.
    async fn video(&self, ctx: &Context<'_>) -> Result<Option<Video>> {
        let Some(video) = self.0.video_id else {
            return Ok(None);
        };
        let row = AppContext::get(ctx).videos.load_one(video).await?;
        Ok(row
            .filter(|v| v.visible_to(Some(self.0.recipient_id)))
            .map(Video::from))
    }

    /// The comment it is about (`VIDEO_COMMENT`, `COMMENT_REPLY`).
    async fn comment_id(&self) -> Option<ID> {
        self.0.comment_id.clone().map(ID)
    }

    /// Kind-specific text: the comment's opening, why a video failed, which webhook.
    async fn detail(&self) -> Option<&str> {
        self.0.detail.as_deref()
    }
}

/// Sends freshly committed notifications to their recipients' live subscriptions on
/// every replica. Best effort, like every hub message: the rows are the truth.
pub async fn announce(ctx: &crate::Context, rows: &[NotificationRow]) {
    if rows.is_empty() {
        return;
    }
    let messages = rows.iter().map(|row| {
        (
            channels::notifications(&row.recipient_id),
            Event::Notification(row.clone()),
        )
    });
    if let Err(e) = ctx.realtime.hub.publish_many(messages).await {
        tracing::warn!(error = %e, count = rows.len(), "notifications not published live");
    }
}

/// The first 140 characters of a comment, for `detail`.
pub fn excerpt(body: &str) -> String {
    const MAX: usize = 140;
    match body.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &body[..end]),
        None => body.to_owned(),
    }
}

#[derive(Default)]
pub struct NotificationQuery;

#[Object]
impl NotificationQuery {
    /// The viewer's notifications, newest first (`unreadOnly` to skip the read ones).
    /// Those about a video the viewer may no longer see are left out.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(default = false)] unread_only: bool,
    ) -> Result<Connection<Cursor, Notification>> {
        let me = viewer(ctx).require()?;
        let app = AppContext::get(ctx);
        let page = Page::parse(first, after, app.config.limits.max_page)?;
        count_query("postgres", "notifications");
        let rows = store::page(app.db.pool(), me, unread_only, page)
            .await
            .map_err(Error::from)?;
        let items = rows.into_iter().map(Notification).collect();
        Ok(page.connection(items, |n: &Notification| {
            Cursor::new(n.0.created_at, n.0.id)
        }))
    }

    /// How many of the viewer's notifications are unread, counted up to 1,000 (show
    /// "999+" at that).
    async fn unread_notification_count(&self, ctx: &Context<'_>) -> Result<i64> {
        let me = viewer(ctx).require()?;
        let app = AppContext::get(ctx);
        count_query("postgres", "unread_notifications");
        Ok(store::unread_count(app.db.pool(), me)
            .await
            .map_err(Error::from)?)
    }

    /// How the viewer gets each kind of notification.
    async fn notification_settings(&self, ctx: &Context<'_>) -> Result<Vec<NotificationSetting>> {
        let me = viewer(ctx).require()?;
        let app = AppContext::get(ctx);
        let off = store::kinds_off(app.db.pool(), me)
            .await
            .map_err(Error::from)?;
        Ok(Kind::ALL
            .into_iter()
            .map(|kind| NotificationSetting {
                kind,
                delivery: if off.iter().any(|k| k == kind.as_str()) {
                    NotificationDelivery::Off
                } else {
                    NotificationDelivery::InApp
                },
            })
            .collect())
    }
}

#[derive(Default)]
pub struct NotificationMutation;

#[Object]
impl NotificationMutation {
    /// Marks read the viewer's notification `upTo` and every older one; returns how many
    /// changed. Notifications that arrive later stay unread.
    async fn mark_notifications_read(&self, ctx: &Context<'_>, up_to: ID) -> Result<i64> {
        let me = viewer(ctx).require()?;
        let id = Uuid::parse_str(up_to.as_str())
            .map_err(|_| Error::bad_input("upTo is not a notification id"))?;
        let app = AppContext::get(ctx);
        let row = store::get(app.db.pool(), me, id)
            .await
            .map_err(Error::from)?
            .ok_or_else(|| Error::bad_input("no such notification"))?;
        let marked = store::mark_read(app.db.pool(), me, &Cursor::new(row.created_at, row.id))
            .await
            .map_err(Error::from)?;
        Ok(marked as i64)
    }

    /// Turns a kind of notification off or back on for the viewer. What was already
    /// written stays.
    async fn set_notification_delivery(
        &self,
        ctx: &Context<'_>,
        kind: Kind,
        delivery: NotificationDelivery,
    ) -> Result<NotificationSetting> {
        let me = viewer(ctx).require()?;
        let app = AppContext::get(ctx);
        let off = delivery == NotificationDelivery::Off;
        store::set_delivery(app.db.pool(), me, kind, off)
            .await
            .map_err(Error::from)?;
        Ok(NotificationSetting { kind, delivery })
    }
}

#[derive(Default)]
pub struct NotificationSubscription;

#[Subscription]
impl NotificationSubscription {
    /// The viewer's notifications as they are written. After a disconnect, read
    /// `notifications` and `unreadNotificationCount` again: what was missed is there.
    ///
    /// Large channels' new videos come on each channel's `posts:` topic, one message for
    /// all its subscribers; the stream listens to those of the large channels the viewer
    /// follows when it starts ([`store::followed_large_channels`]). A channel followed, or
    /// grown large, later is heard live from the next subscription on (the list has its
    /// videos either way).
    async fn notification_added(
        &self,
        ctx: &Context<'_>,
    ) -> Result<impl Stream<Item = Notification> + use<>> {
        let me = viewer(ctx).require()?;
        let app = AppContext::get(ctx);
        let large = store::followed_large_channels(
            app.db.pool(),
            me,
            app.config.notifications.fan_in_above,
        )
        .await
        .map_err(Error::from)?;
        let topics =
            std::iter::once(channels::notifications(&me)).chain(large.iter().map(channels::posts));
        let mut streams = Vec::new();
        for topic in topics {
            let subscription = app
                .realtime
                .hub
                .subscribe(&topic)
                .await
                .map_err(|e| Error::Internal(e.into()))?;
            streams.push(messages(subscription).boxed());
        }
        let stream = stream::select_all(streams).filter_map(move |message| async move {
            match &message.event {
                Event::Notification(row) if row.recipient_id == me => {
                    Some(Notification(row.clone()))
                }
                // A post: every subscriber's copy is the viewer's own.
                Event::Notification(row) if row.recipient_id.is_nil() => {
                    Some(Notification(NotificationRow {
                        recipient_id: me,
                        ..row.clone()
                    }))
                }
                _ => None,
            }
        });
        Ok(crate::realtime::metrics::counted(stream))
    }
}

/// A subscription's events, without its gap marks: the list is the truth, and the client
/// re-reads it.
fn messages(
    subscription: crate::realtime::Subscription,
) -> impl Stream<Item = std::sync::Arc<crate::realtime::Message>> {
    stream::unfold(subscription, |mut subscription| async move {
        loop {
            if let Received::Event(message) = subscription.recv().await? {
                return Some((message, subscription));
            }
        }
    })
}
