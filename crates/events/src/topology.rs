//! Exchange and queue names, and their declaration.
//!
//! Everything is durable and declared with the same arguments by every service, so any
//! service may declare it first. A queue belongs to its consumer: services declare and bind
//! their own consumer queues; only the shared work queues are declared here.

use lapin::{
    Channel, ExchangeKind,
    options::{ExchangeDeclareOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, ShortString},
};

/// Topic exchange: `video.created|uploaded|progress|ready|failed|deleted|updated`.
pub const VIDEO_EVENTS: &str = "video.events";
/// Topic exchange: `user.updated|deleted`.
pub const USER_EVENTS: &str = "user.events";
/// Topic exchange for viewer interactions (views, likes, comments, shares, watch time).
pub const INTERACTIONS: &str = "interactions";

/// Work queue of transcode jobs (consumed with prefetch 1).
pub const TRANSCODE_JOBS: &str = "transcode.jobs";
/// Jobs waiting out their backoff; dead-lettered back to [`TRANSCODE_JOBS`] on expiry.
pub const TRANSCODE_RETRY: &str = "transcode.retry";
/// Jobs that failed too many times, kept for inspection.
pub const TRANSCODE_DEAD: &str = "transcode.dead";

pub async fn declare(channel: &Channel) -> Result<(), lapin::Error> {
    let durable_exchange = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    for exchange in [VIDEO_EVENTS, USER_EVENTS, INTERACTIONS] {
        channel
            .exchange_declare(
                exchange.into(),
                ExchangeKind::Topic,
                durable_exchange,
                FieldTable::default(),
            )
            .await?;
    }

    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .queue_declare(TRANSCODE_JOBS.into(), durable, FieldTable::default())
        .await?;
    channel
        .queue_declare(TRANSCODE_DEAD.into(), durable, FieldTable::default())
        .await?;
    // Messages in the retry queue carry a per-message expiration (the backoff); when it
    // expires they go back to the jobs queue through the default exchange.
    let mut retry_args = FieldTable::default();
    retry_args.insert(
        ShortString::from("x-dead-letter-exchange"),
        AMQPValue::LongString("".into()),
    );
    retry_args.insert(
        ShortString::from("x-dead-letter-routing-key"),
        AMQPValue::LongString(TRANSCODE_JOBS.into()),
    );
    channel
        .queue_declare(TRANSCODE_RETRY.into(), durable, retry_args)
        .await?;
    Ok(())
}
