//! Kino's queues on a real RabbitMQ: every queue is a quorum queue; a consumer's transient
//! failure is tried again in place, so the message keeps its delivery count (an outage
//! longer than the delivery limit parks nothing); a message that keeps coming back is
//! parked after the limit instead of looping forever; and a client given several nodes
//! connects through the first one that answers.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use events::{
    Namespace, Rabbit,
    consumer::{self, BatchOutcome, Batching, Outcome},
    queue::{DELIVERY_LIMIT, QueueType},
};
use lapin::{
    BasicProperties, Channel,
    options::{BasicPublishOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable},
};
use platform::Shutdown;
use testkit::TestEnv;

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

/// Messages ready in `queue`.
async fn ready(channel: &Channel, queue: &str) -> u32 {
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    channel
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await
        .unwrap()
        .message_count()
}

/// The broker's delivery count of a delivery (quorum queues only; absent the first time).
fn delivery_count(properties: &BasicProperties) -> i64 {
    match properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get("x-delivery-count"))
    {
        Some(AMQPValue::LongLongInt(n)) => *n,
        Some(AMQPValue::LongInt(n)) => i64::from(*n),
        Some(other) => panic!("x-delivery-count {other:?}"),
        None => 0,
    }
}

#[tokio::test]
async fn a_transient_failure_is_retried_in_place_and_does_not_count_as_a_delivery() {
    let env = TestEnv::new("events");
    let namespace = Namespace::new(format!("test-{}.", env.id)).with_queue_type(QueueType::Quorum);
    // Two nodes named, the first one down: the client moves on to the second.
    let urls = format!("amqp://guest:guest@127.0.0.1:1/%2f,{}", env.amqp_url);
    let rabbit = Rabbit::new(urls, "quorum-test");
    let channel = rabbit.channel().await.unwrap();
    let single = namespace.queue("retry.single");
    let batched = namespace.queue("retry.batched");
    single.declare(&channel).await.unwrap();
    batched.declare(&channel).await.unwrap();
    publish(&channel, &single.name, "one").await;
    publish(&channel, &batched.name, "two").await;

    // Each handler fails three times (a store down), then succeeds.
    let shutdown = Shutdown::new();
    let seen: Arc<Mutex<Vec<(bool, i64)>>> = Arc::default();
    let tries = Arc::new(AtomicUsize::new(0));
    consumer::spawn(rabbit.clone(), single.clone(), 4, &shutdown, {
        let (seen, tries) = (seen.clone(), tries.clone());
        move |delivery| {
            let (seen, tries) = (seen.clone(), tries.clone());
            async move {
                let count = delivery_count(&delivery.properties);
                seen.lock().unwrap().push((delivery.redelivered, count));
                if tries.fetch_add(1, Ordering::SeqCst) < 3 {
                    Outcome::Retry
                } else {
                    Outcome::Ack
                }
            }
        }
    });
    let batch_tries = Arc::new(AtomicUsize::new(0));
    let batching = Batching {
        max_events: 10,
        max_wait: Duration::from_millis(10),
        prefetch: 10,
        in_flight: 1,
    };
    consumer::spawn_batched(rabbit.clone(), batched.clone(), batching, &shutdown, {
        let (seen, tries) = (seen.clone(), batch_tries.clone());
        move |batch| {
            let (seen, tries) = (seen.clone(), tries.clone());
            async move {
                for delivery in &batch {
                    let count = delivery_count(&delivery.properties);
                    seen.lock().unwrap().push((delivery.redelivered, count));
                }
                if tries.fetch_add(1, Ordering::SeqCst) < 3 {
                    BatchOutcome::Retry
                } else {
                    BatchOutcome::Ack { reject: vec![] }
                }
            }
        }
    });
    testkit::wait_for(
        "both handled on the fourth try",
        Duration::from_secs(20),
        || async {
            let done = tries.load(Ordering::SeqCst) == 4 && batch_tries.load(Ordering::SeqCst) == 4;
            let settled = ready(&channel, &single.name).await == 0
                && ready(&channel, &batched.name).await == 0;
            (done && settled).then_some(())
        },
    )
    .await;
    // One delivery each, handled four times: never redelivered, never counted.
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 8);
    assert!(
        seen.iter()
            .all(|&(redelivered, count)| !redelivered && count == 0),
        "{seen:?}"
    );
    let parked = |spec: &consumer::QueueSpec| spec.parking.as_ref().unwrap().name.clone();
    assert_eq!(ready(&channel, &parked(&single)).await, 0);
    assert_eq!(ready(&channel, &parked(&batched)).await, 0);
    shutdown.trigger();
    shutdown
        .drain(Duration::from_secs(5), shutdown.finished())
        .await
        .expect("drained");
    rabbit.close().await;
}

#[tokio::test]
async fn a_message_that_keeps_coming_back_is_parked_after_the_delivery_limit() {
    let env = TestEnv::new("events");
    let namespace = Namespace::new(format!("test-{}.", env.id)).with_queue_type(QueueType::Quorum);
    let rabbit = Rabbit::new(&env.amqp_url, "quorum-test");
    let channel = rabbit.channel().await.unwrap();
    let spec = namespace.queue("bouncing");
    spec.declare(&channel).await.unwrap();
    publish(&channel, &spec.name, "poison").await;

    // A consumer that hands it back every time (as one that crashes on it would).
    let shutdown = Shutdown::new();
    let deliveries = Arc::new(AtomicUsize::new(0));
    consumer::spawn(rabbit.clone(), spec.clone(), 1, &shutdown, {
        let deliveries = deliveries.clone();
        move |_| {
            deliveries.fetch_add(1, Ordering::SeqCst);
            async { Outcome::Requeue }
        }
    });
    let parking = spec.parking.as_ref().unwrap().name.clone();
    testkit::wait_for("parked", Duration::from_secs(20), || async {
        (ready(&channel, &parking).await == 1).then_some(())
    })
    .await;
    assert_eq!(ready(&channel, &spec.name).await, 0);
    let delivered = deliveries.load(Ordering::SeqCst) as i64;
    assert!(
        (DELIVERY_LIMIT..=DELIVERY_LIMIT + 1).contains(&delivered),
        "delivered {delivered} times"
    );
    shutdown.trigger();
    shutdown
        .drain(Duration::from_secs(5), shutdown.finished())
        .await
        .expect("drained");
    rabbit.close().await;
}
