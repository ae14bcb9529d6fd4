//! A deleted account is gone: on `user.deleted` media removes the account's videos, likes,
//! channel subscriptions (both ways), playlists, notifications and watch history, and
//! anonymises its comments.
//!
//! **Who does what.** Media alone consumes `user.deleted` for this, from its own durable
//! queue `media.erasure` (auth publishes the event through its outbox, so it exists
//! exactly when the account row was deleted). The video service does not bind
//! `user.deleted`: media deletes each of the user's videos the way `deleteVideo` does, a
//! tombstone in the catalogue and `video.deleted` in the outbox in one transaction, and
//! the video service removes the S3 source, HLS, thumbnails and its asset row on
//! `video.deleted` as it always has (the recommender drops the video from its index on the
//! same event). Why not a second consumer in video: there would be two deletion paths to
//! keep in step, and two lists of the user's videos (catalogue and assets) each needing
//! its own guard against late events; with one path every consumer of `video.deleted`
//! hears of every video the account had, and the video side stays as tested.
//!
//! **Steps**, in this order, each "remove what is left", so each is idempotent and a
//! redelivery after a crash resumes where the last one stopped ([`erase`]):
//! 1. the account is remembered in `deleted_accounts` (see *late events*);
//! 2. its videos ([`rows::bury_videos`]);
//! 3. its likes, with the liked videos' `likes_count` ([`rows::drop_likes`]);
//! 4. its subscriptions, with each channel's `subscriber_count`, and its followers, with
//!    its own count ([`rows::drop_follows`], [`rows::drop_followers`]);
//! 5. its comments ([`comments::anonymise`]);
//! 6. its playlists ([`rows::drop_playlists`]);
//! 7. its notifications, received and caused ([`rows::drop_notifications`]), and its
//!    watch history ([`rows::drop_history`]);
//! 8. its held words and blocks, and others' blocks of it ([`rows::drop_comment_rules`]).
//!
//! Counters of rows in PostgreSQL move in the same transaction as the rows, so they stay
//! exact. No step is one giant transaction: each takes at most [`rows::BATCH`] rows per
//! transaction (locks held briefly, however many videos or likes the account had).
//! Comments live in MongoDB, beyond any transaction with the counters: they follow the
//! contract of `deleteComment` (crate::comments: comment first, counter after; the recount
//! sweep repairs a counter a crash left off by one).
//!
//! The delivery is acknowledged only after the last step. A crash anywhere redelivers the
//! event; a redelivery after completion finds nothing left and changes nothing.
//!
//! **Late events.** An upload begun just before the deletion may announce its video
//! (`video.created`) after the erasure ran. The catalogue consumer takes a shared advisory
//! lock on the owner ([`lock_owner_shared`]) and buries the video at once if its owner is
//! in `deleted_accounts` ([`bury_if_erased`]); the erasure records the account under the
//! exclusive lock ([`remember`]). So either the catalogue's transaction committed first
//! (and step 2 sees its row) or it sees the tombstone: no video of a deleted account
//! survives the race.

pub mod comments;
pub mod rows;

use events::{
    Envelope, Namespace,
    consumer::{self, Outcome},
    outbox,
    topology::USER_EVENTS,
    user::{UserEvent, UserEventKind},
    video::VideoDeleted,
};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::Context;

/// Deliveries the broker sends ahead of the one being erased.
const PREFETCH: u16 = 4;

/// Consumes media's `media.erasure` queue until shutdown. A queue of its own, not
/// `media.users`: erasing a large account takes a while, and cache evictions should not
/// wait behind it.
pub fn spawn(ctx: &Context, shutdown: &platform::Shutdown) {
    let key = ctx
        .config
        .namespace()
        .routing_key(UserEventKind::Deleted.routing_key());
    let spec = ctx.config.queue("media.erasure").bind(USER_EVENTS, &key);
    let ctx = ctx.clone();
    consumer::spawn(
        ctx.rabbit.clone(),
        spec,
        PREFETCH,
        shutdown,
        move |delivery| {
            let ctx = ctx.clone();
            async move {
                let user = match UserEvent::decode(&delivery.data) {
                    Ok(envelope) => match envelope.data {
                        UserEvent::Deleted(deleted) => deleted.user_id,
                        UserEvent::Updated(_) => return Outcome::Ack, // not bound; delivered directly
                    },
                    Err(error) => return Outcome::undecodable(&error),
                };
                match erase(&ctx, user).await {
                    Ok(erased) => {
                        tracing::info!(%user, ?erased, "account erased");
                        Outcome::Ack
                    }
                    Err(e) => {
                        tracing::warn!(%user, error = %e, "account erasure interrupted; will retry");
                        Outcome::Retry
                    }
                }
            }
        },
    );
}

/// What one run of [`erase`] removed (all zero when the account was already erased).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Erased {
    pub videos: u64,
    pub likes: u64,
    pub follows: u64,
    pub followers: u64,
    pub comments: u64,
    pub playlists: u64,
    pub notifications: u64,
    pub history: u64,
    /// Held words and blocks, made by the account or naming it.
    pub comment_rules: u64,
}

/// Erases `user`'s traces, step by step (see the module documentation); safe to run again
/// at any point, for any account.
pub async fn erase(ctx: &Context, user: Uuid) -> anyhow::Result<Erased> {
    remember(ctx, user).await?;
    Ok(Erased {
        videos: rows::bury_videos(ctx, user).await?,
        likes: rows::drop_likes(ctx, user).await?,
        follows: rows::drop_follows(ctx, user).await?,
        followers: rows::drop_followers(ctx, user).await?,
        comments: comments::anonymise(ctx, user).await?,
        playlists: rows::drop_playlists(ctx, user).await?,
        notifications: rows::drop_notifications(ctx, user).await?,
        history: rows::drop_history(ctx, user).await?,
        comment_rules: rows::drop_comment_rules(ctx, user).await?,
    })
}

/// Records the account as deleted, under the exclusive owner lock (see *late events*).
async fn remember(ctx: &Context, user: Uuid) -> sqlx::Result<()> {
    let mut tx = ctx.db.pool().begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))")
        .bind(user)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO deleted_accounts (user_id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(user)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// Taken by the catalogue consumer before it writes a video of `owner`, held until its
/// transaction ends: an erasure's [`remember`] waits for it, or it waits for that.
pub async fn lock_owner_shared(conn: &mut PgConnection, owner: Uuid) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock_shared(hashtextextended($1::text, 0))")
        .bind(owner)
        .execute(conn)
        .await?;
    Ok(())
}

/// Buries `video` if its owner's account was erased and it is not deleted yet, announcing
/// it as `deleteVideo` would (the video service then removes its files). True if it did.
pub async fn bury_if_erased(
    conn: &mut PgConnection,
    namespace: &Namespace,
    video: Uuid,
) -> sqlx::Result<bool> {
    let owner: Option<Uuid> = sqlx::query_scalar(
        "UPDATE videos SET deleted_at = now()
         WHERE id = $1 AND deleted_at IS NULL
           AND EXISTS (SELECT 1 FROM deleted_accounts WHERE user_id = videos.owner_id)
         RETURNING owner_id",
    )
    .bind(video)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(owner_id) = owner else {
        return Ok(false);
    };
    let event = VideoDeleted {
        video_id: video,
        owner_id,
    };
    outbox::enqueue(conn, namespace, &Envelope::new(event)).await?;
    Ok(true)
}
