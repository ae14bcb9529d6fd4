//! The transcode queues and the retry design.
//!
//! Two counters end a job, each for its own kind of failure:
//!
//! * **Attempts that failed** (ffmpeg refused the file, S3 was down, `TRANSCODE_TIMEOUT`
//!   ran out): the attempt number travels in the `x-attempt` header (absent = first
//!   attempt: the video service's outbox publishes plain jobs). A failed attempt is
//!   republished, with publisher confirms, to `transcode.retry` with `x-attempt + 1` and
//!   a per-message expiration (the backoff, doubling per attempt); RabbitMQ dead-letters
//!   it back to `transcode.jobs` when it expires. After `TRANSCODE_MAX_ATTEMPTS` the job
//!   is given up.
//! * **Deliveries that never settled** (the worker was SIGKILLed or ran out of memory,
//!   the broker's `consumer_timeout` took the job back, a shutdown handed it back): the
//!   jobs queue is a quorum queue that counts them in `x-delivery-count`
//!   (events::transcode). The delivery that carries [`events::transcode::DELIVERY_LIMIT`]
//!   is not run again but given up, with a reason, so a job that kills every worker that
//!   takes it ends instead of looping. Should even that delivery die, the broker
//!   dead-letters the job to `transcode.dead` itself (the video then stays `processing`).
//!
//! Giving up parks the job in `transcode.dead` with the reason in `x-error` and publishes
//! `video.failed` with the reason (shown by media's `uploadProgress` and dashboard). Only
//! then is the delivery acknowledged, so a crash in between repeats a step rather than
//! losing the job.
//!
//! With a `QUEUE_PREFIX` (tests) the three queues are private copies that expire when
//! unused; their names and arguments come from events::transcode, as the video service's
//! declaration of the jobs queue does, so the two agree.

use std::{sync::Arc, time::Duration};

use events::{
    Namespace, Publisher, QueueSpec, Rabbit, Route,
    transcode::{DELIVERY_COUNT_HEADER, TranscodeQueues},
};
use lapin::{
    BasicProperties,
    message::Delivery,
    types::{AMQPValue, FieldTable},
};

pub const ATTEMPT_HEADER: &str = "x-attempt";
pub const ERROR_HEADER: &str = "x-error";

/// The three queues under the deployment's prefix (events::transcode).
#[derive(Debug, Clone)]
pub struct Names {
    pub jobs: String,
    pub retry: String,
    pub dead: String,
    queues: TranscodeQueues,
}

impl Names {
    pub fn new(prefix: &str) -> Self {
        let queues = TranscodeQueues::new(&Namespace::new(prefix));
        Self {
            jobs: queues.jobs.name.clone(),
            retry: queues.retry.name.clone(),
            dead: queues.dead.name.clone(),
            queues,
        }
    }

    /// The jobs queue, as every declarer of it declares it.
    pub fn jobs_queue(&self) -> QueueSpec {
        self.queues.jobs.clone()
    }

    pub fn dead_queue(&self) -> QueueSpec {
        self.queues.dead.clone()
    }

    pub fn retry_queue(&self) -> QueueSpec {
        self.queues.retry.clone()
    }
}

/// An integer header of a delivery, whichever integer type the sender chose.
fn int_header(delivery: &Delivery, name: &str) -> Option<i64> {
    let value = delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(name).cloned());
    match value? {
        AMQPValue::LongInt(n) => Some(i64::from(n)),
        AMQPValue::LongLongInt(n) => Some(n),
        AMQPValue::ShortInt(n) => Some(i64::from(n)),
        AMQPValue::LongUInt(n) => Some(i64::from(n)),
        AMQPValue::ShortUInt(n) => Some(i64::from(n)),
        AMQPValue::ShortShortInt(n) => Some(i64::from(n)),
        AMQPValue::ShortShortUInt(n) => Some(i64::from(n)),
        _ => None,
    }
}

/// The attempt a delivery is (1 for a job as first published).
pub fn attempt(delivery: &Delivery) -> u32 {
    let n = int_header(delivery, ATTEMPT_HEADER).unwrap_or(1);
    u32::try_from(n.max(1)).unwrap_or(1)
}

/// How many earlier deliveries of this very message ended unsettled (the quorum queue's
/// `x-delivery-count`; 0 on the first delivery).
pub fn unsettled_deliveries(delivery: &Delivery) -> u32 {
    let n = int_header(delivery, DELIVERY_COUNT_HEADER).unwrap_or(0);
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
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
    fn names_are_the_prefixed_shared_queues() {
        let names = Names::new("t1.");
        assert_eq!(names.jobs, "t1.transcode.jobs");
        assert_eq!(names.jobs_queue().name, names.jobs);
        assert_eq!(names.retry, "t1.transcode.retry");
        assert_eq!(names.dead, "t1.transcode.dead");
    }
}
