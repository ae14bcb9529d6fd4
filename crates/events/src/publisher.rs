//! Publishing with publisher confirms.
//!
//! [`Publisher::publish`] returns `Ok` only after the broker confirmed the message: it is
//! persistent and on a durable exchange, so every durable queue bound at that moment has it
//! safely, even across a broker restart. Any failure surfaces as an error; the caller
//! (usually the outbox relay) keeps the event and tries again later.
//!
//! Messages are not `mandatory`: queues belong to consumers, and an event nobody has
//! subscribed to yet (no queue bound) is dropped by design rather than retried forever.

use std::{sync::Arc, time::Duration};

use lapin::{
    BasicProperties, Channel, Confirmation,
    options::{BasicPublishOptions, ConfirmSelectOptions},
};
use tokio::sync::Mutex;

use crate::{Envelope, Error, Event, Rabbit};

const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Publisher {
    rabbit: Arc<Rabbit>,
    channel: Mutex<Option<Channel>>,
}

impl Publisher {
    pub fn new(rabbit: Arc<Rabbit>) -> Self {
        Self {
            rabbit,
            channel: Mutex::new(None),
        }
    }

    /// Publishes one event and waits for the broker's confirm.
    pub async fn publish<T: Event>(&self, envelope: &Envelope<T>) -> Result<(), Error> {
        let payload = serde_json::to_vec(envelope)?;
        self.publish_raw(T::EXCHANGE, T::TYPE, &envelope.id.to_string(), &payload)
            .await
    }

    /// Publishes pre-encoded bytes (the outbox stores encoded envelopes).
    pub async fn publish_raw(
        &self,
        exchange: &str,
        routing_key: &str,
        message_id: &str,
        payload: &[u8],
    ) -> Result<(), Error> {
        let channel = self.confirm_channel().await?;
        let props = BasicProperties::default()
            .with_delivery_mode(2) // persistent
            .with_content_type("application/json".into())
            .with_message_id(message_id.into())
            .with_type(routing_key.into());
        let outcome = async {
            let confirm = channel
                .basic_publish(
                    exchange.into(),
                    routing_key.into(),
                    BasicPublishOptions::default(),
                    payload,
                    props,
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
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        *slot = Some(channel.clone());
        Ok(channel)
    }
}
