//! Consuming a service's own queue, one delivery at a time, across reconnects.
//!
//! [`spawn`] declares the queue and its bindings (idempotently, on every connection), then
//! hands each delivery to the handler and settles it by the handler's [`Outcome`]. A delivery
//! is acknowledged only after the handler returned: a crash in between redelivers it, so
//! handlers must be idempotent (every event has an id for that). When the connection breaks
//! the loop waits a little and starts again; unacknowledged deliveries go back to the queue.
//!
//! Shutdown stops taking new deliveries; the one being handled finishes first.
//!
//! While consuming, the queue's depth and consumer count are reported every few seconds
//! (`queue_messages_ready`, `queue_consumers` on `/metrics`), so a backlog is visible.

use std::{collections::VecDeque, future::Future, sync::Arc, time::Duration};

use futures::StreamExt;
use lapin::{
    Channel,
    message::Delivery,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
        QueueDeclareOptions,
    },
    types::FieldTable,
};
use platform::background::reconnecting;

pub use crate::queue::QueueSpec;
use crate::{
    Envelope, Error, Rabbit,
    envelope::{DecodeError, Payload},
    pack,
};

/// What to do with a delivery once handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done (or a duplicate): remove it from the queue.
    Ack,
    /// A transient failure (a store is down): put it back and try again after a pause.
    Retry,
    /// It can never succeed (undecodable, unknown version): drop it, or dead-letter it if
    /// the queue has a dead-letter exchange. Logged.
    Reject,
}

/// Pause before a retried delivery is handed back, so a store outage does not spin.
const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// Pause before reconnecting after the channel broke.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);
/// How often a consumer asks the broker how deep its queue is.
const DEPTH_INTERVAL: Duration = Duration::from_secs(5);

/// Consumes `spec`'s queue until shutdown. `prefetch` bounds the deliveries in
/// flight from the broker (they are still handled one at a time).
pub fn spawn<H, F>(
    rabbit: Arc<Rabbit>,
    spec: QueueSpec,
    prefetch: u16,
    shutdown: &platform::Shutdown,
    handler: H,
) -> tokio::task::JoinHandle<()>
where
    H: Fn(Delivery) -> F + Send + Sync + 'static,
    F: Future<Output = Outcome> + Send,
{
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        let what = format!("consumer of {}", spec.name);
        let session = || consume(&rabbit, &spec, prefetch, &handler);
        reconnecting(&what, RECONNECT_PAUSE, &shutdown, session).await;
    })
}

/// One connection's worth of consuming. Returns when the channel breaks.
///
/// Cancelled (by shutdown) only while waiting for the next delivery or in the handler;
/// either way the unacknowledged delivery goes back to the queue when the channel closes.
async fn consume<H, F>(
    rabbit: &Rabbit,
    spec: &QueueSpec,
    prefetch: u16,
    handler: &H,
) -> Result<(), Error>
where
    H: Fn(Delivery) -> F,
    F: Future<Output = Outcome>,
{
    let channel = rabbit.channel().await?;
    spec.declare(&channel).await?;
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await?;
    let mut deliveries = channel
        .basic_consume(
            spec.name.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let _depth = AbortOnDrop(tokio::spawn(report_depth(
        channel.clone(),
        spec.name.clone(),
    )));
    while let Some(delivery) = deliveries.next().await {
        let delivery = delivery?;
        let acker = delivery.acker.clone();
        let routing_key = delivery.routing_key.to_string();
        match handler(delivery).await {
            Outcome::Ack => {
                acker.ack(BasicAckOptions::default()).await?;
            }
            Outcome::Retry => {
                tokio::time::sleep(RETRY_PAUSE).await;
                acker
                    .nack(BasicNackOptions {
                        requeue: true,
                        ..Default::default()
                    })
                    .await?;
            }
            Outcome::Reject => {
                tracing::error!(queue = %spec.name, %routing_key, "consumer: rejected a delivery");
                acker
                    .nack(BasicNackOptions {
                        requeue: false,
                        ..Default::default()
                    })
                    .await?;
            }
        }
    }
    Ok(())
}

/// Reports the queue's depth until the channel fails (the consumer then reconnects and
/// starts a new reporter). A passive declare only reads; the queue exists, since this
/// consumer declared it.
async fn report_depth(channel: Channel, queue: String) {
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    loop {
        match channel
            .queue_declare(queue.as_str().into(), passive, FieldTable::default())
            .await
        {
            Ok(q) => {
                platform::metrics::record_queue_depth(&queue, q.message_count(), q.consumer_count())
            }
            Err(e) => {
                tracing::debug!(%queue, error = %e, "queue depth: channel gone");
                return;
            }
        }
        tokio::time::sleep(DEPTH_INTERVAL).await;
    }
}

/// Stops the depth reporter with the consume loop, however that ends (error or shutdown).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Decodes a delivery's body as one envelope of `T` (for queues that never get packs;
/// crate::pack::decode takes both), refusing a version newer than `T` knows.
pub fn decode<T: Payload>(data: &[u8]) -> Result<Envelope<T>, DecodeError> {
    Envelope::decode(data)
}

impl Outcome {
    /// What to do with a delivery that did not decode, logged: an event type the consumer
    /// does not know is not for it (a pattern binding, or a producer newer than this
    /// consumer) and is acknowledged, as consumers always did; anything else (malformed,
    /// a version newer than known) can never succeed here and is rejected.
    pub fn undecodable(error: &DecodeError) -> Self {
        match error {
            DecodeError::UnknownType(kind) => {
                tracing::debug!(%kind, "consumer: ignored an event of another type");
                Self::Ack
            }
            other => {
                tracing::error!(error = %other, "consumer: refused an event");
                Self::Reject
            }
        }
    }
}

/// What to do with a batch of deliveries once handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Everything was applied: one `multiple` ack settles the batch. The deliveries at
    /// `reject` (indices) can never succeed (undecodable): they are rejected, logged.
    Ack { reject: Vec<usize> },
    /// A transient failure: the whole batch goes back to the queue after a pause.
    Retry,
}

/// How a batching consumer fills its batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// A batch is handed over once it holds this many events (a pack counts as the events
    /// it carries, crate::pack), or at `max_wait`.
    pub max_events: usize,
    /// How long a batch waits to fill once it has its first delivery.
    pub max_wait: Duration,
    /// Unacknowledged messages the broker may send ahead (AMQP prefetch: the bound on
    /// what waits in this process). It counts messages, not events: with packs, a few
    /// messages fill a batch; with single events it caps a batch at this many.
    pub prefetch: u16,
    /// Batches handled at once (at least 1). With 2, the next batch is decoded and
    /// prepared while the previous one is being written, so the store is kept busy.
    /// Batches are still settled in the order they were taken; only handlers whose
    /// batches may take effect in any order (idempotent, commutative writes) may use
    /// more than 1.
    pub in_flight: usize,
}

/// Consumes `spec`'s queue in batches until shutdown (see [`Batching`]). The
/// handler gets the batch and the batch is settled by its outcome, only after it returned:
/// a crash in between redelivers the whole batch, so the handler must be idempotent for
/// all of it. Handlers run as tasks of their own (so that `in_flight` of them overlap);
/// one that panics has its batch put back, as a [`BatchOutcome::Retry`].
pub fn spawn_batched<H, F>(
    rabbit: Arc<Rabbit>,
    spec: QueueSpec,
    batching: Batching,
    shutdown: &platform::Shutdown,
    handler: H,
) -> tokio::task::JoinHandle<()>
where
    H: Fn(Vec<Delivery>) -> F + Send + Sync + 'static,
    F: Future<Output = BatchOutcome> + Send + 'static,
{
    let batching = Batching {
        max_events: batching.max_events.max(1),
        prefetch: batching.prefetch.max(1),
        in_flight: batching.in_flight.max(1),
        ..batching
    };
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        let what = format!("consumer of {}", spec.name);
        let session = || consume_batches(&rabbit, &spec, batching, &handler);
        reconnecting(&what, RECONNECT_PAUSE, &shutdown, session).await;
    })
}

async fn consume_batches<H, F>(
    rabbit: &Rabbit,
    spec: &QueueSpec,
    batching: Batching,
    handler: &H,
) -> Result<(), Error>
where
    H: Fn(Vec<Delivery>) -> F,
    F: Future<Output = BatchOutcome> + Send + 'static,
{
    let channel = rabbit.channel().await?;
    spec.declare(&channel).await?;
    channel
        .basic_qos(batching.prefetch, BasicQosOptions::default())
        .await?;
    let mut deliveries = channel
        .basic_consume(
            spec.name.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    // Batches being handled, oldest first, with their delivery tags. A batch is settled
    // as soon as its handler finished and every older one is settled, while the next
    // batch is being taken. If this function returns early (the channel broke, or
    // shutdown dropped it), handlers may still finish, but nothing acknowledges their
    // batches: the broker redelivers them to the next consumer, which the handlers'
    // idempotence makes harmless.
    let mut handling: VecDeque<(Vec<u64>, tokio::task::JoinHandle<BatchOutcome>)> = VecDeque::new();
    // The batch being taken: its deliveries, their events, when it is due at the latest.
    let mut batch: Vec<Delivery> = Vec::new();
    let mut events = 0;
    let mut deadline = tokio::time::Instant::now();
    loop {
        let room = handling.len() < batching.in_flight;
        let full = events >= batching.max_events;
        if room && !batch.is_empty() && (full || tokio::time::Instant::now() >= deadline) {
            events = 0;
            handling.push_back(start(handler, std::mem::take(&mut batch)));
            continue;
        }
        tokio::select! {
            finished = async { (&mut handling.front_mut().expect("not empty").1).await },
                if !handling.is_empty() => {
                let (tags, _) = handling.pop_front().expect("not empty");
                settle(&channel, spec, &tags, outcome(spec, finished)).await?;
            }
            next = deliveries.next(), if !full => {
                let Some(delivery) = next else {
                    // The broker cancelled the consumer: finish what was taken.
                    if !batch.is_empty() {
                        handling.push_back(start(handler, batch));
                    }
                    while let Some((tags, task)) = handling.pop_front() {
                        settle(&channel, spec, &tags, outcome(spec, task.await)).await?;
                    }
                    return Ok(());
                };
                let delivery = delivery?;
                if batch.is_empty() {
                    deadline = tokio::time::Instant::now() + batching.max_wait;
                }
                events += pack::count(&delivery.properties);
                batch.push(delivery);
            }
            () = tokio::time::sleep_until(deadline), if room && !batch.is_empty() => {}
        }
    }
}

/// Starts handling `batch` in a task of its own; returns its delivery tags and the task.
fn start<H, F>(
    handler: &H,
    batch: Vec<Delivery>,
) -> (Vec<u64>, tokio::task::JoinHandle<BatchOutcome>)
where
    H: Fn(Vec<Delivery>) -> F,
    F: Future<Output = BatchOutcome> + Send + 'static,
{
    let tags = batch.iter().map(|d| d.delivery_tag).collect();
    (tags, tokio::spawn(handler(batch)))
}

/// A handler task's outcome; one that panicked has its batch put back.
fn outcome(
    spec: &QueueSpec,
    finished: Result<BatchOutcome, tokio::task::JoinError>,
) -> BatchOutcome {
    finished.unwrap_or_else(|e| {
        tracing::error!(queue = %spec.name, error = %e, "consumer: batch handler failed");
        BatchOutcome::Retry
    })
}

/// Settles one batch (tags in delivery order) by its outcome.
async fn settle(
    channel: &Channel,
    spec: &QueueSpec,
    tags: &[u64],
    outcome: BatchOutcome,
) -> Result<(), Error> {
    let last = *tags.last().expect("a batch is never empty");
    match outcome {
        BatchOutcome::Ack { reject } => {
            // Rejected ones first (one by one); then one ack up to the highest other tag
            // settles the rest (a tag already rejected is no longer outstanding). Earlier
            // batches are settled already, so `multiple` covers this batch only.
            for &index in &reject {
                if let Some(&tag) = tags.get(index) {
                    tracing::error!(queue = %spec.name, "consumer: rejected a delivery");
                    channel.basic_nack(tag, BasicNackOptions::default()).await?;
                }
            }
            let highest = (0..tags.len())
                .rev()
                .find(|i| !reject.contains(i))
                .map(|i| tags[i]);
            if let Some(tag) = highest {
                channel
                    .basic_ack(tag, BasicAckOptions { multiple: true })
                    .await?;
            }
        }
        BatchOutcome::Retry => {
            tokio::time::sleep(RETRY_PAUSE).await;
            channel
                .basic_nack(
                    last,
                    BasicNackOptions {
                        multiple: true,
                        requeue: true,
                    },
                )
                .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::tests::Ping;

    #[test]
    fn an_envelope_newer_than_its_type_is_rejected_and_another_type_acknowledged() {
        let mut json = serde_json::to_value(Envelope::new(Ping { n: 1 })).unwrap();
        json["version"] = (<Ping as crate::Event>::VERSION + 1).into();
        let newer = serde_json::to_vec(&json).unwrap();
        let error = decode::<Ping>(&newer).unwrap_err();
        assert!(matches!(error, DecodeError::NewerVersion { .. }));
        assert_eq!(Outcome::undecodable(&error), Outcome::Reject);

        let malformed = decode::<Ping>(b"not json").unwrap_err();
        assert_eq!(Outcome::undecodable(&malformed), Outcome::Reject);

        let other = DecodeError::UnknownType("video.archived".into());
        assert_eq!(Outcome::undecodable(&other), Outcome::Ack);
    }
}
