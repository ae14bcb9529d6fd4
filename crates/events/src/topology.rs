//! Exchange and queue names, and their declaration.
//!
//! Everything is durable and declared with the same arguments by every service, so any
//! service may declare it first. Only the exchanges are declared here, on every
//! connection of every service. A queue belongs to its consumer: services declare and
//! bind their own consumer queues, and the transcode work queues are declared by the two
//! services that use them (video, transcoder) from crate::transcode, under their
//! `QUEUE_PREFIX`: a service that never touches them never declares them, so their
//! arguments (quorum, delivery limit) cannot break another service's connection.

use lapin::{Channel, ExchangeKind, options::ExchangeDeclareOptions, types::FieldTable};

/// Topic exchange: `video.created|uploaded|progress|ready|failed|deleted|updated|captions`.
pub const VIDEO_EVENTS: &str = "video.events";
/// Topic exchange: `user.updated|deleted`.
pub const USER_EVENTS: &str = "user.events";
/// Topic exchange: `comment.added`, `subscription.added` (crate::media).
pub const MEDIA_EVENTS: &str = "media.events";
/// Topic exchange: `webhook.endpoint_disabled` (crate::webhook).
pub const WEBHOOK_EVENTS: &str = "webhook.events";
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
    for exchange in [
        VIDEO_EVENTS,
        USER_EVENTS,
        MEDIA_EVENTS,
        WEBHOOK_EVENTS,
        INTERACTIONS,
    ] {
        channel
            .exchange_declare(
                exchange.into(),
                ExchangeKind::Topic,
                durable_exchange,
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}
