//! A queue this deployment declares: its name under the deployment's `QUEUE_PREFIX`, its
//! arguments, and its bindings.
//!
//! Several stacks may share one broker (tests, benchmarks, a test suite beside
//! `deploy/local/up`): each gives its own `QUEUE_PREFIX`, its queues are named
//! `{prefix}{name}` and its events are published under `{prefix}{type}`
//! ([`Namespace::route`]), which is all its queues bind, so no stack takes another's
//! deliveries or sees another's events. A prefixed stack is throw-away, so its queues expire ([`Namespace`]):
//! the broker deletes one that has been unused (no consumer, no declaration) for
//! [`PREFIXED_QUEUE_EXPIRY`], unless the service was told a different expiry
//! (`QUEUE_EXPIRES_SECS`). Production runs without a prefix, and its queues never expire.
//!
//! Production queues are **quorum queues** ([`QueueType`]): replicated over the broker's
//! nodes (three in a cluster, one locally), so losing a node loses no message a publisher
//! had confirmed. A quorum queue also has a delivery limit ([`DELIVERY_LIMIT`]) and a
//! *parking* queue (`{name}.parked`): a message that keeps coming back (its consumer
//! crashes on it, or keeps handing it back) is moved there after that many deliveries
//! instead of looping forever, and stays for inspection and replay. A consumer's
//! transient failure (a store is down) does not count: the consumer retries it in place
//! (crate::consumer).
//!
//! Throw-away stacks (a `QUEUE_PREFIX`: tests, benchmarks) get classic queues unless
//! `QUEUE_TYPE=quorum` says otherwise: a test run declares thousands of queues, and a
//! broker deleting hundreds of expired quorum queues at once stops answering for tens of
//! seconds (500 at once: no AMQP handshake for 15 s on this project's 2-core machine).
//!
//! Invariant: RabbitMQ refuses to redeclare a queue with different arguments, and several
//! services declare the same queue (video and the transcoder the transcode queues; tests
//! the queues they deliver into), so every declarer of a queue builds it here, from the
//! same prefix and expiry. The transcode queues are shared by two services and so always
//! take the default expiry ([`Namespace::new`]); only a service's own queues may take an
//! override.

use std::time::Duration;

use lapin::{
    Channel,
    options::{QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable},
};

use crate::{Event, Route};

/// How long a prefixed queue may stay unused before the broker deletes it.
pub const PREFIXED_QUEUE_EXPIRY: Duration = Duration::from_secs(30 * 60);

/// Deliveries of one message before its queue parks it (`x-delivery-limit`; RabbitMQ 4's
/// default for quorum queues, set explicitly so 3.x brokers do the same).
pub const DELIVERY_LIMIT: i64 = 20;

/// The suffix of a queue's parking queue.
pub const PARKED_SUFFIX: &str = ".parked";

/// What kind of queue a namespace declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueType {
    /// Replicated (Raft) over the cluster's nodes, with a delivery limit and a parking
    /// queue.
    Quorum,
    /// One node's queue, no delivery limit (throw-away stacks).
    Classic,
}

impl QueueType {
    /// `QUEUE_TYPE` (`quorum` or `classic`) when set; otherwise quorum for a deployment
    /// (no prefix) and classic for a throw-away stack. Read once per process; a service
    /// with any other value stops at start (its queues are named while it starts).
    pub fn for_prefix(prefix: &str) -> Self {
        static CHOSEN: std::sync::OnceLock<Option<QueueType>> = std::sync::OnceLock::new();
        let chosen = CHOSEN.get_or_init(|| match std::env::var("QUEUE_TYPE").as_deref() {
            Ok("quorum") => Some(Self::Quorum),
            Ok("classic") => Some(Self::Classic),
            Ok("") | Err(_) => None,
            Ok(other) => panic!("QUEUE_TYPE must be `quorum` or `classic`, not {other:?}"),
        });
        match chosen {
            Some(chosen) => *chosen,
            None if prefix.is_empty() => Self::Quorum,
            None => Self::Classic,
        }
    }
}

/// A deployment's share of the broker: the `QUEUE_PREFIX` of its queue names and of the
/// routing keys of the events it publishes and binds, the expiry its queues get and their
/// type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    prefix: String,
    expires: Option<Duration>,
    queue_type: QueueType,
}

impl Namespace {
    /// Queues under `prefix`: they expire after [`PREFIXED_QUEUE_EXPIRY`] unused if the
    /// prefix is not empty, never otherwise; their type is [`QueueType::for_prefix`].
    pub fn new(prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        let expires = (!prefix.is_empty()).then_some(PREFIXED_QUEUE_EXPIRY);
        let queue_type = QueueType::for_prefix(&prefix);
        Self {
            prefix,
            expires,
            queue_type,
        }
    }

    /// With queues of type `queue_type`, whatever the prefix (tests of quorum queues).
    pub fn with_queue_type(mut self, queue_type: QueueType) -> Self {
        self.queue_type = queue_type;
        self
    }

    pub fn queue_type(&self) -> QueueType {
        self.queue_type
    }

    /// With `expires` (a service's `QUEUE_EXPIRES_SECS`), when given, instead of the
    /// default: throw-away stacks that make many queues (one per test) shorten it. For a
    /// service's own queues only (see the module's invariant).
    pub fn expiring(mut self, expires: Option<Duration>) -> Self {
        if expires.is_some() {
            self.expires = expires;
        }
        self
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The name of queue `name` in this namespace.
    pub fn name(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Routing key `key` in this namespace: what this stack's events are published under,
    /// and what its queues bind (`QUEUE_PREFIX` + the event's type, e.g.
    /// `test-42.video.ready`). A binding is an exact key, so a queue of one namespace never
    /// receives another namespace's events.
    pub fn routing_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Where this namespace publishes a `T`: its type's exchange, under its type prefixed.
    pub fn route<T: Event>(&self) -> Route {
        Route::new(T::EXCHANGE, self.routing_key(T::TYPE))
    }

    /// Queue `name` in this namespace, with no bindings yet and the namespace's expiry; a
    /// quorum queue also gets [`DELIVERY_LIMIT`] and its parking queue.
    pub fn queue(&self, name: &str) -> QueueSpec {
        let name = self.name(name);
        match self.queue_type {
            QueueType::Classic => self.with_expiry(QueueSpec::new(name)),
            QueueType::Quorum => {
                let parking = self.with_expiry(QueueSpec::new(format!("{name}{PARKED_SUFFIX}")));
                self.with_expiry(QueueSpec::new(name))
                    .quorum()
                    .argument("x-delivery-limit", AMQPValue::LongLongInt(DELIVERY_LIMIT))
                    .parked_in(parking.quorum())
            }
        }
    }

    /// `spec` with this namespace's expiry, if any.
    fn with_expiry(&self, spec: QueueSpec) -> QueueSpec {
        match self.expires {
            Some(after) => spec.expires(after),
            None => spec,
        }
    }
}

/// A queue, and what it is bound to.
#[derive(Debug, Clone)]
pub struct QueueSpec {
    pub name: String,
    /// `(exchange, routing key pattern)` pairs.
    pub bindings: Vec<(String, String)>,
    pub arguments: FieldTable,
    /// The queue it dead-letters to, declared with it (see the module docs).
    pub parking: Option<Box<QueueSpec>>,
}

impl QueueSpec {
    /// A classic queue with no arguments (tests of the consumer itself); services take
    /// theirs from [`Namespace::queue`].
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            bindings: Vec::new(),
            arguments: FieldTable::default(),
            parking: None,
        }
    }

    pub fn bind(mut self, exchange: &str, pattern: &str) -> Self {
        self.bindings
            .push((exchange.to_owned(), pattern.to_owned()));
        self
    }

    /// Sets an argument (e.g. `x-dead-letter-exchange`, `x-message-ttl`).
    pub fn argument(mut self, name: &str, value: AMQPValue) -> Self {
        self.arguments.insert(name.into(), value);
        self
    }

    /// Makes it a quorum queue (replicated; counts unsettled deliveries, crate::transcode).
    pub fn quorum(self) -> Self {
        self.argument("x-queue-type", AMQPValue::LongString("quorum".into()))
    }

    /// Dead-letters what the queue rejects, expires or gives up on to queue `name`,
    /// through the default exchange. `name` is declared by its own spec: this replaces
    /// the parking queue.
    pub fn dead_letter_to(mut self, name: &str) -> Self {
        self.parking = None;
        self.argument("x-dead-letter-exchange", AMQPValue::LongString("".into()))
            .argument(
                "x-dead-letter-routing-key",
                AMQPValue::LongString(name.into()),
            )
    }

    /// Dead-letters to `parking`, declared together with this queue.
    fn parked_in(self, parking: QueueSpec) -> Self {
        let mut spec = self.dead_letter_to(&parking.name);
        spec.parking = Some(Box::new(parking));
        spec
    }

    /// Keeps every message it holds: no delivery limit, no dead-lettering, no parking
    /// queue (a parking queue itself; one whose messages expire on purpose).
    pub fn without_dead_lettering(mut self) -> Self {
        const DROPPED: [&str; 3] = [
            "x-dead-letter-exchange",
            "x-dead-letter-routing-key",
            "x-delivery-limit",
        ];
        self.parking = None;
        let mut arguments = self.arguments.inner().clone();
        arguments.retain(|name, _| !DROPPED.contains(&name.as_str()));
        self.arguments = arguments.into();
        self
    }

    /// Messages older than `ttl` are dropped, not parked (what only matters while fresh,
    /// such as progress updates).
    pub fn messages_expire_after(self, ttl: Duration) -> Self {
        let millis = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        self.without_dead_lettering()
            .argument("x-message-ttl", AMQPValue::LongLongInt(millis))
    }

    /// Lets the broker delete the queue once unused for `after` (throw-away stacks, tests).
    /// Encoded as a signed 64-bit integer of milliseconds, the one encoding every declarer
    /// of a queue uses.
    pub fn expires(self, after: Duration) -> Self {
        let millis = i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
        self.argument("x-expires", AMQPValue::LongLongInt(millis))
    }

    /// Declares the queue (durable), its parking queue and its bindings.
    ///
    /// A queue that exists with other arguments (a classic queue left by a Kino before
    /// quorum queues) is refused by the broker with PRECONDITION_FAILED, which closes the
    /// channel; the error says so (README, "Upgrading to quorum queues").
    pub async fn declare(&self, channel: &Channel) -> Result<(), lapin::Error> {
        if let Some(parking) = &self.parking {
            Box::pin(parking.declare(channel)).await?;
        }
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        let declared = channel
            .queue_declare(self.name.as_str().into(), durable, self.arguments.clone())
            .await;
        if let Err(error) = &declared
            && error.to_string().contains("PRECONDITION_FAILED")
        {
            tracing::error!(
                queue = %self.name, %error,
                "the queue exists with other arguments (a classic queue from before quorum \
                 queues?); see the README, \"Upgrading to quorum queues\""
            );
        }
        declared?;
        for (exchange, pattern) in &self.bindings {
            channel
                .queue_bind(
                    self.name.as_str().into(),
                    exchange.as_str().into(),
                    pattern.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expiry(spec: &QueueSpec) -> Option<&AMQPValue> {
        spec.arguments.inner().get("x-expires")
    }

    #[test]
    fn prefixed_queues_expire_and_unprefixed_ones_never() {
        let test = Namespace::new("t1.").with_queue_type(QueueType::Quorum);
        let spec = test.queue("media.users");
        assert_eq!(spec.name, "t1.media.users");
        assert_eq!(expiry(&spec), Some(&AMQPValue::LongLongInt(30 * 60 * 1000)));
        let parking = spec.parking.as_ref().unwrap();
        assert_eq!(
            expiry(parking),
            expiry(&spec),
            "parked messages go with the stack"
        );

        let production = Namespace::new("").with_queue_type(QueueType::Quorum);
        let spec = production.queue("media.users");
        assert_eq!(spec.name, "media.users");
        assert_eq!(expiry(&spec), None);
        assert_eq!(expiry(spec.parking.as_ref().unwrap()), None);
    }

    #[test]
    fn deployments_get_quorum_queues_and_throw_away_stacks_classic_ones() {
        // (Unless QUEUE_TYPE says otherwise; the test runner does not set it.)
        if std::env::var_os("QUEUE_TYPE").is_some() {
            return;
        }
        assert_eq!(Namespace::new("").queue_type(), QueueType::Quorum);
        let test = Namespace::new("t1.");
        assert_eq!(test.queue_type(), QueueType::Classic);
        let spec = test.queue("media.users");
        assert!(spec.parking.is_none());
        assert!(arg(&spec, "x-queue-type").is_none());
        assert!(arg(&spec, "x-delivery-limit").is_none());
    }

    fn arg<'a>(spec: &'a QueueSpec, name: &str) -> Option<&'a AMQPValue> {
        spec.arguments.inner().get(name)
    }

    #[test]
    fn every_queue_is_a_quorum_queue_that_parks_what_keeps_coming_back() {
        let quorum = AMQPValue::LongString("quorum".into());
        let spec = Namespace::new("")
            .with_queue_type(QueueType::Quorum)
            .queue("media.users");
        let parking = spec.parking.as_deref().unwrap();
        assert_eq!(parking.name, "media.users.parked");
        assert_eq!(arg(&spec, "x-queue-type"), Some(&quorum));
        assert_eq!(arg(parking, "x-queue-type"), Some(&quorum));
        assert_eq!(
            arg(&spec, "x-delivery-limit"),
            Some(&AMQPValue::LongLongInt(DELIVERY_LIMIT))
        );
        assert_eq!(
            arg(&spec, "x-dead-letter-routing-key"),
            Some(&AMQPValue::LongString("media.users.parked".into()))
        );
        // The parking queue keeps what it gets: no limit, no dead-lettering of its own.
        assert!(arg(parking, "x-delivery-limit").is_none());
        assert!(arg(parking, "x-dead-letter-exchange").is_none());
        assert!(parking.parking.is_none());

        // Messages that only matter while fresh expire instead.
        let fresh = Namespace::new("")
            .with_queue_type(QueueType::Quorum)
            .queue("media.progress")
            .messages_expire_after(Duration::from_secs(60));
        assert!(fresh.parking.is_none());
        assert!(arg(&fresh, "x-dead-letter-exchange").is_none());
        assert!(arg(&fresh, "x-delivery-limit").is_none());
        assert_eq!(arg(&fresh, "x-queue-type"), Some(&quorum));
        assert_eq!(
            arg(&fresh, "x-message-ttl"),
            Some(&AMQPValue::LongLongInt(60_000))
        );
    }

    #[test]
    fn events_go_to_their_exchange_under_their_type_in_the_namespace() {
        use crate::envelope::tests::Ping;
        assert_eq!(
            Namespace::new("t1.").route::<Ping>(),
            Route::new("test", "t1.test.ping")
        );
        assert_eq!(
            Namespace::new("").route::<Ping>(),
            Route::new("test", "test.ping")
        );
        assert_eq!(
            Namespace::new("t1.").routing_key("video.ready"),
            "t1.video.ready"
        );
    }

    #[test]
    fn a_given_expiry_replaces_the_default_and_none_keeps_it() {
        let short = Namespace::new("t1.").expiring(Some(Duration::from_secs(60)));
        assert_eq!(
            expiry(&short.queue("media.users")),
            Some(&AMQPValue::LongLongInt(60_000))
        );
        assert_eq!(Namespace::new("t1.").expiring(None), Namespace::new("t1."));
    }
}
