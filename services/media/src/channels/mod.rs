//! Channel subscriptions ("follow a creator"). Like likes: a row per (follower, channel)
//! and an exact subscriber count, changed together in one transaction, idempotent both
//! ways. A new subscription is announced (`subscription.added`) through the outbox in the
//! same transaction, with the channel owner's `NEW_SUBSCRIBER` notification.

use std::collections::HashMap;

use async_graphql::{Context, ID, Object, Result, dataloader::Loader};
use events::{Envelope, media::SubscriptionAdded};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    context::{AppContext, count_query, viewer},
    error::Error,
    notifications::{self, Kind, NewNotification},
    rate_limits,
    users::User,
};

#[derive(Default)]
pub struct ChannelMutation;

#[Object]
impl ChannelMutation {
    /// Subscribes the viewer to another user's channel (idempotent). Returns the channel.
    async fn subscribe(&self, ctx: &Context<'_>, channel_id: ID) -> Result<User> {
        set_follow(ctx, &channel_id, true).await
    }

    /// Unsubscribes (idempotent).
    async fn unsubscribe(&self, ctx: &Context<'_>, channel_id: ID) -> Result<User> {
        set_follow(ctx, &channel_id, false).await
    }
}

async fn set_follow(ctx: &Context<'_>, channel_id: &ID, follow: bool) -> Result<User> {
    let me = viewer(ctx).require()?;
    let channel =
        Uuid::parse_str(channel_id.as_str()).map_err(|_| Error::bad_input("not a user id"))?;
    if channel == me {
        return Err(Error::bad_input("you cannot subscribe to your own channel").into());
    }
    if follow {
        rate_limits::admit(ctx, me, rate_limits::Action::Subscribe).await?;
    }
    let app = AppContext::get(ctx);
    let user = app
        .users
        .load_one(channel)
        .await?
        .ok_or(Error::NotFound("no such user"))?;
    let mut tx = app.db.pool().begin().await.map_err(Error::from)?;
    let mut notified = None;
    let changed = if follow {
        sqlx::query(
            "INSERT INTO follows (follower_id, channel_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
    } else {
        sqlx::query("DELETE FROM follows WHERE follower_id = $1 AND channel_id = $2")
    }
    .bind(me)
    .bind(channel)
    .execute(&mut *tx)
    .await
    .map_err(Error::from)?
    .rows_affected();
    if changed == 1 {
        // The first follower creates the channel's row; an unfollow always finds it.
        if follow {
            sqlx::query(
                "INSERT INTO channels (id, subscriber_count) VALUES ($1, 1)
                 ON CONFLICT (id) DO UPDATE SET subscriber_count = channels.subscriber_count + 1",
            )
        } else {
            sqlx::query("UPDATE channels SET subscriber_count = subscriber_count - 1 WHERE id = $1")
        }
        .bind(channel)
        .execute(&mut *tx)
        .await
        .map_err(Error::from)?;
        if follow {
            // Announced with the write (webhooks): once per new subscriber, never for a
            // repeated subscribe.
            let event = SubscriptionAdded {
                channel_id: channel,
                subscriber_id: me,
            };
            events::outbox::enqueue(&mut tx, &app.events, &Envelope::new(event))
                .await
                .map_err(Error::from)?;
            // Once per subscriber ever: unsubscribing and subscribing again tells the
            // owner nothing new.
            let told = NewNotification {
                actor: Some(me),
                ..NewNotification::new(channel, Kind::NewSubscriber, me)
            };
            notified = notifications::store::notify(&mut tx, &told)
                .await
                .map_err(Error::from)?;
        }
    }
    tx.commit().await.map_err(Error::from)?;
    if follow && changed == 1 {
        app.relay.notify();
    }
    notifications::announce(app, notified.as_slice()).await;
    Ok(user)
}

/// Subscriber counts of many channels at once.
pub struct SubscriberCountLoader(pub PgPool);

impl Loader<Uuid> for SubscriberCountLoader {
    type Value = i64;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, i64>, Self::Error> {
        count_query("postgres", "subscriber_counts");
        let rows: Vec<(Uuid, i64)> =
            sqlx::query_as("SELECT id, subscriber_count FROM channels WHERE id = ANY($1)")
                .bind(keys)
                .fetch_all(&self.0)
                .await
                .map_err(Error::from)?;
        Ok(rows.into_iter().collect())
    }
}

/// Whether (follower, channel) pairs exist.
pub struct FollowLoader(pub PgPool);

impl Loader<(Uuid, Uuid)> for FollowLoader {
    type Value = ();
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[(Uuid, Uuid)]) -> Result<HashMap<(Uuid, Uuid), ()>, Self::Error> {
        count_query("postgres", "follows");
        let (followers, channels): (Vec<Uuid>, Vec<Uuid>) = keys.iter().copied().unzip();
        let rows: Vec<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT f.follower_id, f.channel_id
             FROM unnest($1::uuid[], $2::uuid[]) AS k(follower_id, channel_id)
             JOIN follows f ON f.follower_id = k.follower_id AND f.channel_id = k.channel_id",
        )
        .bind(&followers)
        .bind(&channels)
        .fetch_all(&self.0)
        .await
        .map_err(Error::from)?;
        Ok(rows.into_iter().map(|k| (k, ())).collect())
    }
}
