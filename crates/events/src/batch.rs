//! Publishing many small events with confirms, in batches (group commit).
//!
//! Callers hand messages to a bounded buffer ([`BatchPublisher::try_publish`]) and wait for
//! their confirm. One task takes whatever is buffered (up to `max_batch`), publishes it all
//! on one confirm channel, then waits for the broker's confirms of the whole batch, and
//! answers each caller. So a message is acknowledged to its caller only once the broker
//! has it, yet thousands of messages share each round trip.
//!
//! Events of a batch that share an exchange and a routing key travel as packs of up to
//! `per_message` events, one AMQP message each (crate::pack): the broker's cost is per
//! message, so this divides it by the pack size when the buffer is busy, while a lone event
//! still goes out at once as a message of its own.
//!
//! A full buffer is refused at once ([`Full`]) rather than queued without bound or dropped
//! silently: the caller tells its client to slow down.

use std::{collections::HashMap, sync::Arc, time::Duration};

use futures::future::join_all;
use lapin::{
    BasicProperties, Channel, Confirmation,
    options::{BasicPublishOptions, ConfirmSelectOptions},
};
use tokio::sync::{mpsc, oneshot};

use crate::{Envelope, Error, Event, Rabbit, pack};

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
    /// Starts the publishing task: up to `capacity` events wait in the buffer, up to
    /// `max_batch` are published per round trip, in messages of up to `per_message` events
    /// (1: one message per event). The task ends once every clone of the publisher is
    /// dropped, after publishing what was buffered.
    pub fn spawn(
        rabbit: Arc<Rabbit>,
        capacity: usize,
        max_batch: usize,
        per_message: usize,
    ) -> Self {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        tokio::spawn(run(rabbit, rx, max_batch.max(1), per_message.max(1)));
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

async fn run(
    rabbit: Arc<Rabbit>,
    mut rx: mpsc::Receiver<Item>,
    max_batch: usize,
    per_message: usize,
) {
    let mut channel: Option<Channel> = None;
    let mut batch = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut batch, max_batch).await > 0 {
        metrics::gauge!("events_publish_buffered").decrement(batch.len() as f64);
        metrics::histogram!("events_publish_batch_size").record(batch.len() as f64);
        let messages = into_messages(std::mem::take(&mut batch), per_message);
        let ok = publish(&rabbit, &mut channel, messages).await;
        if !ok {
            channel = None; // it may be broken: take a fresh one next time
        }
    }
}

/// One AMQP message: one event, or a pack of events with the same exchange and routing
/// key, and the callers to answer once the broker confirmed it.
struct Message {
    exchange: &'static str,
    routing_key: String,
    /// The event's id, for a message of one event.
    message_id: Option<String>,
    events: usize,
    body: Vec<u8>,
    done: Vec<oneshot::Sender<Result<(), Error>>>,
}

impl Message {
    fn answer(self, outcome: &Result<(), Error>) {
        for done in self.done {
            let _ = done.send(match outcome {
                Ok(()) => Ok(()),
                Err(e) => Err(e.duplicate()),
            });
        }
    }
}

/// Groups a batch by exchange and routing key (in order of first appearance, and in order
/// within a group) and cuts each group into messages of up to `per_message` events.
fn into_messages(items: Vec<Item>, per_message: usize) -> Vec<Message> {
    let mut groups: Vec<Vec<Item>> = Vec::new();
    let mut index: HashMap<(&'static str, String), usize> = HashMap::new();
    for item in items {
        let key = (item.exchange, item.routing_key.clone());
        let i = *index.entry(key).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[i].push(item);
    }
    let mut messages = Vec::new();
    for group in groups {
        let mut group = group.into_iter().peekable();
        while group.peek().is_some() {
            let chunk: Vec<Item> = group.by_ref().take(per_message).collect();
            let (exchange, routing_key) = (chunk[0].exchange, chunk[0].routing_key.clone());
            let message_id = (chunk.len() == 1).then(|| chunk[0].message_id.clone());
            let body = if chunk.len() == 1 {
                chunk[0].payload.clone()
            } else {
                let parts: Vec<&[u8]> = chunk.iter().map(|i| i.payload.as_slice()).collect();
                pack::encode(&parts)
            };
            messages.push(Message {
                exchange,
                routing_key,
                message_id,
                events: chunk.len(),
                body,
                done: chunk.into_iter().map(|i| i.done).collect(),
            });
        }
    }
    messages
}

/// Publishes `messages` and answers each of their callers; false if the channel should be
/// replaced.
async fn publish(rabbit: &Rabbit, slot: &mut Option<Channel>, messages: Vec<Message>) -> bool {
    let channel = match confirm_channel(rabbit, slot).await {
        Ok(c) => c,
        Err(e) => {
            let outcome = Err(Error::Unavailable(e.to_string()));
            for message in messages {
                message.answer(&outcome);
            }
            return false;
        }
    };
    metrics::counter!("events_publish_messages_total").increment(messages.len() as u64);
    let mut pending = Vec::with_capacity(messages.len());
    let mut healthy = true;
    for message in messages {
        let mut props = BasicProperties::default()
            .with_delivery_mode(2) // persistent
            .with_content_type("application/json".into());
        if let Some(id) = &message.message_id {
            props = props.with_message_id(id.as_str().into());
        }
        let props = pack::with_count(props, message.events);
        let sent = channel
            .basic_publish(
                message.exchange.into(),
                message.routing_key.as_str().into(),
                BasicPublishOptions::default(),
                &message.body,
                props,
            )
            .await;
        match sent {
            Ok(confirm) => pending.push((message, confirm)),
            Err(e) => {
                healthy = false;
                message.answer(&Err(e.into()));
            }
        }
    }
    let outcomes = join_all(pending.into_iter().map(|(message, confirm)| async move {
        let outcome = match tokio::time::timeout(CONFIRM_TIMEOUT, confirm).await {
            Err(_) => Err(Error::Timeout(CONFIRM_TIMEOUT)),
            Ok(Err(e)) => Err(e.into()),
            Ok(Ok(Confirmation::Nack(_))) => Err(Error::Nacked),
            Ok(Ok(_)) => Ok(()),
        };
        let ok = outcome.is_ok();
        message.answer(&outcome);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn item(routing_key: &str, n: u8) -> Item {
        Item {
            exchange: "interactions",
            routing_key: routing_key.to_owned(),
            message_id: n.to_string(),
            payload: format!("{{\"n\":{n}}}").into_bytes(),
            done: oneshot::channel().0,
        }
    }

    #[test]
    fn a_batch_becomes_packs_per_routing_key_in_order_and_of_bounded_size() {
        let items = vec![
            item("view", 1),
            item("like", 2),
            item("view", 3),
            item("view", 4),
            item("view", 5),
        ];
        let messages = into_messages(items, 3);
        let summary: Vec<(&str, usize, String, Option<String>)> = messages
            .iter()
            .map(|m| {
                (
                    m.routing_key.as_str(),
                    m.events,
                    String::from_utf8(m.body.clone()).unwrap(),
                    m.message_id.clone(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("view", 3, r#"[{"n":1},{"n":3},{"n":4}]"#.to_owned(), None),
                ("view", 1, r#"{"n":5}"#.to_owned(), Some("5".to_owned())),
                ("like", 1, r#"{"n":2}"#.to_owned(), Some("2".to_owned())),
            ]
        );
        assert!(messages.iter().all(|m| m.done.len() == m.events));
    }

    #[test]
    fn one_event_per_message_when_asked() {
        let messages = into_messages(vec![item("view", 1), item("view", 2)], 1);
        assert_eq!(messages.len(), 2);
        assert!(
            messages
                .iter()
                .all(|m| m.events == 1 && m.body.starts_with(b"{"))
        );
    }
}
