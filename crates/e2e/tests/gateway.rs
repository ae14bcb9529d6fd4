//! Through the gateway: every public service answers its health and readiness endpoints
//! at its own prefix (readiness as a bare status); the services themselves list their
//! dependencies at the root, and unknown prefixes get a problem+json 404.

use std::time::Duration;

use e2e::Stack;
use testkit::{ops::get_json, wait_for};

#[tokio::test]
async fn every_service_is_healthy_and_ready_through_the_gateway() {
    let stack = Stack::start().await;
    let expected: &[(&str, &[&str])] = &[
        ("auth", &["postgres", "redis", "rabbitmq"]),
        (
            "media",
            &["postgres", "mongodb", "redis", "rabbitmq", "search"],
        ),
        ("video", &["postgres", "s3", "rabbitmq"]),
    ];
    let direct = [
        ("auth", stack.auth_addr),
        ("media", stack.media_addr),
        ("video", stack.video_addr),
    ];
    for (service, dependencies) in expected {
        let (status, body) = get_json(&stack.url(&format!("/{service}/healthz"))).await;
        assert_eq!(
            (status, &body["status"]),
            (200, &"ok".into()),
            "{service}: {body}"
        );

        let body = wait_for(
            &format!("{service} ready"),
            Duration::from_secs(30),
            || async {
                let (status, body) = get_json(&stack.url(&format!("/{service}/readyz"))).await;
                (status == 200).then_some(body)
            },
        )
        .await;
        assert_eq!(body, serde_json::json!({"status": "ready"}), "{service}");
        let addr = direct.iter().find(|(name, _)| name == service).unwrap().1;
        let (_, body) = get_json(&format!("http://{addr}/readyz")).await;
        for dependency in *dependencies {
            assert_eq!(
                body["checks"][dependency]["status"], "up",
                "{service}/{dependency}: {body}"
            );
        }
    }
}

#[tokio::test]
async fn the_gateway_propagates_request_ids_and_rejects_unknown_prefixes() {
    let stack = Stack::start().await;
    let client = reqwest::Client::new();
    let response = client
        .get(stack.url("/media/healthz"))
        .header("X-Request-Id", "e2e-trace-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "e2e-trace-1");

    let response = client.get(stack.url("/nowhere")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
}
