//! Live updates: GraphQL subscriptions over WebSocket, fanned out across replicas.
//!
//! # The problem
//!
//! A client watching a video wants its new comments, its counters and (for its owner) the
//! transcoder's progress as they happen. Clients are spread over several media replicas by
//! the load balancer, and the thing that changes (a comment posted through replica B, a
//! progress event consumed from RabbitMQ by replica C) happens anywhere. So each replica
//! needs to hear about every change that one of *its* clients watches, and nothing else.
//!
//! Seed 003 did this the obvious way: every client connection subscribed to the video's
//! Redis channel. With many clients per replica that is one Redis subscription (often one
//! connection) per client, the same message decoded once per client, and with random load
//! balancing every replica ends up subscribed to most channels. Seed 000 adds the other
//! flaw: Redis pub/sub is fire-and-forget, so a client that was disconnected for a moment
//! silently missed what was published meanwhile.
//!
//! # The shape here
//!
//! ```text
//!   mutation (any replica) ──PUBLISH──▶ Redis ──one pub/sub connection──▶ hub (per replica)
//!   RabbitMQ video.progress ─▶ whichever replica consumes it ─PUBLISH─┘        │ decode once
//!                                                                             ▼
//!                                               bounded broadcast per channel (Arc<Message>)
//!                                                     │            │            │
//!                                               subscription  subscription  subscription
//!                                                 (GraphQL)     (GraphQL)     (GraphQL)
//!                                                     │
//!                                              graphql-transport-ws connection (protocol)
//! ```
//!
//! * [`hub`]: one Redis pub/sub connection per replica. A channel is SUBSCRIBEd when its
//!   first local subscriber arrives and UNSUBSCRIBEd when its last one leaves (reference
//!   counting), so a replica's Redis channel count equals the number of distinct things
//!   its own clients watch. Each message is decoded once into an `Arc` and handed to the
//!   local subscribers through a bounded `tokio::sync::broadcast` channel: memory per
//!   channel is fixed, whatever the clients do. A subscriber that falls more than the
//!   buffer behind is told so ([`hub::Received::Missed`]) instead of holding the others
//!   back or growing a queue.
//! * [`protocol`]: the graphql-transport-ws protocol on axum's WebSocket, driving
//!   async-graphql's `execute_stream`, with every close code the protocol defines
//!   (async-graphql's own handler leaves several out) and authentication from the
//!   `connection_init` payload ([`tokens`]) or the gateway's `X-User-Id`.
//! * [`wire`]: what travels through the hub (the events, in the envelope the ranker
//!   publishes with too, `events::trending::Wire`).
//! * [`subscriptions`]: the subscriptions themselves: `commentEvents` (its stream is
//!   [`comment_feed`]: replay from MongoDB after a cursor, then live, with no gap and no
//!   duplicate at the seam), `uploadProgress`, `videoStats` (coalesced, [`stats`]).
//! * [`memo`]: identical subscriptions share each event's rendered payload; an
//!   operation's [`memo::Probe`] is how its stream and its connection talk.
//! * [`progress`]: `video.progress` (and the final `video.ready`/`video.failed`) from
//!   RabbitMQ into the hub. One queue shared by every replica: whichever replica takes an
//!   event publishes it to Redis, and every replica's subscribers get it.
//! * [`stats`]: counter changes coalesced per replica before they are published, and per
//!   subscriber before they are sent.
//! * [`access`]: subscriptions follow visibility: a video made private or deleted ends
//!   its non-owners' (deleted: everyone's) subscriptions on every replica, through the
//!   hub.
//!
//! # What "no loss" means here
//!
//! Redis pub/sub still loses what is published while a replica's connection to Redis is
//! down, and a slow client still cannot be buffered forever. Neither is hidden: the hub
//! tells every subscriber of a channel that it may have missed something (after a Redis
//! reconnect, or when it lagged), and `commentEvents` turns that into a `RESYNC` event
//! carrying the cursor to resume from. Comments are in MongoDB, so resuming from that
//! cursor replays exactly what was missed.

pub mod access;
pub mod comment_feed;
pub mod config;
pub mod hub;
pub mod memo;
pub mod metrics;
pub mod progress;
pub mod protocol;
pub mod stats;
pub mod subscriptions;
pub mod tokens;
pub mod wire;

use std::sync::Arc;

use platform::Shutdown;

pub use config::RealtimeConfig;
pub use hub::{Hub, Message, Received, Subscription};
pub use subscriptions::RealtimeSubscription;
pub use wire::{AccessChange, ChangeKind, CommentChange, Event};

use crate::comments::store::CommentDoc;

/// What the rest of the service reaches live updates through (`Context::realtime`).
#[derive(Clone)]
pub struct Realtime {
    pub config: Arc<RealtimeConfig>,
    /// The fan-out hub: publish to and subscribe to channels by name.
    pub hub: Hub,
    /// Counter changes, coalesced before they reach `videoStats` subscribers.
    pub stats: stats::StatsFeed,
    /// Verifies tokens presented in `connection_init`.
    pub tokens: Arc<tokens::TokenAuth>,
    /// Executed vs shared `next` payloads (see [`memo`]).
    pub memo: Arc<memo::MemoCounters>,
    pub shutdown: Shutdown,
}

impl Realtime {
    /// Starts the hub's Redis connection task and the stats coalescer. Nothing waits for
    /// Redis: both reconnect on their own.
    pub fn start(
        config: RealtimeConfig,
        redis_url: &str,
        redis_prefix: &str,
        redis: platform::redis::Redis,
        db: sqlx::PgPool,
        tokens: tokens::TokenAuth,
        shutdown: &Shutdown,
    ) -> anyhow::Result<Self> {
        let hub = Hub::start(
            redis_url,
            redis.clone(),
            &events::trending::hub_prefix(redis_prefix),
            config.channel_capacity,
            shutdown,
        )?;
        let stats = stats::StatsFeed::start(hub.clone(), db, config.stats_interval, shutdown);
        Ok(Self {
            config: Arc::new(config),
            hub,
            stats,
            tokens: Arc::new(tokens),
            memo: Arc::default(),
            shutdown: shutdown.clone(),
        })
    }

    /// Announces a comment change to `commentEvents` subscribers on every replica. Call it
    /// as soon as the change is stored in MongoDB, before anything else the write does:
    /// the change's version was taken just before, and the longer the way from there to
    /// here, the likelier a newer change overtakes it on the live feed (README, "Limits
    /// of the design"). Best effort: the comment is already stored (a failure here is
    /// logged; a client that resumes from its cursor still gets it).
    pub async fn comment_changed(&self, kind: ChangeKind, comment: &CommentDoc) {
        let channel = channels::comments(&comment.video_id);
        let event = Event::Comment(CommentChange {
            kind,
            comment: comment.clone(),
        });
        if let Err(e) = self.hub.publish(&channel, &event).await {
            tracing::warn!(error = %e, %channel, "comment event not published");
        }
    }
}

impl Realtime {
    /// Tells the subscribers of `video` on every replica that who may see it changed, so
    /// those who may no longer see it are ended ([`access`]). Call it after the change
    /// committed (each subscriber re-reads the catalogue). Best effort, like every hub
    /// message: if Redis cannot take it, the failure is logged and subscriptions opened
    /// before the change keep streaming until they end otherwise; new ones are refused.
    pub async fn access_changed(&self, video: uuid::Uuid) {
        let event = Event::AccessChanged(AccessChange { video_id: video });
        // Every per-video channel a non-owner may watch (uploadProgress is the owner's).
        for channel in [channels::comments(&video), channels::stats(&video)] {
            if let Err(e) = self.hub.publish(&channel, &event).await {
                tracing::warn!(error = %e, %channel, "access change not published");
            }
        }
    }
}

/// Channel names. A channel is one thing clients watch; the hub prefixes them with
/// `REDIS_PREFIX` + `rt:` on Redis (`events::trending::hub_prefix`).
pub mod channels {
    pub fn comments(video: &impl std::fmt::Display) -> String {
        format!("comments:{video}")
    }

    pub fn progress(video: &impl std::fmt::Display) -> String {
        format!("progress:{video}")
    }

    pub fn stats(video: &impl std::fmt::Display) -> String {
        format!("stats:{video}")
    }

    /// One user's notifications (crate::notifications).
    pub fn notifications(user: &impl std::fmt::Display) -> String {
        format!("notifications:{user}")
    }

    /// A large channel's new videos, one message each for all its live subscribers
    /// (crate::notifications, fan-in on read).
    pub fn posts(channel: &impl std::fmt::Display) -> String {
        format!("posts:{channel}")
    }

    /// The ranker's announcements that the trending sets changed (one channel for all
    /// windows; `events::trending::trending_moved_channel` is its name on Redis).
    pub const TRENDING: &str = events::trending::TRENDING_CHANNEL;
}
