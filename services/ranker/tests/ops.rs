//! The ranker's readiness follows each of its dependencies.

mod common;

use platform::Shutdown;
use testkit::{
    TestEnv,
    ops::{Dependency, readiness_follows},
};

const DEPENDENCIES: &[&str] = &["redis", "mongodb", "rabbitmq"];

/// Starts the worker in-process on a random port; resolves to its root URL, where probes and Prometheus find the full readiness report and metrics.
fn spawn_app(env: &TestEnv) -> impl Future<Output = String> + use<> {
    let config = common::config(env);
    async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(ranker::run(config, listener, Shutdown::new()));
        format!("http://{addr}")
    }
}

#[tokio::test]
async fn readiness_follows_redis() {
    readiness_follows(
        Dependency::Redis,
        DEPENDENCIES,
        TestEnv::new("ranker"),
        spawn_app,
    )
    .await;
}

#[tokio::test]
async fn readiness_follows_mongodb() {
    readiness_follows(
        Dependency::MongoDb,
        DEPENDENCIES,
        TestEnv::new("ranker"),
        spawn_app,
    )
    .await;
}

#[tokio::test]
async fn readiness_follows_rabbitmq() {
    readiness_follows(
        Dependency::RabbitMq,
        DEPENDENCIES,
        TestEnv::new("ranker"),
        spawn_app,
    )
    .await;
}
