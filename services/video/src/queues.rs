//! The queues this service publishes to or consumes, with the per-deployment prefix.
//!
//! With an empty `QUEUE_PREFIX` the transcode queues are the shared ones crates/events
//! declares. With a prefix (tests, several stacks on one broker) they are private copies
//! that expire once unused for 30 minutes, so test runs leave nothing behind.

use events::{Envelope, Event, topology};
use lapin::{
    options::QueueDeclareOptions,
    types::{AMQPValue, FieldTable, ShortString},
};
use sqlx::PgConnection;

const PREFIXED_QUEUE_TTL_MS: i64 = 30 * 60 * 1000;

pub fn transcode_jobs(prefix: &str) -> String {
    format!("{prefix}{}", topology::TRANSCODE_JOBS)
}

/// This service's own queue of video events (transcode results, catalogue edits).
pub fn assets(prefix: &str) -> String {
    format!("{prefix}video.assets")
}

/// Arguments every declarer of a prefixed queue uses (they must agree).
pub fn arguments(prefix: &str) -> FieldTable {
    let mut args = FieldTable::default();
    if !prefix.is_empty() {
        args.insert(
            ShortString::from("x-expires"),
            AMQPValue::LongLongInt(PREFIXED_QUEUE_TTL_MS),
        );
    }
    args
}

/// Declares the jobs queue, so a job published by the outbox relay (not `mandatory`) is
/// never dropped for want of a queue.
pub async fn declare_jobs(rabbit: &events::Rabbit, prefix: &str) -> Result<(), events::Error> {
    let channel = rabbit.channel().await?;
    channel
        .queue_declare(
            transcode_jobs(prefix).as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            arguments(prefix),
        )
        .await?;
    channel.close(200, "declared".into()).await.ok();
    Ok(())
}

/// Queues the transcode job in the caller's transaction (the outbox), addressed to the
/// prefixed jobs queue through the default exchange.
pub async fn enqueue_job<T: Event>(
    conn: &mut PgConnection,
    prefix: &str,
    envelope: &Envelope<T>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO outbox (id, exchange, routing_key, payload) VALUES ($1, '', $2, $3)")
        .bind(envelope.id)
        .bind(transcode_jobs(prefix))
        .bind(sqlx::types::Json(envelope))
        .execute(conn)
        .await?;
    Ok(())
}
