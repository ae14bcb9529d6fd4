//! Publishing many small events with confirms, in batches (group commit).
//!
//! Callers hand messages to a bounded buffer ([`BatchPublisher::try_publish`]) and wait for
//! their confirm. One task takes whatever is buffered (up to `max_batch`), publishes it all
//! on one confirm channel, then waits for the broker's confirms of the whole batch, and
//! answers each caller. So a message is acknowledged to its caller only once the broker
//! has it, yet thousands of messages share each round trip.
//!
//! A full buffer is refused at once ([`Full`]) rather than queued without bound or dropped
//! silently: the caller tells its client to slow down.

use std::{sync::Arc, time::Duration};

use futures::future::join_all;
use lapin::{
    BasicProperties, Channel, Confirmation,
    options::{BasicPublishOptions, ConfirmSelectOptions},
};
use tokio::sync::{mpsc, oneshot};

use crate::{Envelope, Error, Event, Rabbit};

const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);

/// The buffer is full: too many messages are waiting for the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the publish buffer is full")]
pub struct Full;

struct Item {
    exchange: &'static str,
    routing_key: String,
    message_id: String,
    payload: Vec<u8>,
    done: oneshot::Sender<Result<(), Error>>,
}

#[derive(Clone)]
pub struct BatchPublisher {
    tx: mpsc::Sender<Item>,
}

impl BatchPublisher {
    /// Starts the publishing task. It ends once every clone of the publisher is dropped,
    /// after publishing what was buffered.
    pub fn spawn(rabbit: Arc<Rabbit>, capacity: usize, max_batch: usize) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        tokio::spawn(run(rabbit, rx, max_batch.max(1)));
        Self { tx }
    }

    /// Buffers `envelope` for publishing with `routing_key`; the returned future resolves
    /// once the broker confirmed it (or publishing failed). `Err(Full)` when the buffer
    /// has no room: nothing was buffered.
    pub fn try_publish<T: Event>(
        &self,
        routing_key: String,
        envelope: &Envelope<T>,
    ) -> Result<impl Future<Output = Result<(), Error>> + use<T>, PublishError> {
        let payload = serde_json::to_vec(envelope)?;
        let (done, confirmed) = oneshot::channel();
        let item = Item {
            exchange: T::EXCHANGE,
            routing_key,
            message_id: envelope.id.to_string(),
            payload,
            done,
        };
        self.tx
            .try_send(item)
            .map_err(|_| PublishError::Full(Full))?;
        metrics::gauge!("events_publish_buffered").increment(1.0);
        Ok(async move {
            // A dropped sender means the task died with the message: not confirmed.
            confirmed
                .await
                .unwrap_or(Err(Error::Timeout(CONFIRM_TIMEOUT)))
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Full(#[from] Full),
    #[error("event encoding: {0}")]
    Encoding(#[from] serde_json::Error),
}

async fn run(rabbit: Arc<Rabbit>, mut rx: mpsc::Receiver<Item>, max_batch: usize) {
    let mut channel: Option<Channel> = None;
    let mut batch = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut batch, max_batch).await > 0 {
        metrics::gauge!("events_publish_buffered").decrement(batch.len() as f64);
        metrics::histogram!("events_publish_batch_size").record(batch.len() as f64);
        let ok = publish(&rabbit, &mut channel, std::mem::take(&mut batch)).await;
        if !ok {
            channel = None; // it may be broken: take a fresh one next time
        }
    }
}

/// Publishes `items` and answers each; false if the channel should be replaced.
async fn publish(rabbit: &Rabbit, slot: &mut Option<Channel>, items: Vec<Item>) -> bool {
    let channel = match confirm_channel(rabbit, slot).await {
        Ok(c) => c,
        Err(e) => {
            let message = e.to_string();
            for item in items {
                let _ = item.done.send(Err(Error::Unavailable(message.clone())));
            }
            return false;
        }
    };
    let mut pending = Vec::with_capacity(items.len());
    let mut healthy = true;
    for item in items {
        let props = BasicProperties::default()
            .with_delivery_mode(2) // persistent
            .with_content_type("application/json".into())
            .with_message_id(item.message_id.as_str().into());
        let sent = channel
            .basic_publish(
                item.exchange.into(),
                item.routing_key.as_str().into(),
                BasicPublishOptions::default(),
                &item.payload,
                props,
            )
            .await;
        match sent {
            Ok(confirm) => pending.push((item.done, confirm)),
            Err(e) => {
                healthy = false;
                let _ = item.done.send(Err(e.into()));
            }
        }
    }
    let outcomes = join_all(pending.into_iter().map(|(done, confirm)| async move {
        let outcome = match tokio::time::timeout(CONFIRM_TIMEOUT, confirm).await {
            Err(_) => Err(Error::Timeout(CONFIRM_TIMEOUT)),
            Ok(Err(e)) => Err(e.into()),
            Ok(Ok(Confirmation::Nack(_))) => Err(Error::Nacked),
            Ok(Ok(_)) => Ok(()),
        };
        let ok = outcome.is_ok();
        let _ = done.send(outcome);
        ok
    }))
    .await;
    healthy && outcomes.into_iter().all(|ok| ok)
}

async fn confirm_channel(rabbit: &Rabbit, slot: &mut Option<Channel>) -> Result<Channel, Error> {
    if let Some(channel) = slot.as_ref().filter(|c| c.status().connected()) {
        return Ok(channel.clone());
    }
    let channel = rabbit.channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    *slot = Some(channel.clone());
    Ok(channel)
}
