//! The auth service's operational surface (Rocket): readiness follows each dependency,
//! request ids and per-route metrics, and SIGTERM drains the request in flight.

mod common;

use std::time::Duration;

use platform::Shutdown;
use testkit::{
    Gate, TestEnv, authority,
    ops::{Dependency, get_json, readiness_follows},
    process::ServiceProcess,
    with_authority,
};

const DEPENDENCIES: &[&str] = &["postgres", "redis", "rabbitmq"];

/// Starts the service in-process on a random port; resolves to its root URL, where probes and Prometheus find the full readiness report and metrics.
fn spawn_app(env: &TestEnv) -> impl Future<Output = String> + use<> {
    let config = common::config(env);
    async move {
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(auth::run(config, Shutdown::new(), Some(tx)));
        let addr = rx.await.expect("auth started").http;
        format!("http://{addr}")
    }
}

#[tokio::test]
async fn readiness_follows_postgres() {
    readiness_follows(
        Dependency::Postgres,
        DEPENDENCIES,
        TestEnv::new("auth"),
        spawn_app,
    )
    .await;
}

#[tokio::test]
async fn readiness_follows_redis() {
    readiness_follows(
        Dependency::Redis,
        DEPENDENCIES,
        TestEnv::new("auth"),
        spawn_app,
    )
    .await;
}

#[tokio::test]
async fn readiness_follows_rabbitmq() {
    readiness_follows(
        Dependency::RabbitMq,
        DEPENDENCIES,
        TestEnv::new("auth"),
        spawn_app,
    )
    .await;
}

#[tokio::test]
async fn request_ids_are_propagated_and_metrics_are_per_route() {
    let env = TestEnv::new("auth");
    let base = spawn_app(&env).await;
    let client = reqwest::Client::new();

    let response = client
        .get(format!("{base}/healthz"))
        .header("X-Request-Id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["x-request-id"],
        "trace-me-42",
        "a caller's id is kept"
    );
    let response = client.get(format!("{base}/healthz")).send().await.unwrap();
    let generated = response.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(
        generated.len(),
        36,
        "a fresh UUID when none was sent: {generated}"
    );
    let response = client
        .get(format!("{base}/healthz"))
        .header("X-Request-Id", "bad id")
        .send()
        .await
        .unwrap();
    assert_ne!(
        response.headers()["x-request-id"],
        "bad id",
        "an unreasonable id is replaced"
    );

    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.lines().any(|l| l.starts_with("http_requests_total")
            && l.contains(r#"route="/healthz""#)
            && l.contains(r#"status="200""#)),
        "{metrics}"
    );
    assert!(
        metrics.contains("http_request_duration_seconds_bucket"),
        "{metrics}"
    );
    assert_eq!(get_json(&format!("{base}/healthz")).await.1["status"], "ok");
}

/// Rocket waits out the grace period while any connection (even an idle keep-alive one)
/// is open, so the grace here is short; the request in flight must still complete.
#[tokio::test]
async fn sigterm_drains_the_request_in_flight_then_exits_zero() {
    let env = TestEnv::new("auth");
    let gate = Gate::start(&authority(&env.amqp_url, 5672), true).await;
    gate.set_delay(Duration::from_millis(1500));
    let key_file = std::env::temp_dir().join(format!("kino-auth-key-{}.pem", env.id));
    std::fs::write(&key_file, identity::SigningKey::generate().pem()).unwrap();
    let mut service = ServiceProcess::start(
        env!("CARGO_BIN_EXE_auth"),
        &[
            ("JWT_SIGNING_KEY_FILE", key_file.display().to_string()),
            ("DATABASE_URL", env.database_url.clone()),
            ("REDIS_URL", env.redis_url.clone()),
            ("AMQP_URL", with_authority(&env.amqp_url, &gate.authority())),
            ("SHUTDOWN_GRACE_SECS", "3".into()),
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
    std::fs::remove_file(key_file).unwrap();
}
