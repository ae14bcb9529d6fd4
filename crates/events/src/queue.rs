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

/// A deployment's share of the broker: the `QUEUE_PREFIX` of its queue names and of the
/// routing keys of the events it publishes and binds, and the expiry its queues get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    prefix: String,
    expires: Option<Duration>,
}

impl Namespace {
    /// Queues under `prefix`: they expire after [`PREFIXED_QUEUE_EXPIRY`] unused if the
    /// prefix is not empty, never otherwise.
    pub fn new(prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        let expires = (!prefix.is_empty()).then_some(PREFIXED_QUEUE_EXPIRY);
        Self { prefix, expires }
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

    /// Queue `name` in this namespace, with its arguments and no bindings yet.
    pub fn queue(&self, name: &str) -> QueueSpec {
        let spec = QueueSpec::new(self.name(name));
        match self.expires {
            Some(after) => spec.expires(after),
            None => spec,
        }
    }

    /// The arguments of every queue in this namespace (for declarers that do not use
    /// [`QueueSpec`]).
    pub fn arguments(&self) -> FieldTable {
        self.queue("").arguments
    }
}

/// A queue, and what it is bound to.
#[derive(Debug, Clone)]
pub struct QueueSpec {
    pub name: String,
    /// `(exchange, routing key pattern)` pairs.
    pub bindings: Vec<(String, String)>,
    pub arguments: FieldTable,
}

impl QueueSpec {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            bindings: Vec::new(),
            arguments: FieldTable::default(),
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
    /// through the default exchange.
    pub fn dead_letter_to(self, name: &str) -> Self {
        self.argument("x-dead-letter-exchange", AMQPValue::LongString("".into()))
            .argument(
                "x-dead-letter-routing-key",
                AMQPValue::LongString(name.into()),
            )
    }

    /// Lets the broker delete the queue once unused for `after` (throw-away stacks, tests).
    /// Encoded as a signed 64-bit integer of milliseconds, the one encoding every declarer
    /// of a queue uses.
    pub fn expires(self, after: Duration) -> Self {
        let millis = i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
        self.argument("x-expires", AMQPValue::LongLongInt(millis))
    }

    /// Declares the queue (durable) and its bindings.
    pub async fn declare(&self, channel: &Channel) -> Result<(), lapin::Error> {
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        channel
            .queue_declare(self.name.as_str().into(), durable, self.arguments.clone())
            .await?;
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
        let test = Namespace::new("t1.");
        let spec = test.queue("transcode.jobs");
        assert_eq!(spec.name, "t1.transcode.jobs");
        assert_eq!(expiry(&spec), Some(&AMQPValue::LongLongInt(30 * 60 * 1000)));
        assert_eq!(test.arguments(), spec.arguments);

        let production = Namespace::new("");
        assert_eq!(production.name("transcode.jobs"), "transcode.jobs");
        assert!(production.arguments().inner().is_empty());
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
