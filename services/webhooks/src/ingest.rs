//! From Kino's events to deliveries: the `webhooks.events` queue, bound to the event
//! types webhooks carry, consumed a batch at a time.
//!
//! For each event, one statement stores its message (the body as receivers get it) and a
//! pending delivery for every enabled endpoint that wants it; the batch commits, and only
//! then are its events acknowledged. So an event the broker handed over is either in the
//! database or still in the queue (nothing acknowledged is lost), and a redelivered event
//! finds its deliveries there already (`UNIQUE (endpoint_id, message_id)`): each endpoint
//! gets each event once, however often RabbitMQ redelivers it.
//!
//! This consumer does no HTTP: a slow or dead endpoint never holds events in RabbitMQ,
//! and never delays the platform's other consumers (every consumer has its own queue).

use std::sync::Arc;

use events::{
    consumer::{self, BatchOutcome, Batching},
    media::MediaEventKind,
    topology::{MEDIA_EVENTS, USER_EVENTS, VIDEO_EVENTS},
    user::UserEventKind,
    video::VideoEventKind,
};
use lapin::message::Delivery;
use sqlx::PgPool;

use crate::{Context, catalog::Message, delivery::Dispatcher};

/// The queue's name (under `QUEUE_PREFIX`).
pub const QUEUE: &str = "webhooks.events";

/// Consumes `webhooks.events` until shutdown.
pub fn spawn(ctx: &Context, shutdown: &platform::Shutdown) {
    let namespace =
        events::Namespace::new(&ctx.config.queue_prefix).expiring(ctx.config.queue_expires);
    let mut spec = namespace.queue(QUEUE);
    for kind in [
        VideoEventKind::Uploaded,
        VideoEventKind::Ready,
        VideoEventKind::Failed,
        VideoEventKind::Deleted,
    ] {
        spec = spec.bind(VIDEO_EVENTS, &namespace.routing_key(kind.routing_key()));
    }
    spec = spec.bind(
        USER_EVENTS,
        &namespace.routing_key(UserEventKind::Deleted.routing_key()),
    );
    for kind in MediaEventKind::ALL {
        spec = spec.bind(MEDIA_EVENTS, &namespace.routing_key(kind.routing_key()));
    }
    let batching = Batching {
        max_events: 256,
        max_wait: std::time::Duration::from_millis(5),
        prefetch: 512,
        in_flight: 1,
    };
    let pool = Arc::new(ctx.db.pool().clone());
    let dispatcher = ctx.dispatcher.clone();
    consumer::spawn_batched(ctx.rabbit.clone(), spec, batching, shutdown, move |batch| {
        let (pool, dispatcher) = (pool.clone(), dispatcher.clone());
        async move { handle(&pool, &dispatcher, batch).await }
    });
}

async fn handle(pool: &PgPool, dispatcher: &Dispatcher, batch: Vec<Delivery>) -> BatchOutcome {
    let mut reject = Vec::new();
    let mut messages = Vec::with_capacity(batch.len());
    for (index, delivery) in batch.iter().enumerate() {
        match Message::from_event(&delivery.data) {
            Ok(Some(message)) => messages.push(message),
            Ok(None) => {}
            Err(error) => {
                if events::consumer::Outcome::undecodable(&error) == consumer::Outcome::Reject {
                    reject.push(index);
                }
            }
        }
    }
    if messages.is_empty() {
        return BatchOutcome::Ack { reject };
    }
    match store(pool, &messages).await {
        Ok(created) => {
            ::metrics::counter!("webhook_events_total").increment(messages.len() as u64);
            if created > 0 {
                dispatcher.wake();
            }
            BatchOutcome::Ack { reject }
        }
        Err(e) => {
            tracing::warn!(error = %e, "webhooks: storing deliveries failed; will retry");
            BatchOutcome::Retry
        }
    }
}

/// Stores the messages and their deliveries in one transaction; how many deliveries
/// were created (0 when every endpoint already had them, or none wanted them).
async fn store(pool: &PgPool, messages: &[Message]) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut created = 0;
    for message in messages {
        if let Some(account) = message.erases {
            // The account is gone: so are its endpoints and their logs (platform
            // endpoints still hear of it, below).
            sqlx::query("DELETE FROM endpoints WHERE owner_id = $1")
                .bind(account)
                .execute(&mut *tx)
                .await?;
        }
        // The message is stored only if some endpoint wants it; the deliveries' foreign
        // key is checked at the end of the statement, after the message's insert.
        created += sqlx::query(
            "WITH targets AS (
                 SELECT id FROM endpoints
                 WHERE enabled AND $2 = ANY(event_types)
                   AND (scope = 'platform' OR owner_id = $4)
             ), message AS (
                 INSERT INTO messages (id, event_type, occurred_at, body)
                 SELECT $1, $2, $3, $5 WHERE EXISTS (SELECT 1 FROM targets)
                 ON CONFLICT (id) DO NOTHING
             )
             INSERT INTO deliveries (endpoint_id, message_id, next_attempt_at)
             SELECT id, $1, now() FROM targets
             ON CONFLICT (endpoint_id, message_id) DO NOTHING",
        )
        .bind(message.id)
        .bind(message.event_type.as_str())
        .bind(message.occurred_at)
        .bind(message.channel)
        .bind(&message.body)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    tx.commit().await?;
    Ok(created)
}
