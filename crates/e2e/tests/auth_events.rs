//! Account changes reach other services as events (through the outbox), and per-IP login
//! throttling holds behind the gateway whatever `X-Forwarded-For` a client invents.

use std::time::Duration;

use e2e::Stack;
use reqwest::Client;
use serde_json::json;

const PASSWORD: &str = "correct horse battery";

#[tokio::test]
async fn profile_changes_and_deletion_publish_user_events() {
    let stack = Stack::start().await;
    // A queue of our own, bound under the stack's namespace as media's are.
    let bindings = [(
        events::topology::USER_EVENTS,
        stack.namespace().routing_key("user.*"),
    )];
    let mut tap = events::tap::Tap::bind(&stack.env.amqp_url, "e2e-user-events", bindings)
        .await
        .unwrap();

    let user = stack.register("eventful", PASSWORD).await;
    let token = stack.login("eventful", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = Client::new();
    let response = client
        .patch(stack.url("/user/profile"))
        .bearer_auth(&token)
        .json(&json!({"display_name": "Eve Entful"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = client
        .delete(stack.url("/user/profile"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);

    // Only this stack's events reach the tap; keep this user's, in order.
    let mut seen = Vec::new();
    let collect = async {
        while let Some(event) = tap.next_json().await {
            if event["data"]["user_id"] == user["id"] {
                assert!(event["id"].is_string() && event["version"] == 1, "{event}");
                seen.push(event["type"].as_str().unwrap().to_owned());
                if seen.len() == 2 {
                    return;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), collect)
        .await
        .expect("both events within 10 s");
    assert_eq!(seen, ["user.updated", "user.deleted"]);
    tap.close().await;
}

#[tokio::test]
async fn per_ip_throttling_ignores_forwarded_for_invented_by_clients() {
    let stack = Stack::start_with(|auth| auth.login_limits.ip_attempts = 3).await;
    let client = Client::new();
    let attempt = |spoofed: &'static str| {
        client
            .post(stack.url("/auth/login"))
            .header("X-Forwarded-For", spoofed)
            .json(&json!({"login": "nobody", "password": "whatever-it-is"}))
            .send()
    };
    // Each attempt claims to come from elsewhere; the gateway does not pass that on as
    // the client address, so all of them count against the one real client.
    for spoofed in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        assert_eq!(attempt(spoofed).await.unwrap().status(), 401);
    }
    let response = attempt("203.0.113.4").await.unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
}
