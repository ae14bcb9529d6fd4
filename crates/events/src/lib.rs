//! Kino's events on RabbitMQ.
//!
//! * [`topology`]: the exchanges and shared queues, declared idempotently on every connection;
//! * [`envelope`]: the versioned envelope every event travels in (every event has an id, so
//!   every consumer can be idempotent);
//! * [`rabbit`]: a connection that is made lazily and remade after a failure, so services
//!   start without RabbitMQ and recover when it returns;
//! * [`route`]: where a message goes (exchange and routing key), for the publisher and the
//!   outbox alike;
//! * [`queue`]: queues under the deployment's `QUEUE_PREFIX`, with the arguments every
//!   declarer of a queue must agree on;
//! * [`transcode`]: the transcode work queues (quorum queues with a delivery limit), as
//!   the video service and the transcoder both declare them;
//! * [`publisher`]: publishing with publisher confirms: `publish` returns only once the
//!   broker has taken responsibility for the message (persistent, on a durable exchange);
//! * [`outbox`]: events written in the same transaction as the change they announce, and
//!   the relay that publishes them;
//! * [`batch`]: publishing many small events with confirms in batches, behind a bounded
//!   buffer, several events per message ([`pack`]);
//! * [`consumer`]: consuming a service's own queue across reconnects, settling each
//!   delivery (or batch of deliveries) only after it was handled;
//! * [`tap`]: watching events from an exclusive queue of one's own (tools, tests);
//! * [`user`], [`video`], [`interaction`], [`media`], [`moderation`], [`webhook`]: the
//!   event types;
//! * [`trending`]: the ranker-to-media contract (trending sets, their announcements on
//!   media's real-time hub, and the hub's wire format).

pub mod batch;
pub mod consumer;
pub mod envelope;
pub mod interaction;
pub mod media;
pub mod moderation;
pub mod outbox;
pub mod pack;
pub mod publisher;
pub mod queue;
pub mod rabbit;
pub mod route;
pub mod tap;
pub mod topology;
pub mod transcode;
pub mod trending;
pub mod user;
pub mod video;
pub mod webhook;

pub use envelope::{Envelope, Event};
pub use publisher::Publisher;
pub use queue::{Namespace, QueueSpec};
pub use rabbit::Rabbit;
pub use route::Route;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("RabbitMQ: {0}")]
    Amqp(#[from] lapin::Error),
    #[error("RabbitMQ did not answer within {0:?}")]
    Timeout(std::time::Duration),
    #[error("RabbitMQ unavailable: {0}")]
    Unavailable(String),
    #[error("the broker refused the message (nack)")]
    Nacked,
    #[error("outbox: {0}")]
    Outbox(sqlx::Error),
    #[error("event encoding: {0}")]
    Encoding(#[from] serde_json::Error),
}

impl Error {
    /// The same failure, for answering several callers of one message (the error types
    /// underneath are not `Clone`; their message is kept).
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            Self::Timeout(after) => Self::Timeout(*after),
            Self::Nacked => Self::Nacked,
            other => Self::Unavailable(other.to_string()),
        }
    }
}
