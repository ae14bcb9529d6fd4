//! The transcode work queues, as every declarer of them declares them: `transcode.jobs`
//! (the video service publishes into it, the transcoder consumes it), `transcode.retry`
//! (failed attempts waiting out their backoff) and `transcode.dead` (jobs given up on).
//!
//! They are RabbitMQ **quorum queues**. Besides being replicated in a cluster, a quorum
//! queue counts every delivery that was not settled — a nack with requeue, a worker
//! killed mid-job (OOM, SIGKILL: its connection drops), RabbitMQ's `consumer_timeout`
//! closing a channel that held a job too long — in the message's `x-delivery-count`
//! header, and stops redelivering it after [`DELIVERY_LIMIT`] (`x-delivery-limit`),
//! dead-lettering it to `transcode.dead`. With classic queues a job that kills its
//! worker came back forever: nothing counted its deliveries (the transcoder's own
//! `x-attempt` only counts attempts it lived to report).
//!
//! Invariant: RabbitMQ refuses to redeclare a queue with other arguments (and cannot turn
//! a classic queue into a quorum queue), so this file is the only place the arguments are
//! built; the delivery limit is a constant for the same reason. Quorum queues are always
//! durable, never exclusive or auto-deleted; prefixed (throw-away) copies still expire
//! when unused (`x-expires`, crate::queue), which quorum queues support.

use lapin::types::AMQPValue;

use crate::{Namespace, QueueSpec, topology};

/// Deliveries of one job message that may end without being settled (a crash, a kill, a
/// consumer timeout, a hand-back at shutdown) before the broker gives up on it. The
/// delivery whose `x-delivery-count` equals this is the last one the broker makes; the
/// transcoder does not run the job then but fails it with a reason (see
/// `transcoder::queues`), and only if that too dies does the broker dead-letter it.
pub const DELIVERY_LIMIT: u32 = 5;

/// Header in which a quorum queue counts a message's earlier, unsettled deliveries
/// (absent on the first delivery).
pub const DELIVERY_COUNT_HEADER: &str = "x-delivery-count";

/// The three transcode queues of a namespace.
#[derive(Debug, Clone)]
pub struct TranscodeQueues {
    /// Consumed by the transcoder (prefetch 1); jobs past [`DELIVERY_LIMIT`] go to `dead`.
    pub jobs: QueueSpec,
    /// Retries wait out their per-message expiration here, then are dead-lettered back
    /// to `jobs` through the default exchange.
    pub retry: QueueSpec,
    /// Jobs given up on, kept for inspection.
    pub dead: QueueSpec,
}

impl TranscodeQueues {
    pub fn new(namespace: &Namespace) -> Self {
        // Always quorum queues, whatever the namespace's type: a job's delivery count
        // (`x-delivery-count`) is how a job that kills every worker ends. `transcode.dead`
        // is the jobs' parking queue, under its own name.
        let dead = namespace
            .queue(topology::TRANSCODE_DEAD)
            .without_dead_lettering()
            .quorum();
        let jobs = namespace
            .queue(topology::TRANSCODE_JOBS)
            .quorum()
            .argument(
                "x-delivery-limit",
                AMQPValue::LongLongInt(i64::from(DELIVERY_LIMIT)),
            )
            .dead_letter_to(&dead.name);
        let retry = namespace
            .queue(topology::TRANSCODE_RETRY)
            .without_dead_lettering()
            .quorum()
            .dead_letter_to(&jobs.name);
        Self { jobs, retry, dead }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::QueueType;

    fn arg<'a>(spec: &'a QueueSpec, name: &str) -> Option<&'a AMQPValue> {
        spec.arguments.inner().get(name)
    }

    #[test]
    fn the_work_queues_are_quorum_queues_that_end_with_the_dead_one() {
        let queues = TranscodeQueues::new(&Namespace::new("t1."));
        let quorum = AMQPValue::LongString("quorum".into());
        for spec in [&queues.jobs, &queues.retry, &queues.dead] {
            assert_eq!(arg(spec, "x-queue-type"), Some(&quorum), "{}", spec.name);
            assert!(arg(spec, "x-expires").is_some(), "prefixed: throw-away");
        }
        assert_eq!(queues.jobs.name, "t1.transcode.jobs");
        assert_eq!(
            arg(&queues.jobs, "x-delivery-limit"),
            Some(&AMQPValue::LongLongInt(5))
        );
        assert_eq!(
            arg(&queues.jobs, "x-dead-letter-routing-key"),
            Some(&AMQPValue::LongString("t1.transcode.dead".into()))
        );
        assert_eq!(
            arg(&queues.retry, "x-dead-letter-routing-key"),
            Some(&AMQPValue::LongString("t1.transcode.jobs".into()))
        );
        assert!(arg(&queues.dead, "x-dead-letter-exchange").is_none());
        // The same arguments in a quorum namespace (a deployment's broker has these
        // queues already: any other argument would be refused).
        let quorum_namespace = Namespace::new("t1.").with_queue_type(QueueType::Quorum);
        let same = TranscodeQueues::new(&quorum_namespace);
        for (a, b) in [
            (&queues.jobs, &same.jobs),
            (&queues.retry, &same.retry),
            (&queues.dead, &same.dead),
        ] {
            assert_eq!(a.arguments, b.arguments, "{}", a.name);
            assert!(b.parking.is_none());
        }

        let production = TranscodeQueues::new(&Namespace::new(""));
        assert_eq!(production.jobs.name, "transcode.jobs");
        assert!(arg(&production.jobs, "x-expires").is_none());
    }
}
