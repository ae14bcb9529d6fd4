//! Bans, enforced: moderators decide them in media (its moderation queue and audit log);
//! auth hears of each decision from media's `moderation.user` event and makes it hold for
//! the account:
//!
//! * a ban revokes every refresh-token family of the account and denylists every live
//!   access token, so the account's next request anywhere is 401 and no refresh revives
//!   it; login is refused (403, after the password checked out, so a ban reveals nothing
//!   to someone without the password);
//! * lifting the ban lets the account sign in again (its old sessions stay ended).
//!
//! Idempotent and order-proof: the row keeps the revision of the decision it reflects; an
//! older revision changes nothing, the same one is applied again (a redelivery after a
//! crash between the commit and the denylist still denies the tokens).

use crate::Context;
use events::{
    consumer::{self, Outcome},
    moderation::{ModerationEvent, ModerationEventKind, UserModerated},
    topology::MEDIA_EVENTS,
};

/// Consumes auth's `auth.moderation` queue until shutdown.
pub fn spawn(ctx: &Context, shutdown: &platform::Shutdown) {
    let spec = ctx.events.queue("auth.moderation").bind(
        MEDIA_EVENTS,
        &ctx.events
            .routing_key(ModerationEventKind::User.routing_key()),
    );
    let ctx = ctx.clone();
    consumer::spawn(ctx.rabbit.clone(), spec, 8, shutdown, move |delivery| {
        let ctx = ctx.clone();
        async move {
            let event = match ModerationEvent::decode(&delivery.data) {
                Ok(envelope) => envelope.data,
                Err(error) => return Outcome::undecodable(&error),
            };
            let ModerationEvent::User(event) = event else {
                return Outcome::Ack;
            };
            match apply(&ctx, &event).await {
                Ok(()) => Outcome::Ack,
                Err(error) => {
                    tracing::warn!(%error, user = %event.user_id, "ban not applied yet; will retry");
                    Outcome::Retry
                }
            }
        }
    });
}

async fn apply(ctx: &Context, event: &UserModerated) -> anyhow::Result<()> {
    let mut tx = ctx.db.pool().begin().await?;
    let applies = sqlx::query(
        "UPDATE users SET banned_at = CASE WHEN $2 THEN COALESCE(banned_at, now()) END,
                ban_revision = $3
         WHERE id = $1 AND ban_revision <= $3",
    )
    .bind(event.user_id)
    .bind(event.banned)
    .bind(event.revision)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !(applies && event.banned) {
        tx.commit().await?;
        return Ok(());
    }
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(event.user_id)
    .execute(&mut *tx)
    .await?;
    let live = crate::tokens::live_access_tokens(&mut tx, event.user_id).await?;
    tx.commit().await?;
    ctx.deny(&live)
        .await
        .map_err(|e| anyhow::anyhow!("denylist: {e:?}"))?;
    tracing::info!(user = %event.user_id, tokens = live.len(), "account banned");
    Ok(())
}
