//! Moderators' decisions about what this service serves, from media's `moderation.video`
//! and `moderation.user` events (events::moderation): a hidden video, or any video of a
//! banned owner, is withheld from everyone but its owner (`Video::visible_to`), so its
//! HLS tree, poster, storyboard and captions answer 404.
//!
//! Idempotent and order-proof: each row keeps the revision of the decision it reflects
//! and only a higher revision replaces it.

use events::{
    consumer::{self, Outcome},
    moderation::{ModerationEvent, ModerationEventKind},
    topology::MEDIA_EVENTS,
};

use crate::Context;

pub fn spawn(ctx: Context, shutdown: &platform::Shutdown) {
    let mut spec = events::Namespace::new(&ctx.config.queue_prefix).queue("video.moderation");
    for kind in ModerationEventKind::ALL {
        spec = spec.bind(MEDIA_EVENTS, &ctx.events.routing_key(kind.routing_key()));
    }
    consumer::spawn(ctx.rabbit.clone(), spec, 16, shutdown, move |delivery| {
        let ctx = ctx.clone();
        async move {
            let event = match ModerationEvent::decode(&delivery.data) {
                Ok(envelope) => envelope.data,
                Err(error) => return Outcome::undecodable(&error),
            };
            match apply(&ctx, &event).await {
                Ok(()) => Outcome::Ack,
                Err(error) => {
                    tracing::warn!(%error, "moderation event not applied yet; will retry");
                    Outcome::Retry
                }
            }
        }
    });
}

async fn apply(ctx: &Context, event: &ModerationEvent) -> Result<(), sqlx::Error> {
    match event {
        ModerationEvent::Video(e) => {
            sqlx::query(
                "UPDATE videos SET hidden = $2, moderation_revision = $3, updated_at = now()
                 WHERE id = $1 AND moderation_revision < $3",
            )
            .bind(e.video_id)
            .bind(e.hidden)
            .bind(e.revision)
            .execute(ctx.db.pool())
            .await?;
        }
        ModerationEvent::User(e) => {
            sqlx::query(
                "INSERT INTO banned_owners (owner_id, banned, revision) VALUES ($1, $2, $3)
                 ON CONFLICT (owner_id) DO UPDATE SET banned = EXCLUDED.banned,
                     revision = EXCLUDED.revision
                 WHERE banned_owners.revision < EXCLUDED.revision",
            )
            .bind(e.user_id)
            .bind(e.banned)
            .bind(e.revision)
            .execute(ctx.db.pool())
            .await?;
        }
    }
    Ok(())
}
