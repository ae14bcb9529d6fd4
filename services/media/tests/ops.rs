//! The media service's operational surface: readiness follows each dependency, and a
//! SIGTERM lets the request in flight finish before the process exits 0.

mod common;

use std::time::Duration;

use platform::Shutdown;
use testkit::{
    Gate, TestEnv, authority,
    ops::{Dependency, readiness_follows},
    process::ServiceProcess,
    with_authority,
};

const DEPENDENCIES: &[&str] = &["postgres", "mongodb", "redis", "rabbitmq"];

/// Starts the service in-process on a random port; resolves to its root URL, where probes and Prometheus find the full readiness report and metrics.
fn spawn_app(env: &TestEnv) -> impl Future<Output = String> + use<> {
    let config = common::config(env);
    async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(media::run(config, listener, Shutdown::new()));
        format!("http://{addr}")
    }
}

#[tokio::test]
async fn readiness_follows_postgres() {
    readiness_follows(
        Dependency::Postgres,
        DEPENDENCIES,
        TestEnv::new("media"),
        spawn_app,
    )
    .await;
}

#[tokio::test]
async fn readiness_follows_mongodb() {
    readiness_follows(
        Dependency::MongoDb,
        DEPENDENCIES,
        TestEnv::new("media"),
        spawn_app,
    )
    .await;
}

#[tokio::test]
async fn readiness_follows_redis() {
    readiness_follows(
        Dependency::Redis,
        DEPENDENCIES,
        TestEnv::new("media"),
        spawn_app,
    )
    .await;
}

#[tokio::test]
async fn readiness_follows_rabbitmq() {
    readiness_follows(
        Dependency::RabbitMq,
        DEPENDENCIES,
        TestEnv::new("media"),
        spawn_app,
    )
    .await;
}

#[tokio::test]
async fn sigterm_drains_the_request_in_flight_then_exits_zero() {
    let env = TestEnv::new("media");
    // A slow dependency makes /readyz a slow request (about 1.5 s).
    let gate = Gate::start(&authority(&env.amqp_url, 5672), true).await;
    gate.set_delay(Duration::from_millis(1500));
    let mut service = ServiceProcess::start(
        env!("CARGO_BIN_EXE_media"),
        &[
            ("DATABASE_URL", env.database_url.clone()),
            ("MONGODB_URI", env.mongodb_uri.clone()),
            ("MONGODB_DATABASE", env.mongodb_database.clone()),
            ("REDIS_URL", env.redis_url.clone()),
            ("AMQP_URL", with_authority(&env.amqp_url, &gate.authority())),
            ("SHUTDOWN_GRACE_SECS", "10".into()),
        ],
    )
    .await;

    let url = format!("http://{}/readyz", service.addr);
    let in_flight = tokio::spawn(async move { reqwest::get(&url).await });
    tokio::time::sleep(Duration::from_millis(400)).await;
    service.signal("TERM");

    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight request completes");
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["checks"]["rabbitmq"].is_object(),
        "a full readiness report: {body}"
    );
    let status = tokio::time::timeout(Duration::from_secs(15), service.child.wait())
        .await
        .expect("exits after draining")
        .unwrap();
    assert_eq!(status.code(), Some(0), "clean exit");
}
