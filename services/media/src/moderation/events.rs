//! Media's own part of a ban, from the `moderation.user` event it published: the
//! account's comments are hidden (or shown again) in MongoDB, and a ban closes the
//! account's live connections on every replica.
//!
//! Why from the event and not in `banUser` itself: the ban's transaction (PostgreSQL)
//! cannot include MongoDB. The event is in the outbox of that transaction, so it exists
//! exactly when the ban does, and this consumer acknowledges it only after the comments
//! were updated: a crash in between redelivers it. Both steps are idempotent. Order: a
//! ban and its lifting apply in revision order ([`apply`] skips an older revision than the
//! account's current one, read from `user_moderation`).

use events::{
    consumer::{self, Outcome},
    moderation::{ModerationEvent, ModerationEventKind, UserModerated},
    topology::MEDIA_EVENTS,
};

use crate::Context;

/// Consumes media's `media.moderation` queue until shutdown.
pub fn spawn(ctx: &Context, shutdown: &platform::Shutdown) {
    let namespace = ctx.config.namespace();
    let spec = namespace.queue("media.moderation").bind(
        MEDIA_EVENTS,
        &namespace.routing_key(ModerationEventKind::User.routing_key()),
    );
    let ctx = ctx.clone();
    consumer::spawn(ctx.rabbit.clone(), spec, 8, shutdown, move |delivery| {
        let ctx = ctx.clone();
        async move {
            let envelope = match ModerationEvent::decode(&delivery.data) {
                Ok(envelope) => envelope,
                Err(error) => return Outcome::undecodable(&error),
            };
            let ModerationEvent::User(event) = envelope.data else {
                return Outcome::Ack;
            };
            match apply(&ctx, &event).await {
                Ok(()) => Outcome::Ack,
                Err(error) => {
                    tracing::warn!(%error, user = %event.user_id, "ban not applied to comments; will retry");
                    Outcome::Retry
                }
            }
        }
    });
}

async fn apply(ctx: &Context, event: &UserModerated) -> anyhow::Result<()> {
    let current: Option<i64> =
        sqlx::query_scalar("SELECT revision FROM user_moderation WHERE user_id = $1")
            .bind(event.user_id)
            .fetch_optional(ctx.db.pool())
            .await?;
    if current.is_some_and(|current| current > event.revision) {
        return Ok(());
    }
    let changed = ctx
        .comments
        .set_author_hidden(event.user_id, event.banned)
        .await?;
    if event.banned {
        super::end_sessions(ctx, event.user_id).await;
    }
    tracing::info!(user = %event.user_id, banned = event.banned, comments = changed, "ban applied");
    Ok(())
}
