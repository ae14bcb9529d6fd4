//! The fan-out hub: one Redis pub/sub connection per replica, shared by every local
//! subscriber.
//!
//! # How a message travels
//!
//! 1. Some replica calls [`Hub::publish`]`("comments:<video>", &event)`. The event is
//!    serialised once into a small envelope ([`Wire`]: the event and the time it was
//!    published; the format is [`super::wire`], shared with the ranker, which publishes
//!    into the hub too) and sent with `PUBLISH <prefix>comments:<video>` on the replica's ordinary
//!    (multiplexed) Redis connection.
//! 2. Redis delivers it to every *connection* subscribed to that channel: at most one per
//!    replica, because each replica subscribes through one dedicated pub/sub connection,
//!    owned by one task ([`Hub::start`]).
//! 3. That task looks the channel up in the local table. If nobody here watches it any
//!    more (a race with the last unsubscribe) the message is dropped unread. Otherwise it
//!    is decoded once into an `Arc<Message>` and sent into the channel's
//!    [`tokio::sync::broadcast`], which hands the same `Arc` to every local subscriber.
//!
//! # Reference counting
//!
//! The table maps a channel name to a [`Slot`]: the broadcast sender, the number of live
//! [`Subscription`]s and a readiness flag. The first [`Hub::subscribe`] of a channel
//! creates the slot and queues a SUBSCRIBE for the task; dropping the last `Subscription`
//! removes the slot and queues an UNSUBSCRIBE. Commands are queued while holding the
//! table's lock, so they reach Redis in the order the table changed. The Redis channel
//! count of a replica is therefore the number of distinct channels its own clients watch,
//! whatever the other replicas do (seed 003's flaw was the opposite).
//!
//! `subscribe` returns only once Redis has confirmed the SUBSCRIBE. Callers that combine a
//! snapshot with live events (comment replay) rely on it: anything published after
//! `subscribe` returned is guaranteed to reach the subscription.
//!
//! # Bounded memory
//!
//! Each channel's broadcast holds at most `capacity` messages (`REALTIME_CHANNEL_CAPACITY`).
//! A subscriber that stops reading (its client's socket is full) does not hold anything
//! back: the others keep receiving, and when it reads again it learns how many it missed
//! ([`Received::Missed`]) and resynchronises. Nothing grows per slow client. The pub/sub
//! connection's own inbound queue is drained by the task without waiting on subscribers
//! (a broadcast send never blocks), so it stays short too.
//!
//! On a Redis Cluster the same happens through sharded pub/sub (`SSUBSCRIBE`/`SPUBLISH`,
//! see [`cluster`]): each channel lives on the shard that owns its slot.
//!
//! When the pub/sub connection breaks, everything published until it is back is lost for
//! this replica. The task reconnects, re-subscribes every channel in the table, and sends
//! every subscriber a [`Event::Gap`], which [`Subscription::recv`] reports as
//! `Missed(0)`: "you may have missed something, resynchronise".

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures::StreamExt;
use platform::redis::{Redis, Target};
use tokio::sync::{broadcast, mpsc, watch};

mod cluster;

use super::{
    memo::PayloadMemo,
    metrics,
    wire::{Event, Wire},
};

/// A decoded message, shared by every local subscriber of its channel.
#[derive(Debug)]
pub struct Message {
    /// When the publisher published it (Unix microseconds): the start of the delivery
    /// latency.
    pub published_at_micros: i64,
    pub event: Event,
    /// The `next` payloads rendered from this message, shared by identical subscriptions
    /// (see [`super::memo`]).
    pub memo: PayloadMemo,
}

impl Message {
    pub fn new(published_at_micros: i64, event: Event) -> Self {
        Self {
            published_at_micros,
            event,
            memo: PayloadMemo::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("live updates are unavailable (Redis did not confirm the subscription)")]
    Unavailable,
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
}

/// How long [`Hub::subscribe`] waits for Redis to confirm a new channel.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between reconnection attempts.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);
/// An idle pub/sub connection is pinged this often, so a dead one is noticed.
const PING_EVERY: Duration = Duration::from_secs(15);

#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    /// Prepended to channel names on Redis (`REDIS_PREFIX` + `rt:`).
    prefix: String,
    capacity: usize,
    channels: Mutex<HashMap<String, Slot>>,
    commands: mpsc::UnboundedSender<Command>,
    /// For PUBLISH, or SPUBLISH on a cluster (the pub/sub connection cannot send ordinary
    /// commands).
    publisher: Redis,
    generations: AtomicU64,
}

struct Slot {
    sender: broadcast::Sender<Arc<Message>>,
    subscribers: usize,
    /// Tells a SUBSCRIBE confirmation for this slot from one for an earlier slot of the
    /// same name (unsubscribed and subscribed again while the first was in flight).
    generation: u64,
    ready: watch::Sender<bool>,
}

enum Command {
    Subscribe { channel: String, generation: u64 },
    Unsubscribe { channel: String },
}

/// A snapshot of what clients watch through the hub, for tests and the metrics. The
/// connections' own watch for session endings (`wire::SESSIONS_CHANNEL`, one per
/// signed-in connection) is left out: it is not something a client subscribed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HubStats {
    /// Channels with at least one local subscriber.
    pub channels: usize,
    pub subscribers: usize,
    /// Messages held in the broadcasts for subscribers that have not read them yet.
    pub buffered: usize,
    /// The most any one channel may hold.
    pub capacity: usize,
}

impl Hub {
    /// Starts the task that owns the pub/sub connection (it connects lazily and keeps
    /// reconnecting until `shutdown`).
    pub fn start(
        redis_url: &str,
        publisher: Redis,
        prefix: &str,
        capacity: usize,
        shutdown: &platform::Shutdown,
    ) -> redis::RedisResult<Self> {
        let target = platform::redis::Target::from_url(redis_url)?;
        let (commands, queue) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            prefix: prefix.to_owned(),
            capacity: capacity.max(1),
            channels: Mutex::new(HashMap::new()),
            commands,
            publisher,
            generations: AtomicU64::new(0),
        });
        let hub = Arc::downgrade(&inner);
        match target {
            Target::Server(info) => {
                let client = redis::Client::open(info)?;
                tokio::spawn(run(client, hub, queue, shutdown.triggered()));
            }
            Target::Cluster(nodes) => {
                tokio::spawn(cluster::run(nodes, hub, queue, shutdown.triggered()));
            }
        }
        Ok(Self { inner })
    }

    /// Publishes `event` on `channel` to every replica's subscribers.
    pub async fn publish(&self, channel: &str, event: &Event) -> Result<(), HubError> {
        let payload = serde_json::to_vec(&Wire {
            at: now_micros(),
            event,
        })
        .expect("events serialise");
        self.publish_raw(channel, &payload).await
    }

    /// Publishes many events, each on its channel, in one round trip (a pipeline): the
    /// notifications of a fan-out batch.
    pub async fn publish_many(
        &self,
        messages: impl IntoIterator<Item = (String, Event)>,
    ) -> Result<(), HubError> {
        let at = now_micros();
        let publisher = &self.inner.publisher;
        let encoded = messages.into_iter().map(|(channel, event)| {
            let payload =
                serde_json::to_vec(&Wire { at, event: &event }).expect("events serialise");
            (format!("{}{channel}", self.inner.prefix), payload)
        });
        if publisher.is_cluster() {
            // A pipeline keeps to one slot on a cluster: one SPUBLISH each, sent together.
            let sends = encoded.map(|(channel, payload)| {
                let mut conn = publisher.clone();
                async move {
                    redis::cmd("SPUBLISH")
                        .arg(channel)
                        .arg(payload)
                        .query_async::<i64>(&mut conn)
                        .await
                }
            });
            futures::future::try_join_all(sends).await?;
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (channel, payload) in encoded {
            pipe.cmd("PUBLISH").arg(channel).arg(payload).ignore();
        }
        pipe.query_async::<()>(&mut publisher.clone()).await?;
        Ok(())
    }

    /// Publishes an already encoded [`Wire`] envelope (load generators).
    pub async fn publish_raw(&self, channel: &str, payload: &[u8]) -> Result<(), HubError> {
        let mut conn = self.inner.publisher.clone();
        let key = format!("{}{channel}", self.inner.prefix);
        redis::cmd(self.inner.publisher.publish_command())
            .arg(key)
            .arg(payload)
            .query_async::<i64>(&mut conn)
            .await?;
        Ok(())
    }

    /// Watches `channel`. Returns once Redis confirmed the subscription (at once when
    /// another local subscriber already watches it).
    pub async fn subscribe(&self, channel: &str) -> Result<Subscription, HubError> {
        let (receiver, mut ready) = {
            let mut channels = self.inner.channels.lock().unwrap();
            let slot = channels.entry(channel.to_owned()).or_insert_with(|| {
                let generation = self.inner.generations.fetch_add(1, Ordering::Relaxed);
                // The task may have gone with the runtime; then nothing will confirm.
                let _ = self.inner.commands.send(Command::Subscribe {
                    channel: channel.to_owned(),
                    generation,
                });
                metrics::channel_opened();
                Slot {
                    sender: broadcast::channel(self.inner.capacity).0,
                    subscribers: 0,
                    generation,
                    ready: watch::channel(false).0,
                }
            });
            slot.subscribers += 1;
            (slot.sender.subscribe(), slot.ready.subscribe())
        };
        // From here on, dropping `subscription` gives the reference back.
        let subscription = Subscription {
            inner: self.inner.clone(),
            channel: channel.to_owned(),
            receiver,
        };
        match tokio::time::timeout(SUBSCRIBE_TIMEOUT, ready.wait_for(|ready| *ready)).await {
            Ok(Ok(_)) => Ok(subscription),
            _ => Err(HubError::Unavailable),
        }
    }

    pub fn stats(&self) -> HubStats {
        let channels = self.inner.channels.lock().unwrap();
        let watched = || {
            channels
                .iter()
                .filter(|(name, _)| name.as_str() != super::wire::SESSIONS_CHANNEL)
                .map(|(_, slot)| slot)
        };
        HubStats {
            channels: watched().count(),
            subscribers: watched().map(|s| s.subscribers).sum(),
            buffered: watched().map(|s| s.sender.len()).sum(),
            capacity: self.inner.capacity,
        }
    }
}

/// One local subscriber's view of a channel. Dropping it gives the reference back (and
/// the last one UNSUBSCRIBEs).
pub struct Subscription {
    inner: Arc<Inner>,
    channel: String,
    receiver: broadcast::Receiver<Arc<Message>>,
}

/// What a subscriber gets.
#[derive(Debug, Clone)]
pub enum Received {
    Event(Arc<Message>),
    /// This many messages went by unseen (0: unknown, after a Redis reconnect). The
    /// subscriber must resynchronise from the source of truth, or say so to its client.
    Missed(u64),
}

impl Subscription {
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The next message; `None` once the hub is gone (the service is stopping).
    pub async fn recv(&mut self) -> Option<Received> {
        match self.receiver.recv().await {
            Ok(message) => Some(Self::classify(message)),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                metrics::lagged(missed);
                Some(Received::Missed(missed))
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The next message if one is already buffered.
    pub fn try_recv(&mut self) -> Option<Received> {
        match self.receiver.try_recv() {
            Ok(message) => Some(Self::classify(message)),
            Err(broadcast::error::TryRecvError::Lagged(missed)) => {
                metrics::lagged(missed);
                Some(Received::Missed(missed))
            }
            Err(_) => None,
        }
    }

    fn classify(message: Arc<Message>) -> Received {
        match message.event {
            Event::Gap => Received::Missed(0),
            _ => Received::Event(message),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut channels = self.inner.channels.lock().unwrap();
        if let Some(slot) = channels.get_mut(&self.channel) {
            slot.subscribers -= 1;
            if slot.subscribers == 0 {
                channels.remove(&self.channel);
                let _ = self.inner.commands.send(Command::Unsubscribe {
                    channel: self.channel.clone(),
                });
                metrics::channel_closed();
            }
        }
    }
}

/// The pub/sub connection's task: (re)connects, keeps Redis's subscriptions equal to the
/// table, and dispatches messages. Holds the hub weakly, so it ends when the service's
/// last handle is dropped, as well as on shutdown.
async fn run(
    client: redis::Client,
    hub: std::sync::Weak<Inner>,
    mut queue: mpsc::UnboundedReceiver<Command>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    tokio::pin!(shutdown);
    let mut reconnect = false;
    loop {
        let connected = tokio::select! {
            pubsub = client.get_async_pubsub() => pubsub,
            () = &mut shutdown => return,
        };
        match connected {
            Ok(pubsub) => {
                let result = tokio::select! {
                    result = session(pubsub, &hub, &mut queue, reconnect) => result,
                    () = &mut shutdown => return,
                };
                match result {
                    Ok(()) => return, // the hub is gone
                    Err(e) => {
                        tracing::warn!(error = %e, "realtime hub: Redis pub/sub lost; reconnecting")
                    }
                }
                reconnect = true;
            }
            Err(e) => tracing::warn!(error = %e, "realtime hub: cannot reach Redis; retrying"),
        }
        if let Some(hub) = hub.upgrade() {
            for slot in hub.channels.lock().unwrap().values() {
                slot.ready.send_replace(false);
            }
        }
        tokio::select! {
            () = tokio::time::sleep(RECONNECT_PAUSE) => {}
            () = &mut shutdown => return,
        }
    }
}

/// One connection's life. `Ok` when the hub is gone, `Err` when the connection broke.
async fn session(
    pubsub: redis::aio::PubSub,
    hub: &std::sync::Weak<Inner>,
    queue: &mut mpsc::UnboundedReceiver<Command>,
    reconnect: bool,
) -> redis::RedisResult<()> {
    let (mut sink, mut messages) = pubsub.split();
    // Commands queued while disconnected are superseded by the table itself.
    while queue.try_recv().is_ok() {}
    let Some(inner) = hub.upgrade() else {
        return Ok(());
    };
    let prefix = inner.prefix.clone();
    let current: Vec<(String, u64)> = inner
        .channels
        .lock()
        .unwrap()
        .iter()
        .map(|(name, slot)| (name.clone(), slot.generation))
        .collect();
    drop(inner);
    if !current.is_empty() {
        let keys: Vec<String> = current
            .iter()
            .map(|(c, _)| format!("{prefix}{c}"))
            .collect();
        sink.subscribe(&keys).await?;
        for (channel, generation) in &current {
            mark_ready(hub, channel, *generation, reconnect);
        }
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            command = queue.recv() => match command {
                None => return Ok(()),
                Some(Command::Subscribe { channel, generation }) => {
                    sink.subscribe(format!("{prefix}{channel}")).await?;
                    mark_ready(hub, &channel, generation, false);
                }
                Some(Command::Unsubscribe { channel }) => {
                    sink.unsubscribe(format!("{prefix}{channel}")).await?;
                }
            },
            message = messages.next() => match message {
                None => return Err(redis::RedisError::from(std::io::Error::from(
                    std::io::ErrorKind::ConnectionReset,
                ))),
                Some(message) => {
                    let Some(inner) = hub.upgrade() else { return Ok(()) };
                    dispatch(&inner, &message);
                }
            },
            _ = ping.tick() => {
                let pong = tokio::time::timeout(Duration::from_secs(5), sink.ping::<redis::Value>()).await;
                match pong {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(e),
                    Err(_) => return Err(redis::RedisError::from(std::io::Error::from(
                        std::io::ErrorKind::TimedOut,
                    ))),
                }
            }
        }
    }
}

fn mark_ready(hub: &std::sync::Weak<Inner>, channel: &str, generation: u64, gap: bool) {
    let Some(inner) = hub.upgrade() else { return };
    let channels = inner.channels.lock().unwrap();
    if let Some(slot) = channels.get(channel).filter(|s| s.generation == generation) {
        if gap {
            let _ = slot
                .sender
                .send(Arc::new(Message::new(now_micros(), Event::Gap)));
        }
        slot.ready.send_replace(true);
    }
}

/// Decodes a Redis message once and hands it to the channel's local subscribers.
fn dispatch(inner: &Inner, message: &redis::Msg) {
    dispatch_payload(
        inner,
        message.get_channel_name(),
        message.get_payload_bytes(),
    );
}

fn dispatch_payload(inner: &Inner, channel: &str, payload: &[u8]) {
    let Some(channel) = channel.strip_prefix(&inner.prefix) else {
        return;
    };
    // Only a confirmed channel delivers. After a lost connection the channel is not
    // ready until the hub has subscribed again and queued the gap; on a cluster, the
    // client re-subscribes by itself and may deliver before that, possibly out of order
    // (publishes retried across a failover). Dropped here, those reach subscribers
    // through the replay the gap starts, never ahead of it.
    let Some(sender) = inner
        .channels
        .lock()
        .unwrap()
        .get(channel)
        .filter(|slot| *slot.ready.borrow())
        .map(|slot| slot.sender.clone())
    else {
        return; // the last local subscriber left while this was in flight, or not ready
    };
    match serde_json::from_slice::<Wire<Event>>(payload) {
        Ok(wire) => {
            let receivers = sender
                .send(Arc::new(Message::new(wire.at, wire.event)))
                .unwrap_or(0);
            metrics::fanned_out(receivers);
        }
        Err(e) => {
            metrics::undecodable();
            tracing::warn!(error = %e, channel, "realtime hub: undecodable message dropped");
        }
    }
}

pub fn now_micros() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000) as i64
}
