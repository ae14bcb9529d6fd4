//! Consuming a service's own queue, one delivery at a time, across reconnects.
//!
//! [`spawn`] declares the queue and its bindings (idempotently, on every connection), then
//! hands each delivery to the handler and settles it by the handler's [`Outcome`]. A delivery
//! is acknowledged only after the handler returned: a crash in between redelivers it, so
//! handlers must be idempotent (every event has an id for that). When the connection breaks
//! the loop waits a little and starts again; unacknowledged deliveries go back to the queue.
//!
//! Shutdown drains, it does not abandon: the consumer is cancelled at the broker at once
//! (no new deliveries), the handler in flight finishes, the deliveries already sent ahead
//! (prefetch) are handled too, and each is settled by its outcome; then the task returns.
//! The consumer task is started with `platform::Shutdown::spawn`, so the service's `run`
//! returns (and the process exits) only after that, or when `SHUTDOWN_GRACE_SECS` ran out;
//! whatever is still unsettled then goes back to the queue when the connection closes.
//! A handler that cannot finish in time itself answers [`Outcome::Requeue`].
//!
//! While consuming, the queue's depth and consumer count are reported every few seconds
//! (`queue_messages_ready`, `queue_consumers` on `/metrics`), so a backlog is visible.

use std::{collections::VecDeque, future::Future, sync::Arc, time::Duration};

use futures::StreamExt;
use lapin::{
    Channel, Consumer,
    message::Delivery,
    options::{
        BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
        BasicQosOptions, QueueDeclareOptions,
    },
    types::{FieldTable, ShortString},
};
use platform::{Shutdown, background::reconnecting};

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
    /// A transient failure (a store is down): try again after a pause, in place (the
    /// message keeps its place and its delivery count); at shutdown it goes back to the
    /// queue.
    Retry,
    /// It can never succeed (undecodable, unknown version): drop it, or dead-letter it if
    /// the queue has a dead-letter exchange. Logged.
    Reject,
    /// Put it back at once, for another consumer: this one is shutting down and cannot
    /// finish it in time. No pause (the point is that another replica starts it now); a
    /// quorum queue counts it as a delivery (`x-delivery-count`, `x-delivery-limit`).
    Requeue,
}

/// First pause before a failed delivery is tried again, so a store outage does not spin;
/// it doubles up to [`MAX_RETRY_PAUSE`].
const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// The longest pause between tries: how long after a store comes back its consumers
/// notice, at worst.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(4);
/// Pause before reconnecting after the channel broke.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);
/// How often a consumer asks the broker how deep its queue is.
const DEPTH_INTERVAL: Duration = Duration::from_secs(5);

/// Consumes `spec`'s queue until shutdown, then drains (see the module doc). `prefetch`
/// bounds the deliveries in flight from the broker (they are still handled one at a
/// time). The task is tracked by `shutdown` (`Shutdown::finished`).
pub fn spawn<H, F>(
    rabbit: Arc<Rabbit>,
    spec: QueueSpec,
    prefetch: u16,
    shutdown: &Shutdown,
    handler: H,
) -> tokio::task::JoinHandle<()>
where
    H: Fn(Delivery) -> F + Send + Sync + 'static,
    F: Future<Output = Outcome> + Send,
{
    let stop = shutdown.clone();
    shutdown.spawn(async move {
        let what = format!("consumer of {}", spec.name);
        let session = || consume(&rabbit, &spec, prefetch, &stop, &handler);
        reconnecting(&what, RECONNECT_PAUSE, &stop, session).await;
    })
}

/// Opens a channel, declares the queue and starts consuming it; `None` when shutdown came
/// first (nothing is held yet, so nothing is lost by stopping here).
async fn subscribe(
    rabbit: &Rabbit,
    spec: &QueueSpec,
    prefetch: u16,
    shutdown: &Shutdown,
) -> Result<Option<(Channel, Consumer)>, Error> {
    let open = async {
        let channel = rabbit.channel().await?;
        spec.declare(&channel).await?;
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await?;
        let deliveries = channel
            .basic_consume(
                spec.name.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok::<_, Error>((channel, deliveries))
    };
    tokio::select! {
        biased;
        () = shutdown.triggered() => Ok(None),
        opened = open => opened.map(Some),
    }
}

/// Runs `session` (which reads `consumer`'s deliveries until the stream ends) and, as soon
/// as shutdown fires, cancels the consumer at the broker, even while a handler runs: no
/// new delivery comes, the ones already sent ahead are still yielded, then the stream
/// ends and the session returns after settling them.
async fn until_drained<T>(
    channel: &Channel,
    tag: ShortString,
    shutdown: &Shutdown,
    session: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let cancel = async {
        shutdown.triggered().await;
        tracing::info!(consumer = %tag, "shutdown: consumer cancelled, draining");
        if let Err(error) = channel
            .basic_cancel(tag.clone(), BasicCancelOptions::default())
            .await
        {
            // The channel is gone: the session fails too, and its deliveries are back in
            // the queue already.
            tracing::warn!(%error, "shutdown: could not cancel the consumer");
        }
        std::future::pending::<Result<T, Error>>().await
    };
    tokio::select! {
        out = session => out,
        never = cancel => never,
    }
}

/// One connection's worth of consuming. Returns when the channel breaks, or once shutdown
/// cancelled the consumer and every delivery it had been sent is settled.
async fn consume<H, F>(
    rabbit: &Rabbit,
    spec: &QueueSpec,
    prefetch: u16,
    shutdown: &Shutdown,
    handler: &H,
) -> Result<(), Error>
where
    H: Fn(Delivery) -> F,
    F: Future<Output = Outcome>,
{
    let Some((channel, mut deliveries)) = subscribe(rabbit, spec, prefetch, shutdown).await? else {
        return Ok(());
    };
    let _depth = AbortOnDrop(tokio::spawn(report_depth(
        channel.clone(),
        spec.name.clone(),
    )));
    let tag = deliveries.tag();
    let session = async {
        while let Some(delivery) = deliveries.next().await {
            settle_one(spec, delivery?, handler, shutdown).await?;
        }
        Ok(())
    };
    until_drained(&channel, tag, shutdown, session).await
}

/// A copy of a delivery, for a handler that takes its deliveries by value and may have to
/// be called again with the same ones (lapin's `Delivery` is not `Clone`; all its fields
/// are).
fn copy(delivery: &Delivery) -> Delivery {
    Delivery {
        delivery_tag: delivery.delivery_tag,
        exchange: delivery.exchange.clone(),
        routing_key: delivery.routing_key.clone(),
        redelivered: delivery.redelivered,
        properties: delivery.properties.clone(),
        data: delivery.data.clone(),
        acker: delivery.acker.clone(),
    }
}

/// Waits before the next try of a failed delivery; false if shutdown came first (the
/// delivery then goes back to the queue). Doubles `pause` for the try after.
async fn pause_before_retry(pause: &mut Duration, shutdown: &Shutdown) -> bool {
    let waited = tokio::select! {
        () = tokio::time::sleep(*pause) => true,
        () = shutdown.triggered() => false,
    };
    *pause = (*pause * 2).min(MAX_RETRY_PAUSE);
    waited
}

/// Hands one delivery to the handler, again after a pause while it answers
/// [`Outcome::Retry`], and settles it by the outcome.
async fn settle_one<H, F>(
    spec: &QueueSpec,
    delivery: Delivery,
    handler: &H,
    shutdown: &Shutdown,
) -> Result<(), Error>
where
    H: Fn(Delivery) -> F,
    F: Future<Output = Outcome>,
{
    let acker = delivery.acker.clone();
    let routing_key = delivery.routing_key.to_string();
    let mut pause = RETRY_PAUSE;
    let outcome = loop {
        match handler(copy(&delivery)).await {
            Outcome::Retry => {
                if !pause_before_retry(&mut pause, shutdown).await {
                    break Outcome::Retry;
                }
            }
            settled => break settled,
        }
    };
    match outcome {
        Outcome::Ack => {
            acker.ack(BasicAckOptions::default()).await?;
        }
        // Still failing at shutdown: back to the queue for the next consumer.
        Outcome::Retry => {
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
        Outcome::Requeue => {
            tracing::info!(queue = %spec.name, %routing_key, "consumer: handed a delivery back");
            acker
                .nack(BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                })
                .await?;
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
    /// A transient failure: the whole batch is handled again after a pause, in place; at
    /// shutdown it goes back to the queue.
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
/// one that panics has its batch put back in the queue (where it counts as a delivery).
pub fn spawn_batched<H, F>(
    rabbit: Arc<Rabbit>,
    spec: QueueSpec,
    batching: Batching,
    shutdown: &Shutdown,
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
    let stop = shutdown.clone();
    let handler = Arc::new(handler);
    shutdown.spawn(async move {
        let what = format!("consumer of {}", spec.name);
        let session = || consume_batches(&rabbit, &spec, batching, &stop, &handler);
        reconnecting(&what, RECONNECT_PAUSE, &stop, session).await;
    })
}

/// Like [`consume`], in batches: on shutdown the consumer is cancelled, the batch being
/// taken is handed over as it is, and every batch is settled before this returns.
async fn consume_batches<H, F>(
    rabbit: &Rabbit,
    spec: &QueueSpec,
    batching: Batching,
    shutdown: &Shutdown,
    handler: &Arc<H>,
) -> Result<(), Error>
where
    H: Fn(Vec<Delivery>) -> F + Send + Sync + 'static,
    F: Future<Output = BatchOutcome> + Send + 'static,
{
    let Some((channel, deliveries)) = subscribe(rabbit, spec, batching.prefetch, shutdown).await?
    else {
        return Ok(());
    };
    let tag = deliveries.tag();
    let session = take_batches(&channel, spec, batching, deliveries, handler, shutdown);
    until_drained(&channel, tag, shutdown, session).await
}

async fn take_batches<H, F>(
    channel: &Channel,
    spec: &QueueSpec,
    batching: Batching,
    mut deliveries: Consumer,
    handler: &Arc<H>,
    shutdown: &Shutdown,
) -> Result<(), Error>
where
    H: Fn(Vec<Delivery>) -> F + Send + Sync + 'static,
    F: Future<Output = BatchOutcome> + Send + 'static,
{
    // Batches being handled, oldest first, with their delivery tags. A batch is settled
    // as soon as its handler finished and every older one is settled, while the next
    // batch is being taken. If this function returns early (the channel broke),
    // handlers may still finish, but nothing acknowledges their batches: the broker
    // redelivers them to the next consumer, which the handlers' idempotence makes
    // harmless.
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
            handling.push_back(start(handler, std::mem::take(&mut batch), shutdown));
            continue;
        }
        tokio::select! {
            finished = async { (&mut handling.front_mut().expect("not empty").1).await },
                if !handling.is_empty() => {
                let (tags, _) = handling.pop_front().expect("not empty");
                settle(channel, spec, &tags, outcome(spec, finished)).await?;
            }
            next = deliveries.next(), if !full => {
                let Some(delivery) = next else {
                    // The consumer was cancelled (shutdown, or the broker): finish what
                    // was taken.
                    if !batch.is_empty() {
                        handling.push_back(start(handler, batch, shutdown));
                    }
                    while let Some((tags, task)) = handling.pop_front() {
                        settle(channel, spec, &tags, outcome(spec, task.await)).await?;
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

/// Starts handling `batch` in a task of its own (again after a pause while the handler
/// answers Retry, until shutdown); returns its delivery tags and the task.
fn start<H, F>(
    handler: &Arc<H>,
    batch: Vec<Delivery>,
    shutdown: &Shutdown,
) -> (Vec<u64>, tokio::task::JoinHandle<BatchOutcome>)
where
    H: Fn(Vec<Delivery>) -> F + Send + Sync + 'static,
    F: Future<Output = BatchOutcome> + Send + 'static,
{
    let tags = batch.iter().map(|d| d.delivery_tag).collect();
    let (handler, shutdown) = (handler.clone(), shutdown.clone());
    let task = tokio::spawn(async move {
        let mut pause = RETRY_PAUSE;
        loop {
            match handler(batch.iter().map(copy).collect()).await {
                BatchOutcome::Retry => {
                    if !pause_before_retry(&mut pause, &shutdown).await {
                        return BatchOutcome::Retry;
                    }
                }
                settled => return settled,
            }
        }
    });
    (tags, task)
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
        // Still failing at shutdown, or the handler panicked: back to the queue.
        BatchOutcome::Retry => {
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
