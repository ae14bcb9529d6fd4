//! The Grafana dashboard against live services: every metric and label its panels query
//! must be on the services' /metrics once they run and have served a little traffic, so a
//! renamed or dropped metric cannot leave a panel of deploy/observability empty.

use std::time::{Duration, Instant};

use e2e::Stack;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn every_dashboard_metric_is_exported_by_a_running_service() {
    let stack = Stack::start().await;
    stack.start_transcoder().await;

    // A little traffic through the gateway: requests of every outcome the panels split by.
    let client = reqwest::Client::new();
    for path in [
        "/auth/healthz",
        "/media/readyz",
        "/video/healthz",
        "/nowhere",
    ] {
        client.get(stack.url(path)).send().await.unwrap();
    }
    stack
        .graphql_ok(
            None,
            "{ feed(first: 5) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    // A profile media does not have cached: a gRPC call to auth's user directory.
    stack
        .graphql_ok(
            None,
            "query($id: ID!) { user(id: $id) { username } }",
            json!({ "id": uuid::Uuid::now_v7() }),
        )
        .await;

    let text = std::fs::read_to_string(
        deployment::repo_root().join("deploy/observability/grafana/dashboards/kino.json"),
    )
    .unwrap();
    let board: serde_json::Value = serde_json::from_str(&text).unwrap();

    // Queue depths arrive from the consumers' first report; give them a few seconds.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut exposition = String::new();
        for addr in [stack.auth_addr, stack.media_addr, stack.video_addr] {
            let body = client
                .get(format!("http://{addr}/metrics"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            exposition.push_str(&body);
            exposition.push('\n');
        }
        let problems =
            deployment::dashboard::check(&board, &deployment::dashboard::exposition(&exposition));
        if problems.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "dashboard queries what no service exports:\n  {}\n--- exposition ---\n{exposition}",
            problems.join("\n  ")
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
