//! Where a message goes: an exchange and a routing key.
//!
//! An event goes to its type's exchange, under its type prefixed with the deployment's
//! `QUEUE_PREFIX` as routing key ([`Namespace::route`](crate::Namespace::route);
//! interactions likewise, crate::interaction): the queues of a stack bind only its own
//! prefix, so a test stack and a running platform share a broker without seeing each
//! other's events. Work for a queue (transcode jobs, retries, dead jobs) is sent through the
//! default exchange, whose routing key is the queue's (prefixed) name ([`Route::queue`]).
//! The outbox stores a route with each event, and the publisher takes one, so every
//! publisher of a message addresses it the same way.

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

    #[test]
    fn a_queue_is_reached_through_the_default_exchange() {
        assert_eq!(
            Route::queue("t.transcode.jobs"),
            Route::new("", "t.transcode.jobs")
        );
    }
}
