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
//! unused; the arguments must match the video service's declaration of the jobs queue.

use std::time::Duration;

use events::{Rabbit, topology};
use lapin::{
    BasicProperties, Channel, Confirmation,
    message::Delivery,
    options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, ShortString},
};
use tokio::sync::Mutex;

const PREFIXED_QUEUE_TTL_MS: i64 = 30 * 60 * 1000;
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);
pub const ATTEMPT_HEADER: &str = "x-attempt";
pub const ERROR_HEADER: &str = "x-error";

#[derive(Debug, Clone)]
pub struct Names {
    pub jobs: String,
    pub retry: String,
    pub dead: String,
    prefix: String,
}

impl Names {
    pub fn new(prefix: &str) -> Self {
        Self {
            jobs: format!("{prefix}{}", topology::TRANSCODE_JOBS),
            retry: format!("{prefix}{}", topology::TRANSCODE_RETRY),
            dead: format!("{prefix}{}", topology::TRANSCODE_DEAD),
            prefix: prefix.to_owned(),
        }
    }

    /// Arguments of the jobs and dead queues.
    pub fn arguments(&self) -> FieldTable {
        let mut args = FieldTable::default();
        if !self.prefix.is_empty() {
            args.insert(
                ShortString::from("x-expires"),
                AMQPValue::LongLongInt(PREFIXED_QUEUE_TTL_MS),
            );
        }
        args
    }

    fn retry_arguments(&self) -> FieldTable {
        let mut args = self.arguments();
        args.insert(
            ShortString::from("x-dead-letter-exchange"),
            AMQPValue::LongString("".into()),
        );
        args.insert(
            ShortString::from("x-dead-letter-routing-key"),
            AMQPValue::LongString(self.jobs.as_str().into()),
        );
        args
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

/// Publishes retries and dead jobs with confirms.
pub struct JobQueues {
    rabbit: std::sync::Arc<Rabbit>,
    pub names: Names,
    channel: Mutex<Option<Channel>>,
}

impl JobQueues {
    pub fn new(rabbit: std::sync::Arc<Rabbit>, names: Names) -> Self {
        Self {
            rabbit,
            names,
            channel: Mutex::new(None),
        }
    }

    async fn channel(&self) -> Result<Channel, events::Error> {
        let mut slot = self.channel.lock().await;
        if let Some(channel) = slot.as_ref().filter(|c| c.status().connected()) {
            return Ok(channel.clone());
        }
        let channel = self.rabbit.channel().await?;
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        channel
            .queue_declare(
                self.names.retry.as_str().into(),
                durable,
                self.names.retry_arguments(),
            )
            .await?;
        channel
            .queue_declare(
                self.names.dead.as_str().into(),
                durable,
                self.names.arguments(),
            )
            .await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        *slot = Some(channel.clone());
        Ok(channel)
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
        self.publish(&self.names.retry.clone(), payload, props)
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
        self.publish(&self.names.dead.clone(), payload, props).await
    }

    async fn publish(
        &self,
        queue: &str,
        payload: &[u8],
        props: BasicProperties,
    ) -> Result<(), events::Error> {
        let outcome = async {
            let channel = self.channel().await?;
            let props = props
                .with_delivery_mode(2)
                .with_content_type("application/json".into());
            let confirm = channel
                .basic_publish(
                    "".into(),
                    queue.into(),
                    BasicPublishOptions::default(),
                    payload,
                    props,
                )
                .await?;
            match tokio::time::timeout(CONFIRM_TIMEOUT, confirm).await {
                Err(_) => Err(events::Error::Timeout(CONFIRM_TIMEOUT)),
                Ok(confirmation) => match confirmation? {
                    Confirmation::Ack(_) | Confirmation::NotRequested => Ok(()),
                    Confirmation::Nack(_) => Err(events::Error::Nacked),
                },
            }
        }
        .await;
        if outcome.is_err() {
            self.channel.lock().await.take();
        }
        outcome
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
