//! Where a message goes: an exchange and a routing key.
//!
//! Most events go to their type's exchange under their type as routing key
//! ([`Route::of`]). Two kinds of message do not: interactions, whose routing key carries the
//! deployment's `QUEUE_PREFIX` (crate::interaction), and work for a queue (transcode jobs,
//! retries, dead jobs), sent through the default exchange, whose routing key is the queue's
//! name ([`Route::queue`]). The outbox stores a route with each event, and the publisher
//! takes one, so every publisher of a message addresses it the same way.

use crate::Event;

/// An exchange and a routing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub exchange: String,
    pub routing_key: String,
}

impl Route {
    pub fn new(exchange: impl Into<String>, routing_key: impl Into<String>) -> Self {
        Self {
            exchange: exchange.into(),
            routing_key: routing_key.into(),
        }
    }

    /// `T`'s own exchange, with its type as the routing key.
    pub fn of<T: Event>() -> Self {
        Self::new(T::EXCHANGE, T::TYPE)
    }

    /// Straight to the queue `name`, through the default exchange (`""`), which routes by
    /// queue name. A queue that does not exist drops the message (publishes are not
    /// `mandatory`), so whoever sends to it declares it first
    /// (crate::publisher::Publisher::declaring).
    pub fn queue(name: impl Into<String>) -> Self {
        Self::new("", name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::tests::Ping;

    #[test]
    fn an_event_goes_to_its_exchange_under_its_type_and_a_queue_through_the_default_exchange() {
        assert_eq!(Route::of::<Ping>(), Route::new("test", "test.ping"));
        assert_eq!(
            Route::queue("t.transcode.jobs"),
            Route::new("", "t.transcode.jobs")
        );
    }
}
