//! The webhooks service's readiness follows each of its dependencies.

use std::time::Duration;

use platform::Shutdown;
use testkit::{
    TestEnv,
    ops::{Dependency, readiness_follows},
};

const DEPENDENCIES: &[&str] = &["postgres", "rabbitmq"];

/// The service against the test's own database and queue prefix.
fn config(env: &TestEnv) -> webhooks::Config {
    let mut config = webhooks::Config::from_env().unwrap();
    config.http = env.http_config();
    config.postgres = env.postgres_config();
    config.amqp_url = env.amqp_url.clone();
    config.queue_prefix = env.queue_prefix.clone();
    config.queue_expires = Some(Duration::from_secs(60));
    config
}

/// Starts the service in-process on a random port; resolves to its root URL.
fn spawn_app(env: &TestEnv) -> impl Future<Output = String> + use<> {
    let config = config(env);
    async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(webhooks::run(config, listener, Shutdown::new()));
        format!("http://{addr}")
    }
}

#[tokio::test]
async fn readiness_follows_postgres() {
    readiness_follows(
        Dependency::Postgres,
        DEPENDENCIES,
        TestEnv::new("webhooks"),
        spawn_app,
    )
    .await;
}

#[tokio::test]
async fn readiness_follows_rabbitmq() {
    readiness_follows(
        Dependency::RabbitMq,
        DEPENDENCIES,
        TestEnv::new("webhooks"),
        spawn_app,
    )
    .await;
}
