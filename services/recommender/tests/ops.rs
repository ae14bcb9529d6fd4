//! The recommender's readiness follows each of its dependencies.

mod common;

use platform::Shutdown;
use testkit::{
    TestEnv,
    ops::{Dependency, readiness_follows},
};

const DEPENDENCIES: &[&str] = &["postgres", "rabbitmq"];

/// Starts the service in-process on a random port; resolves to its root URL, where probes and Prometheus find the full readiness report and metrics.
fn spawn_app(env: &TestEnv) -> impl Future<Output = String> + use<> {
    let config = common::config(env);
    async move {
        let listeners = recommender::Listeners::bind(&config).await.unwrap();
        let addr = listeners.http.local_addr().unwrap();
        tokio::spawn(recommender::run(config, listeners, Shutdown::new()));
        format!("http://{addr}")
    }
}

#[tokio::test]
async fn readiness_follows_postgres() {
    readiness_follows(
        Dependency::Postgres,
        DEPENDENCIES,
        TestEnv::new("recommender"),
        spawn_app,
    )
    .await;
}

#[tokio::test]
async fn readiness_follows_rabbitmq() {
    readiness_follows(
        Dependency::RabbitMq,
        DEPENDENCIES,
        TestEnv::new("recommender"),
        spawn_app,
    )
    .await;
}
