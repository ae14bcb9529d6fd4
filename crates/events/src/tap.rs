//! Watching events without taking part: an exclusive queue of one's own.
//!
//! Tools and tests that want to *see* events (a benchmark waiting for `video.ready`, a test
//! checking what auth announced) must not consume from a service's queue, or the service
//! would miss what they took. A [`Tap`] declares a server-named, exclusive, auto-deleted
//! queue bound to the routing keys it is given and consumes it without acknowledgements:
//! it gets a copy of every matching event from the moment it is bound, and the broker
//! deletes the queue when the tap's connection goes.
//!
//! Bind namespaced keys ([`Namespace::routing_key`](crate::Namespace::routing_key)):
//! a tap sees only the stack whose prefix it binds.

use std::sync::Arc;

use futures::StreamExt;
use lapin::{
    Channel, Consumer,
    options::{BasicConsumeOptions, QueueBindOptions, QueueDeclareOptions},
    types::FieldTable,
};

use crate::{Error, Rabbit};

pub struct Tap {
    rabbit: Arc<Rabbit>,
    // Kept open: the queue lives as long as its channel's connection.
    _channel: Channel,
    consumer: Consumer,
}

impl Tap {
    /// A new queue bound to each `(exchange, routing key pattern)`, on a connection of its
    /// own named `name`. Events published before this returns are not seen.
    pub async fn bind(
        amqp_url: &str,
        name: &str,
        bindings: impl IntoIterator<Item = (&str, String)>,
    ) -> Result<Self, Error> {
        let rabbit = Rabbit::new(amqp_url, name);
        let channel = rabbit.channel().await?;
        let exclusive = QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..Default::default()
        };
        let queue = channel
            .queue_declare("".into(), exclusive, FieldTable::default())
            .await?;
        for (exchange, pattern) in bindings {
            channel
                .queue_bind(
                    queue.name().clone(),
                    exchange.into(),
                    pattern.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        let no_ack = BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        };
        let consumer = channel
            .basic_consume(
                queue.name().clone(),
                "".into(),
                no_ack,
                FieldTable::default(),
            )
            .await?;
        Ok(Self {
            rabbit,
            _channel: channel,
            consumer,
        })
    }

    /// The next event's body, as published; `None` once the connection is gone.
    pub async fn next(&mut self) -> Option<Vec<u8>> {
        match self.consumer.next().await? {
            Ok(delivery) => Some(delivery.data),
            Err(error) => {
                tracing::warn!(%error, "tap: consumer failed");
                None
            }
        }
    }

    /// The next event that is JSON (any envelope, undecoded), skipping other bodies.
    pub async fn next_json(&mut self) -> Option<serde_json::Value> {
        loop {
            let body = self.next().await?;
            match serde_json::from_slice(&body) {
                Ok(event) => return Some(event),
                Err(error) => tracing::warn!(%error, "tap: a body that is not JSON, skipped"),
            }
        }
    }

    /// Closes the connection (the broker deletes the queue).
    pub async fn close(self) {
        self.rabbit.close().await;
    }
}
