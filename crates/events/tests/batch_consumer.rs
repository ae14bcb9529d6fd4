//! The batching consumer against a real RabbitMQ: packs fill batches by their events, and
//! batches handled two at a time are all acknowledged even when no more deliveries come.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use events::{
    Envelope, Event, Rabbit,
    batch::BatchPublisher,
    consumer::{self, BatchOutcome, Batching, QueueSpec},
    pack,
};
use lapin::{options::QueueDeclareOptions, types::FieldTable};
use serde::{Deserialize, Serialize};
use testkit::TestEnv;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Tick {
    n: u32,
}

impl Event for Tick {
    const EXCHANGE: &'static str = events::topology::INTERACTIONS;
    const TYPE: &'static str = "tick";
}

#[tokio::test]
async fn packs_fill_batches_by_events_and_every_batch_is_acknowledged_when_the_queue_goes_quiet() {
    let env = TestEnv::new("events");
    let rabbit = Rabbit::new(&env.amqp_url, "batch-consumer-test");
    let channel = rabbit.channel().await.unwrap();
    events::topology::declare(&channel).await.unwrap();
    let routing_key = format!("test-{}.tick", env.id);
    let spec = QueueSpec::new(format!("test-{}.ticks", env.id))
        .bind(events::topology::INTERACTIONS, &routing_key)
        .expires(Duration::from_secs(60));
    spec.declare(&channel).await.unwrap();

    // 25 events at once, in packs of up to 10: messages of 10, 10 and 5 events.
    let publisher = BatchPublisher::spawn(rabbit.clone(), 100, 100, 10);
    let confirms: Vec<_> = (0..25)
        .map(|n| {
            publisher
                .try_publish(routing_key.clone(), &Envelope::new(Tick { n }))
                .unwrap()
        })
        .collect();
    for confirmed in futures::future::join_all(confirms).await {
        confirmed.unwrap();
    }

    let batches: Arc<Mutex<Vec<Vec<u32>>>> = Arc::default();
    let stop = platform::Shutdown::new();
    let consumer = consumer::spawn_batched(
        rabbit.clone(),
        spec.clone(),
        Batching {
            max_events: 10,
            max_wait: Duration::from_millis(50),
            prefetch: 100,
            in_flight: 2,
        },
        &stop,
        {
            let batches = batches.clone();
            move |deliveries| {
                let batches = batches.clone();
                async move {
                    let ticks = deliveries
                        .iter()
                        .flat_map(|d| pack::decode::<Tick>(&d.data).unwrap())
                        .map(|e| e.unwrap().data.n)
                        .collect();
                    batches.lock().unwrap().push(ticks);
                    BatchOutcome::Ack { reject: vec![] }
                }
            }
        },
    );
    testkit::wait_for("all 25 events handled", Duration::from_secs(20), || {
        let handled: usize = batches.lock().unwrap().iter().map(Vec::len).sum();
        async move { (handled == 25).then_some(()) }
    })
    .await;
    // Nothing else arrives now; the last batches must be settled all the same.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.trigger();
    consumer.await.unwrap();
    rabbit.close().await; // anything still unacknowledged goes back to the queue

    let mut handled: Vec<u32> = batches.lock().unwrap().concat();
    handled.sort_unstable();
    assert_eq!(handled, (0..25).collect::<Vec<_>>(), "each event once");
    let sizes: Vec<usize> = batches.lock().unwrap().iter().map(Vec::len).collect();
    assert!(
        sizes.iter().all(|&n| n <= 10),
        "batches are filled by events, not messages: {sizes:?}"
    );

    let rabbit = Rabbit::new(&env.amqp_url, "batch-consumer-test-check");
    let channel = rabbit.channel().await.unwrap();
    let queue = channel
        .queue_declare(
            spec.name.as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert_eq!(queue.message_count(), 0, "every batch was acknowledged");
    rabbit.close().await;
}
