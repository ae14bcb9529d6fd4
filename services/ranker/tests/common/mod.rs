//! What the ranker's tests share: a configuration on the test's own stores and queues, a
//! publisher of interactions, and readers of the sorted sets and the archive.
#![allow(dead_code)]

use std::{collections::HashMap, time::Duration};

use events::{
    Envelope,
    batch::BatchPublisher,
    interaction::{Action, Interaction},
};
use mongodb::bson::Document;
use platform::config::HttpConfig;
use ranker::config::{Ingest, Scoring};
use testkit::TestEnv;

/// The ranker on `env`'s stores, with queues and routing keys of its own.
pub fn config(env: &TestEnv) -> ranker::Config {
    ranker::Config {
        http: HttpConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            shutdown_grace: Duration::from_secs(5),
        },
        redis_url: env.redis_url.clone(),
        redis_prefix: env.redis_prefix.clone(),
        mongodb_uri: env.mongodb_uri.clone(),
        mongodb_database: env.mongodb_database.clone(),
        amqp_url: env.amqp_url.clone(),
        queue_prefix: queue_prefix(env),
        queue_expires: Some(Duration::from_secs(600)),
        scoring: Scoring::default(),
        ingest: Ingest {
            counter_flush: Duration::from_millis(200),
            batch_wait: Duration::from_millis(10),
            ..Ingest::default()
        },
        roles: ranker::config::Roles::default(),
    }
}

pub fn queue_prefix(env: &TestEnv) -> String {
    env.queue_prefix.clone()
}

/// Declares the ranker's queues (as it does), so events published before it starts wait.
pub async fn declare_queues(rabbit: &events::Rabbit, config: &ranker::Config) {
    let channel = rabbit.channel().await.unwrap();
    for name in ["ranker.interactions", "ranker.archive"] {
        config.queue(name).declare(&channel).await.unwrap();
    }
    channel.close(200, "declared".into()).await.ok();
}

pub struct Publisher {
    inner: BatchPublisher,
    prefix: String,
}

impl Publisher {
    pub fn new(rabbit: std::sync::Arc<events::Rabbit>, env: &TestEnv) -> Self {
        Self {
            inner: BatchPublisher::spawn(rabbit, 100_000, 1000, 100),
            prefix: queue_prefix(env),
        }
    }

    /// Publishes and waits for the confirm.
    pub async fn publish(&self, envelope: &Envelope<Interaction>) {
        self.send(envelope).await.await.unwrap();
    }

    /// Buffers; the returned future resolves on the confirm.
    pub async fn send(
        &self,
        envelope: &Envelope<Interaction>,
    ) -> impl Future<Output = Result<(), events::Error>> + use<> {
        loop {
            match self
                .inner
                .try_publish(envelope.data.routing_key(&self.prefix), envelope)
            {
                Ok(confirmed) => return confirmed,
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }
}

pub fn interaction(
    video: uuid::Uuid,
    owner: uuid::Uuid,
    category: Option<&str>,
    viewer: &str,
    action: Action,
) -> Interaction {
    Interaction {
        video_id: video,
        owner_id: owner,
        category: category.map(str::to_owned),
        viewer: viewer.parse().expect("a viewer key"),
        action,
    }
}

pub fn redis(env: &TestEnv) -> platform::redis::Redis {
    platform::redis::connect(&env.redis_url).unwrap()
}

/// A sorted set as member → score.
pub async fn scores(redis: &platform::redis::Redis, key: &str) -> HashMap<String, f64> {
    let mut conn = redis.clone();
    let pairs: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(&mut conn)
        .await
        .unwrap();
    pairs.into_iter().collect()
}

/// Every document of the archive.
pub async fn archive(env: &TestEnv) -> Vec<Document> {
    use futures::TryStreamExt;
    let client = platform::mongo::connect(&env.mongodb_uri, "ranker-tests")
        .await
        .unwrap();
    client
        .database(&env.mongodb_database)
        .collection::<Document>(ranker::archive::COLLECTION)
        .find(mongodb::bson::doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

/// How many events the archive holds.
pub async fn archive_count(env: &TestEnv) -> usize {
    let client = platform::mongo::connect(&env.mongodb_uri, "ranker-tests")
        .await
        .unwrap();
    client
        .database(&env.mongodb_database)
        .collection::<Document>(ranker::archive::COLLECTION)
        .count_documents(mongodb::bson::doc! {})
        .await
        .unwrap() as usize
}
