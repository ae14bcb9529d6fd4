//! Consumers drain on shutdown, against a real RabbitMQ: the consumer is cancelled (no
//! delivery published after the signal is taken), the handler in flight finishes, what
//! the broker had sent ahead is handled too, everything is acknowledged, and the task
//! tracked by the `Shutdown` ends within the grace period.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use events::{
    Rabbit,
    consumer::{self, BatchOutcome, Batching, Outcome, QueueSpec},
};
use lapin::{
    BasicProperties, Channel,
    options::{BasicPublishOptions, QueueDeclareOptions},
    types::FieldTable,
};
use platform::Shutdown;
use testkit::TestEnv;
use tokio::sync::Notify;

async fn publish(channel: &Channel, queue: &str, body: &str) {
    channel
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap()
        .await
        .unwrap();
}

/// (messages ready, consumers) of `queue`.
async fn depth(channel: &Channel, queue: &str) -> (u32, u32) {
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let q = channel
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await
        .unwrap();
    (q.message_count(), q.consumer_count())
}

async fn queue(env: &TestEnv, name: &str) -> (Arc<Rabbit>, Channel, QueueSpec) {
    let rabbit = Rabbit::new(&env.amqp_url, "drain-test");
    let channel = rabbit.channel().await.unwrap();
    let spec = QueueSpec::new(format!("test-{}.{name}", env.id)).expires(Duration::from_secs(120));
    spec.declare(&channel).await.unwrap();
    (rabbit, channel, spec)
}

/// After shutdown: the consumer is gone from the queue, `late` published then stays in it,
/// and the consumer's task ends within `grace`.
async fn drains(channel: &Channel, spec: &QueueSpec, shutdown: &Shutdown, grace: Duration) {
    testkit::wait_for("the consumer cancelled", Duration::from_secs(5), || async {
        (depth(channel, &spec.name).await.1 == 0).then_some(())
    })
    .await;
    publish(channel, &spec.name, "late").await;
    let drained = shutdown.drain(grace, shutdown.finished()).await;
    assert!(drained.is_some(), "the consumer drained within the grace");
}

#[tokio::test]
async fn a_slow_delivery_in_flight_at_shutdown_and_those_sent_ahead_are_finished_and_acked() {
    let env = TestEnv::new("events");
    let (rabbit, channel, spec) = queue(&env, "drain").await;
    for n in 0..3 {
        publish(&channel, &spec.name, &n.to_string()).await;
    }
    let handled: Arc<Mutex<Vec<String>>> = Arc::default();
    let started = Arc::new(Notify::new());
    let shutdown = Shutdown::new();
    // Prefetch 10: all three are sent ahead; they are handled one at a time, 1 s each.
    consumer::spawn(rabbit.clone(), spec.clone(), 10, &shutdown, {
        let (handled, started) = (handled.clone(), started.clone());
        move |delivery| {
            let (handled, started) = (handled.clone(), started.clone());
            async move {
                started.notify_one();
                tokio::time::sleep(Duration::from_secs(1)).await;
                let body = String::from_utf8(delivery.data).unwrap();
                handled.lock().unwrap().push(body);
                Outcome::Ack
            }
        }
    });
    started.notified().await; // the first handler is in flight
    shutdown.trigger();
    drains(&channel, &spec, &shutdown, Duration::from_secs(10)).await;
    assert_eq!(*handled.lock().unwrap(), ["0", "1", "2"], "all finished");
    rabbit.close().await; // anything unacknowledged would go back to the queue now

    let rabbit = Rabbit::new(&env.amqp_url, "drain-test-check");
    let channel = rabbit.channel().await.unwrap();
    assert_eq!(
        depth(&channel, &spec.name).await,
        (1, 0),
        "only the delivery published after shutdown is left"
    );
    rabbit.close().await;
}

#[tokio::test]
async fn a_batch_in_flight_at_shutdown_is_finished_and_acked() {
    let env = TestEnv::new("events");
    let (rabbit, channel, spec) = queue(&env, "drain-batches").await;
    for n in 0..5 {
        publish(&channel, &spec.name, &n.to_string()).await;
    }
    let batches: Arc<Mutex<Vec<usize>>> = Arc::default();
    let started = Arc::new(Notify::new());
    let shutdown = Shutdown::new();
    let batching = Batching {
        max_events: 5,
        max_wait: Duration::from_millis(200),
        prefetch: 10,
        in_flight: 1,
    };
    consumer::spawn_batched(rabbit.clone(), spec.clone(), batching, &shutdown, {
        let (batches, started) = (batches.clone(), started.clone());
        move |deliveries| {
            let (batches, started) = (batches.clone(), started.clone());
            async move {
                started.notify_one();
                tokio::time::sleep(Duration::from_secs(2)).await;
                batches.lock().unwrap().push(deliveries.len());
                BatchOutcome::Ack { reject: vec![] }
            }
        }
    });
    started.notified().await;
    shutdown.trigger();
    drains(&channel, &spec, &shutdown, Duration::from_secs(10)).await;
    assert_eq!(batches.lock().unwrap().iter().sum::<usize>(), 5);
    rabbit.close().await;

    let rabbit = Rabbit::new(&env.amqp_url, "drain-test-check");
    let channel = rabbit.channel().await.unwrap();
    assert_eq!(depth(&channel, &spec.name).await, (1, 0));
    rabbit.close().await;
}

#[tokio::test]
async fn a_delivery_handed_back_is_at_once_available_to_another_consumer() {
    let env = TestEnv::new("events");
    let (rabbit, channel, spec) = queue(&env, "requeue").await;
    let shutdown = Shutdown::new();
    let handed_back = Arc::new(Notify::new());
    consumer::spawn(rabbit.clone(), spec.clone(), 1, &shutdown, {
        let handed_back = handed_back.clone();
        move |_| {
            let handed_back = handed_back.clone();
            async move {
                handed_back.notify_one();
                Outcome::Requeue
            }
        }
    });
    publish(&channel, &spec.name, "job").await;
    handed_back.notified().await;
    shutdown.trigger();
    shutdown
        .drain(Duration::from_secs(5), shutdown.finished())
        .await
        .expect("drained");
    // Handed back at once, not retried in place (as Outcome::Retry is).
    let back = tokio::time::timeout(Duration::from_millis(500), async {
        loop {
            if let Some(message) = channel
                .basic_get(spec.name.as_str().into(), Default::default())
                .await
                .unwrap()
            {
                return message;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("back in the queue at once");
    assert!(back.delivery.redelivered);
    assert_eq!(back.delivery.data, b"job");
    rabbit.close().await;
}
