//! A three-node RabbitMQ cluster (deploy/local/cluster.sh, started by deploy/local/test)
//! loses the node its publisher and consumer are connected to, twice: node 1 (which also
//! leads their quorum queue) is stopped, then node 2 (where the clients went) is killed
//! with SIGKILL. Every message the broker confirmed is consumed, the clients carry on
//! through the other nodes after brief retries, and each node rejoins.
//!
//! Needs `KINO_RABBIT_CLUSTER_URLS` (run through `deploy/local/test`).

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use events::{
    Namespace, Publisher, Rabbit, Route,
    consumer::{self, Outcome},
    queue::QueueType,
};
use lapin::BasicProperties;
use platform::Shutdown;
use testkit::{TestEnv, cluster::run as cluster};
use uuid::Uuid;

#[tokio::test]
async fn losing_a_rabbitmq_node_loses_no_confirmed_message() {
    let urls = std::env::var("KINO_RABBIT_CLUSTER_URLS").expect(
        "KINO_RABBIT_CLUSTER_URLS: run through deploy/local/test, which starts the cluster",
    );
    let env = TestEnv::new("events");
    let namespace = Namespace::new(format!("test-{}.", env.id)).with_queue_type(QueueType::Quorum);
    let spec = namespace.queue("failover");
    // Node 1 first: the clients connect there, and the queue's leader is placed there.
    let consumer_rabbit = Rabbit::new(&urls, "failover-consumer");
    spec.declare(&consumer_rabbit.channel().await.unwrap())
        .await
        .unwrap();
    let publisher =
        Publisher::new(Rabbit::new(&urls, "failover-publisher")).declaring([spec.clone()]);

    let shutdown = Shutdown::new();
    let received: Arc<Mutex<HashMap<Uuid, usize>>> = Arc::default();
    consumer::spawn(consumer_rabbit.clone(), spec.clone(), 32, &shutdown, {
        let received = received.clone();
        move |delivery| {
            let id = delivery
                .properties
                .message_id()
                .as_ref()
                .and_then(|id| Uuid::parse_str(id.as_str()).ok());
            if let Some(id) = id {
                *received.lock().unwrap().entry(id).or_default() += 1;
            }
            async { Outcome::Ack }
        }
    });

    // A steady publisher: each message retried until confirmed, as the outbox relays do.
    const MESSAGES: usize = 600;
    let route = Route::queue(&spec.name);
    let mut confirmed = HashSet::new();
    let mut failures = 0;
    let mut longest_window = Duration::ZERO;
    let mut restart = None;
    for n in 0..MESSAGES {
        match n {
            150 => cluster("stop_rabbit_node 1"),
            // Back in the background; publishing goes on meanwhile.
            250 => {
                restart = Some(tokio::task::spawn_blocking(|| {
                    cluster("start_rabbit_node 1")
                }))
            }
            350 => {
                restart.take().unwrap().await.unwrap();
                // The clients moved to node 2 (the next one named): crash it.
                cluster("kill_rabbit_node 2");
            }
            450 => {
                restart = Some(tokio::task::spawn_blocking(|| {
                    cluster("start_rabbit_node 2")
                }))
            }
            _ => {}
        }
        let id = Uuid::now_v7();
        let properties = BasicProperties::default().with_message_id(id.to_string().into());
        let mut failing_since = None;
        loop {
            match publisher
                .publish_with(&route, id.as_bytes(), properties.clone())
                .await
            {
                Ok(()) => break,
                Err(error) => {
                    failures += 1;
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    assert!(
                        since.elapsed() < Duration::from_secs(60),
                        "no node took message {n} for a minute: {error}"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        if let Some(since) = failing_since {
            longest_window = longest_window.max(since.elapsed());
        }
        confirmed.insert(id);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    restart.unwrap().await.unwrap();

    testkit::wait_for(
        "every confirmed message consumed",
        Duration::from_secs(60),
        || {
            let received = received.lock().unwrap();
            let missing = confirmed
                .iter()
                .filter(|id| !received.contains_key(id))
                .count();
            async move { (missing == 0).then_some(()) }
        },
    )
    .await;
    let received = received.lock().unwrap().clone();
    let doubled = received.values().filter(|&&n| n > 1).count();
    println!(
        "rabbitmq failover: {} confirmed, 0 lost, {doubled} delivered twice (consumers drop \
         them by id), {failures} failed publishes retried, longest error window {:?}",
        confirmed.len(),
        longest_window
    );
    assert_eq!(confirmed.len(), MESSAGES);
    shutdown.trigger();
    shutdown
        .drain(Duration::from_secs(10), shutdown.finished())
        .await
        .expect("drained");
}
