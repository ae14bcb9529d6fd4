//! Publishing with publisher confirms.
//!
//! [`Publisher::publish`] returns `Ok` only after the broker confirmed the message: it is
//! persistent and on a durable exchange, so every durable queue bound at that moment has it
//! safely, even across a broker restart. Any failure surfaces as an error; the caller
//! (usually the outbox relay) keeps the event and tries again later.
//!
//! Messages are not `mandatory`: queues belong to consumers, and an event nobody has
//! subscribed to yet (no queue bound) is dropped by design rather than retried forever.
//! The exception is work sent straight to a queue ([`Route::queue`]): a publisher made
//! [`Publisher::declaring`] those queues declares them on every channel it opens, before
//! that channel's first publish, so they exist when it publishes, also after a reconnect
//! to a broker that lost them. (A throw-away queue that expires while the channel lives is
//! not redeclared: its expiry is far longer than a test stack runs.)
//!
//! Invariant: one channel at a time, in confirm mode, replaced after any failure (a failed
//! publish may have broken it), and only ever used once its declarations succeeded.

use std::{sync::Arc, time::Duration};

use lapin::{
    BasicProperties, Channel, Confirmation,
    options::{BasicPublishOptions, ConfirmSelectOptions},
};
use tokio::sync::Mutex;

use crate::{Envelope, Error, Event, Namespace, Rabbit, Route, queue::QueueSpec};

const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Publisher {
    rabbit: Arc<Rabbit>,
    /// Declared on every new channel before it is used.
    queues: Vec<QueueSpec>,
    channel: Mutex<Option<Channel>>,
}

impl Publisher {
    pub fn new(rabbit: Arc<Rabbit>) -> Self {
        Self {
            rabbit,
            queues: Vec::new(),
            channel: Mutex::new(None),
        }
    }

    /// Also declares `queues` (with their arguments and bindings) on every channel it
    /// opens: for queues it sends to directly, which would drop messages if missing.
    pub fn declaring(mut self, queues: impl IntoIterator<Item = QueueSpec>) -> Self {
        self.queues.extend(queues);
        self
    }

    /// Publishes one event on its type's route in `namespace` ([`Namespace::route`]) and
    /// waits for the broker's confirm.
    pub async fn publish<T: Event>(
        &self,
        namespace: &Namespace,
        envelope: &Envelope<T>,
    ) -> Result<(), Error> {
        let payload = serde_json::to_vec(envelope)?;
        let route = namespace.route::<T>();
        self.publish_raw(
            &route.exchange,
            &route.routing_key,
            &envelope.id.to_string(),
            &payload,
        )
        .await
    }

    /// Publishes pre-encoded bytes (the outbox stores encoded envelopes), with the event's
    /// id as `message_id` and the routing key as `type`.
    pub async fn publish_raw(
        &self,
        exchange: &str,
        routing_key: &str,
        message_id: &str,
        payload: &[u8],
    ) -> Result<(), Error> {
        let properties = BasicProperties::default()
            .with_message_id(message_id.into())
            .with_type(routing_key.into());
        self.publish_with(&Route::new(exchange, routing_key), payload, properties)
            .await
    }

    /// Publishes pre-encoded bytes on `route` with `properties` (headers, a per-message
    /// `expiration`…) and waits for the confirm. Whatever `properties` say, the message is
    /// persistent JSON.
    pub async fn publish_with(
        &self,
        route: &Route,
        payload: &[u8],
        properties: BasicProperties,
    ) -> Result<(), Error> {
        let properties = properties
            .with_delivery_mode(2) // persistent
            .with_content_type("application/json".into());
        let outcome = async {
            let channel = self.confirm_channel().await?;
            let confirm = channel
                .basic_publish(
                    route.exchange.as_str().into(),
                    route.routing_key.as_str().into(),
                    BasicPublishOptions::default(),
                    payload,
                    properties,
                )
                .await?;
            match tokio::time::timeout(CONFIRM_TIMEOUT, confirm).await {
                Err(_) => Err(Error::Timeout(CONFIRM_TIMEOUT)),
                Ok(confirmation) => match confirmation? {
                    Confirmation::Ack(_) | Confirmation::NotRequested => Ok(()),
                    Confirmation::Nack(_) => Err(Error::Nacked),
                },
            }
        }
        .await;
        if outcome.is_err() {
            // The channel may be broken: take a fresh one next time.
            self.channel.lock().await.take();
        }
        outcome
    }

    async fn confirm_channel(&self) -> Result<Channel, Error> {
        let mut slot = self.channel.lock().await;
        if let Some(channel) = slot.as_ref().filter(|c| c.status().connected()) {
            return Ok(channel.clone());
        }
        let channel = self.rabbit.channel().await?;
        for queue in &self.queues {
            queue.declare(&channel).await?;
        }
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        *slot = Some(channel.clone());
        Ok(channel)
    }
}
