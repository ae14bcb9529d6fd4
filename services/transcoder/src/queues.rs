//! The transcode queues and the retry design.
//!
//! A job's attempt number travels in the `x-attempt` header (absent = first attempt: the
//! video service's outbox publishes plain jobs). A failed attempt is republished, with
//! publisher confirms, to `transcode.retry` with `x-attempt + 1` and a per-message
//! expiration (the backoff, doubling per attempt); RabbitMQ dead-letters it back to
//! `transcode.jobs` when it expires. After the last attempt the job goes to
//! `transcode.dead` with the reason in `x-error`, and `video.failed` is published. Only
//! then is the original delivery acknowledged, so a crash in between repeats a step
//! rather than losing the job.
//!
//! With a `QUEUE_PREFIX` (tests) the three queues are private copies that expire when
//! unused; their names and arguments come from events::Namespace, as the video service's
//! declaration of the jobs queue does, so the two agree.

use std::{sync::Arc, time::Duration};

use events::{Namespace, Publisher, QueueSpec, Rabbit, Route, topology};
use lapin::{
    BasicProperties,
    message::Delivery,
    types::{AMQPValue, FieldTable},
};

pub const ATTEMPT_HEADER: &str = "x-attempt";
pub const ERROR_HEADER: &str = "x-error";

/// The three queue names under the deployment's prefix (events::Namespace).
#[derive(Debug, Clone)]
pub struct Names {
    pub jobs: String,
    pub retry: String,
    pub dead: String,
    namespace: Namespace,
}

impl Names {
    pub fn new(prefix: &str) -> Self {
        let namespace = Namespace::new(prefix);
        Self {
            jobs: namespace.name(topology::TRANSCODE_JOBS),
            retry: namespace.name(topology::TRANSCODE_RETRY),
            dead: namespace.name(topology::TRANSCODE_DEAD),
            namespace,
        }
    }

    /// Arguments of the jobs and dead queues (the video service declares the jobs queue
    /// with the same, from the same events::Namespace).
    pub fn arguments(&self) -> FieldTable {
        self.namespace.arguments()
    }

    /// The jobs queue, as its consumer declares it.
    pub fn jobs_queue(&self) -> QueueSpec {
        self.namespace.queue(topology::TRANSCODE_JOBS)
    }

    fn dead_queue(&self) -> QueueSpec {
        self.namespace.queue(topology::TRANSCODE_DEAD)
    }

    /// Retries wait out their per-message expiration here, then are dead-lettered back to
    /// the jobs queue through the default exchange.
    fn retry_queue(&self) -> QueueSpec {
        self.namespace
            .queue(topology::TRANSCODE_RETRY)
            .argument("x-dead-letter-exchange", AMQPValue::LongString("".into()))
            .argument(
                "x-dead-letter-routing-key",
                AMQPValue::LongString(self.jobs.as_str().into()),
            )
    }

    #[cfg(test)]
    fn retry_arguments(&self) -> FieldTable {
        self.retry_queue().arguments
    }
}

/// The attempt a delivery is (1 for a job as first published).
pub fn attempt(delivery: &Delivery) -> u32 {
    let value = delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(ATTEMPT_HEADER).cloned());
    let n = match value {
        Some(AMQPValue::LongInt(n)) => i64::from(n),
        Some(AMQPValue::LongLongInt(n)) => n,
        Some(AMQPValue::ShortInt(n)) => i64::from(n),
        Some(AMQPValue::LongUInt(n)) => i64::from(n),
        Some(AMQPValue::ShortShortInt(n)) => i64::from(n),
        _ => 1,
    };
    u32::try_from(n.max(1)).unwrap_or(1)
}

/// The wait before attempt `next` (2, 3, …): `base`, then doubling.
pub fn backoff(base: Duration, next: u32) -> Duration {
    base.saturating_mul(1 << next.saturating_sub(2).min(16))
}

/// Publishes retries and dead jobs with confirms (events::Publisher), on a publisher that
/// declares the retry and dead queues on every channel it opens: they are sent to through
/// the default exchange, which would drop a message for a missing queue.
pub struct JobQueues {
    pub names: Names,
    publisher: Publisher,
}

impl JobQueues {
    pub fn new(rabbit: Arc<Rabbit>, names: Names) -> Self {
        let publisher = Publisher::new(rabbit).declaring([names.retry_queue(), names.dead_queue()]);
        Self { names, publisher }
    }

    /// Schedules attempt `next` after `delay`.
    pub async fn retry(
        &self,
        payload: &[u8],
        next: u32,
        delay: Duration,
    ) -> Result<(), events::Error> {
        let mut headers = FieldTable::default();
        headers.insert(
            ATTEMPT_HEADER.into(),
            AMQPValue::LongLongInt(i64::from(next)),
        );
        let props = BasicProperties::default()
            .with_headers(headers)
            .with_expiration(delay.as_millis().max(1).to_string().into());
        self.publisher
            .publish_with(&Route::queue(self.names.retry.as_str()), payload, props)
            .await
    }

    /// Parks a job that will not be tried again.
    pub async fn dead(
        &self,
        payload: &[u8],
        attempts: u32,
        reason: &str,
    ) -> Result<(), events::Error> {
        let mut headers = FieldTable::default();
        headers.insert(
            ATTEMPT_HEADER.into(),
            AMQPValue::LongLongInt(i64::from(attempts)),
        );
        headers.insert(ERROR_HEADER.into(), AMQPValue::LongString(reason.into()));
        let props = BasicProperties::default().with_headers(headers);
        self.publisher
            .publish_with(&Route::queue(self.names.dead.as_str()), payload, props)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base() {
        let base = Duration::from_secs(10);
        assert_eq!(backoff(base, 2), Duration::from_secs(10));
        assert_eq!(backoff(base, 3), Duration::from_secs(20));
        assert_eq!(backoff(base, 4), Duration::from_secs(40));
    }

    #[test]
    fn prefixed_queues_expire_and_retries_go_back_to_the_jobs_queue() {
        let names = Names::new("t1.");
        assert_eq!(names.jobs, "t1.transcode.jobs");
        assert!(names.arguments().inner().contains_key("x-expires"));
        let retry = names.retry_arguments();
        assert_eq!(
            retry.inner().get("x-dead-letter-routing-key"),
            Some(&AMQPValue::LongString("t1.transcode.jobs".into()))
        );
        assert!(Names::new("").arguments().inner().is_empty());
    }
}
