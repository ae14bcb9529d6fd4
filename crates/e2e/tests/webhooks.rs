//! Webhooks end to end: endpoints registered through the gateway, Kino's own events
//! (from the real video service and transcoder, and auth's account deletion), deliveries
//! to a real receiver on loopback that verifies each with the `standardwebhooks` library
//! from PyPI (tests/webhook_receiver.py), never with Kino's code.

mod video_common;

use std::{
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use e2e::{Stack, Webhooks};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use uuid::Uuid;
use video_common::{generate_video, scratch, tus, user, video_id, wait_for_status};

/// The receiver (tests/webhook_receiver.py) running for one test.
struct Receiver {
    base: String,
    _child: tokio::process::Child,
}

impl Receiver {
    async fn start() -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webhook_receiver.py");
        let python = std::env::var("KINO_CACHE_DIR").unwrap_or_else(|_| "/var/tmp/kino".into())
            + "/venv/bin/python3";
        let mut child = tokio::process::Command::new(python)
            .arg(script)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python venv (deploy/local/deps)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("the receiver starts")
            .unwrap()
            .expect("the receiver prints its port");
        let port = line.strip_prefix("listening ").expect("listening <port>");
        Self {
            base: format!("http://127.0.0.1:{port}"),
            _child: child,
        }
    }

    fn url(&self, name: &str) -> String {
        format!("{}/hook/{name}", self.base)
    }

    /// Sets how `/hook/{name}` answers (see the receiver's doc).
    async fn behave(&self, name: &str, behaviour: Value) {
        let response = Client::new()
            .put(format!("{}/behaviour/{name}", self.base))
            .json(&behaviour)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
    }

    /// Every request to `name`, as the library judged it with `secrets`.
    async fn log(&self, name: &str, secrets: &[&str]) -> Vec<Value> {
        let query: Vec<(&str, &str)> = secrets.iter().map(|s| ("secret", *s)).collect();
        Client::new()
            .get(format!("{}/log/{name}", self.base))
            .query(&query)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits until `name` has received `count` requests; returns them.
    async fn wait(
        &self,
        name: &str,
        secrets: &[&str],
        count: usize,
        within: Duration,
    ) -> Vec<Value> {
        testkit::wait_for(
            &format!("{count} deliveries to {name}"),
            within,
            || async move {
                let log = self.log(name, secrets).await;
                (log.len() >= count).then_some(log)
            },
        )
        .await
    }
}

/// The webhooks REST API through the gateway, as `token`'s user.
async fn api(
    webhooks: &Webhooks,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = Client::new().request(method, format!("{}{path}", webhooks.gateway.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    if status.is_client_error() {
        assert_eq!(
            content_type.as_deref(),
            Some("application/problem+json"),
            "{status}: {text}"
        );
    }
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: {text}"))
    };
    (status, body)
}

/// Registers an endpoint; panics unless 201. Returns (id, secret).
async fn register(webhooks: &Webhooks, token: &str, body: Value) -> (String, String) {
    let (status, endpoint) = api(
        webhooks,
        Some(token),
        Method::POST,
        "/webhooks/endpoints",
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{endpoint}");
    (
        endpoint["id"].as_str().unwrap().to_owned(),
        endpoint["secret"].as_str().unwrap().to_owned(),
    )
}

/// Publishes a video event as the video service and transcoder do: on `video.events`
/// under this stack's prefix, confirmed. Returns the envelope's body (to send again).
async fn publish<T: events::Event>(stack: &Stack, data: T) -> (Uuid, Vec<u8>) {
    let envelope = events::Envelope::new(data);
    let body = serde_json::to_vec(&envelope).unwrap();
    publish_raw(stack, T::TYPE, &body).await;
    (envelope.id, body)
}

async fn publish_raw(stack: &Stack, kind: &str, body: &[u8]) {
    let rabbit = events::Rabbit::new(&stack.env.amqp_url, "e2e-webhooks");
    let publisher = events::Publisher::new(rabbit);
    let routing_key = stack.namespace().routing_key(kind);
    publisher
        .publish_raw(
            events::topology::VIDEO_EVENTS,
            &routing_key,
            &Uuid::now_v7().to_string(),
            body,
        )
        .await
        .unwrap();
}

fn failed(owner: Uuid, reason: &str) -> events::video::VideoFailed {
    events::video::VideoFailed {
        video_id: Uuid::now_v7(),
        owner_id: owner,
        reason: reason.into(),
    }
}

fn uuid(value: &str) -> Uuid {
    Uuid::parse_str(value).unwrap()
}

/// Waits until the webhooks service's queue exists, so events published from now on
/// reach it (it is declared when the consumer starts).
async fn queue_ready(stack: &Stack) {
    let name = stack.namespace().name(webhooks::ingest::QUEUE);
    stack.wait_queue_declared(&name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_platforms_own_events_reach_endpoints_signed_as_the_standard_says() {
    let stack = Stack::start().await;
    stack.start_transcoder().await;
    let (creator, creator_token) = user(&stack, "creator").await;
    let (admin, admin_token) = user(&stack, "admin").await;
    let webhooks = stack
        .start_webhooks(|config| {
            config.admins.insert(uuid(&admin));
        })
        .await;
    let receiver = Receiver::start().await;
    let channel_types = [
        "video.uploaded",
        "video.ready",
        "video.failed",
        "video.deleted",
        "comment.added",
        "subscription.added",
    ];
    let (_, creator_secret) = register(
        &webhooks,
        &creator_token,
        json!({ "url": receiver.url("creator"), "event_types": channel_types, "description": "CI" }),
    )
    .await;
    let (_, admin_secret) = register(
        &webhooks,
        &admin_token,
        json!({ "url": receiver.url("admin"), "event_types": ["user.deleted", "video.ready"], "scope": "platform" }),
    )
    .await;
    queue_ready(&stack).await;

    // A real upload, transcoded; a file that is not a video; the first one deleted.
    let dir = scratch(&stack);
    let movie = dir.join("movie.mp4");
    generate_video(&movie, "320x240", 2, "200k", false);
    let upload = tus(
        &stack,
        &creator_token,
        &movie,
        1 << 20,
        &["--meta", "title=Hooked"],
    )
    .await;
    let good = video_id(upload["url"].as_str().unwrap());
    wait_for_status(
        &stack,
        &good,
        &creator_token,
        "ready",
        Duration::from_secs(60),
    )
    .await;
    // A fan subscribes (twice: announced once) and comments.
    let (fan, fan_token) = user(&stack, "fan").await;
    stack.wait_video_ready(Some(&fan_token), uuid(&good)).await;
    for _ in 0..2 {
        stack
            .graphql_ok(
                Some(&fan_token),
                "mutation($c: ID!) { subscribe(channelId: $c) { id } }",
                json!({ "c": creator }),
            )
            .await;
    }
    let comment = stack
        .graphql_ok(
            Some(&fan_token),
            "mutation($v: ID!) { addComment(videoId: $v, body: \"First!\") { id } }",
            json!({ "v": good }),
        )
        .await;
    let comment_id = comment["addComment"]["id"].as_str().unwrap().to_owned();
    let junk = dir.join("junk.mp4");
    std::fs::write(&junk, vec![7u8; 4096]).unwrap();
    let upload = tus(&stack, &creator_token, &junk, 1 << 20, &[]).await;
    let bad = video_id(upload["url"].as_str().unwrap());
    wait_for_status(
        &stack,
        &bad,
        &creator_token,
        "failed",
        Duration::from_secs(60),
    )
    .await;
    let deleted = Client::new()
        .delete(stack.url(&format!("/video/{good}")))
        .bearer_auth(&creator_token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);

    // uploaded ×2, ready, subscription, comment, failed, deleted: each once, each verified
    // by the library.
    let log = receiver
        .wait("creator", &[&creator_secret], 7, Duration::from_secs(30))
        .await;
    let mut seen: Vec<(String, String)> = log
        .iter()
        .map(|d| {
            assert_eq!(d["verified"], true, "{d}");
            assert_eq!(d["status"], 200);
            let about = d["data"]["video_id"]
                .as_str()
                .or(d["data"]["channel_id"].as_str());
            (
                d["type"].as_str().unwrap().to_owned(),
                about.unwrap().to_owned(),
            )
        })
        .collect();
    seen.sort();
    let mut expected = vec![
        ("comment.added".to_owned(), good.clone()),
        ("subscription.added".to_owned(), creator.clone()),
        ("video.deleted".to_owned(), good.clone()),
        ("video.failed".to_owned(), bad.clone()),
        ("video.ready".to_owned(), good.clone()),
        ("video.uploaded".to_owned(), bad.clone()),
        ("video.uploaded".to_owned(), good.clone()),
    ];
    expected.sort();
    assert_eq!(seen, expected);
    let commented = log.iter().find(|d| d["type"] == "comment.added").unwrap();
    assert_eq!(commented["data"]["comment_id"], comment_id.as_str());
    assert_eq!(commented["data"]["author_id"], fan.as_str());
    assert_eq!(commented["data"]["body"], "First!");
    let subscribed = log
        .iter()
        .find(|d| d["type"] == "subscription.added")
        .unwrap();
    assert_eq!(subscribed["data"]["subscriber_id"], fan.as_str());
    let ready = log.iter().find(|d| d["type"] == "video.ready").unwrap();
    assert_eq!(ready["data"]["owner_id"], creator.as_str());
    assert!(ready["data"]["duration_seconds"].as_f64().unwrap() > 1.0);
    assert!(!ready["data"]["renditions"].as_array().unwrap().is_empty());
    assert!(
        !ready.to_string().contains("hls/"),
        "no storage keys: {ready}"
    );
    let failure = log.iter().find(|d| d["type"] == "video.failed").unwrap();
    assert!(!failure["data"]["reason"].as_str().unwrap().is_empty());
    let mut ids: Vec<&str> = log.iter().map(|d| d["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 7, "one webhook-id per event");
    // A wrong secret verifies nothing.
    let forged = receiver.log("creator", &[&admin_secret]).await;
    assert!(forged.iter().all(|d| d["verified"] == false));

    // The creator deletes their account: the platform endpoint hears of it, and the
    // account's own endpoints go with it.
    let response = Client::new()
        .delete(stack.url("/user/profile"))
        .bearer_auth(&creator_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let log = receiver
        .wait("admin", &[&admin_secret], 2, Duration::from_secs(30))
        .await;
    let types: Vec<&str> = log.iter().map(|d| d["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["video.ready", "user.deleted"], "{log:?}");
    assert!(log.iter().all(|d| d["verified"] == true), "{log:?}");
    assert_eq!(log[1]["data"]["user_id"], creator.as_str());
    let db = sqlx::PgPool::connect(&webhooks.config.postgres.url)
        .await
        .unwrap();
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM endpoints WHERE owner_id = $1")
        .bind(uuid(&creator))
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(left, 0, "a deleted account's endpoints are deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failures_are_retried_with_backoff_until_a_2xx_and_each_event_is_delivered_once() {
    let stack = Stack::start().await;
    let webhooks = stack
        .start_webhooks(|config| {
            config.delivery.schedule = "400ms,400ms,400ms,400ms".parse().unwrap();
        })
        .await;
    let receiver = Receiver::start().await;
    let owner = Uuid::now_v7();
    let token = stack.token_for(owner, "flaky-owner");
    receiver
        .behave("flaky", json!({ "statuses": [500, 500, 500], "then": 200 }))
        .await;
    let (endpoint, secret) = register(
        &webhooks,
        &token,
        json!({ "url": receiver.url("flaky"), "event_types": ["video.failed"] }),
    )
    .await;
    queue_ready(&stack).await;

    let (event_id, body) = publish(&stack, failed(owner, "not a video")).await;
    let log = receiver
        .wait("flaky", &[&secret], 4, Duration::from_secs(20))
        .await;
    let statuses: Vec<i64> = log.iter().map(|d| d["status"].as_i64().unwrap()).collect();
    assert_eq!(statuses, [500, 500, 500, 200]);
    for delivery in &log {
        assert_eq!(
            delivery["id"],
            event_id.to_string(),
            "the same webhook-id each time"
        );
        assert_eq!(delivery["verified"], true, "{delivery}");
    }
    // Backoff: each retry came no sooner than the schedule's pause less its jitter.
    for pair in log.windows(2) {
        let gap =
            pair[1]["received_at"].as_f64().unwrap() - pair[0]["received_at"].as_f64().unwrap();
        assert!(gap >= 0.3, "retried after {gap} s");
    }

    // The log says the same: four attempts, delivered.
    let path = format!("/webhooks/endpoints/{endpoint}/deliveries");
    let delivered = testkit::wait_for("the log to settle", Duration::from_secs(10), || async {
        let (_, page) = api(&webhooks, Some(&token), Method::GET, &path, None).await;
        (page["items"][0]["state"] == "delivered").then_some(page)
    })
    .await;
    let item = &delivered["items"][0];
    assert_eq!(item["attempts"], 4);
    assert_eq!(item["message_id"], event_id.to_string());
    assert_eq!(item["last_status"], 200);
    let (status, detail) = api(
        &webhooks,
        Some(&token),
        Method::GET,
        &format!("{path}/{}", item["id"]),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let attempts: Vec<Value> = detail["attempt_log"].as_array().unwrap().clone();
    let statuses: Vec<i64> = attempts
        .iter()
        .map(|a| a["status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, [500, 500, 500, 200]);
    assert!(attempts[0]["error"].as_str().unwrap().contains("500"));
    assert_eq!(attempts[3]["response"], r#"{"received": true}"#);

    // The same event again (RabbitMQ redelivers after a crash): not delivered again.
    publish_raw(&stack, "video.failed", &body).await;
    // A later event goes through; the redelivered one, published before it, never does.
    let (later, _) = publish(&stack, failed(owner, "again")).await;
    let log = receiver
        .wait("flaky", &[&secret], 5, Duration::from_secs(10))
        .await;
    assert_eq!(log[4]["id"], later.to_string());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.log("flaky", &[]).await.len(), 5, "delivered once");

    // Replay: the same id and body again, one more attempt in the log.
    let (status, _) = api(
        &webhooks,
        Some(&token),
        Method::POST,
        &format!("{path}/{}/replay", item["id"]),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let log = receiver
        .wait("flaky", &[&secret], 6, Duration::from_secs(10))
        .await;
    assert_eq!(log[5]["id"], event_id.to_string());
    assert_eq!(log[5]["verified"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hanging_endpoint_is_cut_off_and_retried_while_others_get_theirs_on_time() {
    let stack = Stack::start().await;
    let webhooks = stack
        .start_webhooks(|config| {
            config.delivery.timeout = Duration::from_secs(1);
            config.delivery.schedule = "200ms".parse().unwrap();
            config.delivery.endpoint_concurrency = 2;
        })
        .await;
    let receiver = Receiver::start().await;
    let (slow_owner, fast_owner) = (Uuid::now_v7(), Uuid::now_v7());
    receiver
        .behave(
            "slow",
            json!({ "statuses": [200, 200, 200, 200], "then": 200, "delay_ms": 5000 }),
        )
        .await;
    let (slow_endpoint, _) = register(
        &webhooks,
        &stack.token_for(slow_owner, "slow"),
        json!({ "url": receiver.url("slow"), "event_types": ["video.failed"] }),
    )
    .await;
    let (_, fast_secret) = register(
        &webhooks,
        &stack.token_for(fast_owner, "fast"),
        json!({ "url": receiver.url("fast"), "event_types": ["video.failed"] }),
    )
    .await;
    queue_ready(&stack).await;

    // Ten events for the hanging endpoint first, then one for the other every 100 ms.
    for _ in 0..10 {
        publish(&stack, failed(slow_owner, "slow")).await;
    }
    let mut sent = Vec::new();
    for n in 0..10 {
        publish(&stack, failed(fast_owner, &format!("fast {n}"))).await;
        sent.push(Instant::now());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = receiver
        .wait("fast", &[&fast_secret], 10, Duration::from_secs(10))
        .await;
    assert!(log.iter().all(|d| d["verified"] == true));
    // Each arrived within a second of its event, whatever the other endpoint was doing.
    let epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let now = Instant::now();
    for (delivery, published) in log.iter().zip(&sent) {
        let published_at = epoch - now.duration_since(*published).as_secs_f64();
        let waited = delivery["received_at"].as_f64().unwrap() - published_at;
        assert!(waited < 1.0, "a delivery waited {waited} s: {delivery}");
    }
    // The hanging endpoint: every attempt cut off at the timeout, then retried.
    let path = format!("/webhooks/endpoints/{slow_endpoint}/deliveries?state=failed");
    let token = stack.token_for(slow_owner, "slow");
    let page = testkit::wait_for(
        "the slow deliveries to fail",
        Duration::from_secs(30),
        || async {
            let (_, page) = api(&webhooks, Some(&token), Method::GET, &path, None).await;
            (page["items"].as_array().unwrap().len() == 10).then_some(page)
        },
    )
    .await;
    for item in page["items"].as_array().unwrap() {
        assert_eq!(item["attempts"], 2, "{item}");
        assert!(
            item["last_error"]
                .as_str()
                .unwrap()
                .contains("no answer within 1 s"),
            "{item}"
        );
        assert!(item["last_duration_ms"].as_i64().unwrap() < 1500, "{item}");
    }
    // At most two at a time went to it (WEBHOOK_ENDPOINT_CONCURRENCY): a third attempt
    // starts only when one of two is cut off, 1 s after it was sent. The receiver stamps
    // an attempt when it arrives, which on a loaded machine can be a few hundred ms after
    // it was sent (a CI run saw 0.86 s between the first and third of a window), so the
    // bound is half the timeout: with a third slot, three would arrive at once.
    let slow = receiver.log("slow", &[]).await;
    let mut starts: Vec<f64> = slow
        .iter()
        .map(|d| d["received_at"].as_f64().unwrap())
        .collect();
    starts.sort_by(f64::total_cmp);
    for window in starts.windows(3) {
        assert!(
            window[2] - window[0] > 0.5,
            "three attempts within a timeout: {starts:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gone_disables_the_endpoint_and_redirects_are_never_followed() {
    let stack = Stack::start().await;
    let webhooks = stack.start_webhooks(|_| {}).await;
    let receiver = Receiver::start().await;
    let owner = Uuid::now_v7();
    let token = stack.token_for(owner, "gone");
    receiver.behave("gone", json!({ "then": 410 })).await;
    receiver
        .behave(
            "bounce",
            json!({ "then": 302, "location": receiver.url("inside") }),
        )
        .await;
    let (gone, _) = register(
        &webhooks,
        &token,
        json!({ "url": receiver.url("gone"), "event_types": ["video.failed"] }),
    )
    .await;
    let (bounce, _) = register(
        &webhooks,
        &token,
        json!({ "url": receiver.url("bounce"), "event_types": ["video.failed"] }),
    )
    .await;
    queue_ready(&stack).await;
    // What the owner's notification will be made from.
    let mut announcements = events::tap::Tap::bind(
        &stack.env.amqp_url,
        "e2e-webhook-events",
        [(
            events::topology::WEBHOOK_EVENTS,
            stack.namespace().routing_key("webhook.endpoint_disabled"),
        )],
    )
    .await
    .unwrap();
    publish(&stack, failed(owner, "first")).await;

    let endpoint = testkit::wait_for("the endpoint disabled", Duration::from_secs(10), || async {
        let (_, endpoint) = api(
            &webhooks,
            Some(&token),
            Method::GET,
            &format!("/webhooks/endpoints/{gone}"),
            None,
        )
        .await;
        (endpoint["enabled"] == false).then_some(endpoint)
    })
    .await;
    assert!(
        endpoint["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("410")
    );
    let announced = tokio::time::timeout(Duration::from_secs(10), announcements.next_json())
        .await
        .expect("webhook.endpoint_disabled announced")
        .unwrap();
    assert_eq!(announced["type"], "webhook.endpoint_disabled");
    assert_eq!(announced["data"]["endpoint_id"], gone.as_str());
    assert_eq!(announced["data"]["owner_id"], owner.to_string());
    assert!(
        announced["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("410")
    );
    // The redirect was an attempt that failed (and will be retried), not followed.
    let path = format!("/webhooks/endpoints/{bounce}/deliveries");
    let page = testkit::wait_for("the redirect attempt", Duration::from_secs(10), || async {
        let (_, page) = api(&webhooks, Some(&token), Method::GET, &path, None).await;
        (page["items"][0]["last_status"] == 302).then_some(page)
    })
    .await;
    assert_eq!(page["items"][0]["state"], "pending");
    assert!(receiver.log("inside", &[]).await.is_empty());

    // A disabled endpoint gets nothing more, and cannot be replayed until enabled.
    publish(&stack, failed(owner, "second")).await;
    receiver
        .wait("bounce", &[], 2, Duration::from_secs(10))
        .await;
    assert_eq!(receiver.log("gone", &[]).await.len(), 1);
    let (status, problem) = api(
        &webhooks,
        Some(&token),
        Method::POST,
        &format!("/webhooks/endpoints/{gone}/replay"),
        Some(json!({ "since": "2020-01-01T00:00:00Z" })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    // Enabled again, with the receiver fixed: replaying the failures delivers them.
    receiver.behave("gone", json!({ "then": 200 })).await;
    let (status, endpoint) = api(
        &webhooks,
        Some(&token),
        Method::PATCH,
        &format!("/webhooks/endpoints/{gone}"),
        Some(json!({ "enabled": true })),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(endpoint["disabled_reason"], Value::Null);
    let (status, replayed) = api(
        &webhooks,
        Some(&token),
        Method::POST,
        &format!("/webhooks/endpoints/{gone}/replay"),
        Some(json!({ "since": "2020-01-01T00:00:00Z" })),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        replayed["replayed"], 1,
        "only the first event was meant for it"
    );
    let log = receiver.wait("gone", &[], 2, Duration::from_secs(10)).await;
    assert_eq!(log[0]["id"], log[1]["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn private_and_loopback_addresses_are_refused_without_the_test_flag() {
    let stack = Stack::start().await;
    let webhooks = stack
        .start_webhooks(|config| config.delivery.allow_private = false)
        .await;
    let token = stack.token_for(Uuid::now_v7(), "careful");
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:8080/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
    ] {
        let (status, problem) = api(
            &webhooks,
            Some(&token),
            Method::POST,
            "/webhooks/endpoints",
            Some(json!({ "url": url, "event_types": ["video.ready"] })),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains("non-public"),
            "{problem}"
        );
    }
    let (_, list) = api(
        &webhooks,
        Some(&token),
        Method::GET,
        "/webhooks/endpoints",
        None,
    )
    .await;
    assert_eq!(list["items"], json!([]), "nothing was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_rotation_both_secrets_verify_until_the_overlap_ends() {
    let stack = Stack::start().await;
    let webhooks = stack.start_webhooks(|_| {}).await;
    let receiver = Receiver::start().await;
    let owner = Uuid::now_v7();
    let token = stack.token_for(owner, "rotator");
    let (endpoint, first) = register(
        &webhooks,
        &token,
        json!({ "url": receiver.url("rotating"), "event_types": ["video.failed"] }),
    )
    .await;
    queue_ready(&stack).await;
    let rotate = |overlap: u64| {
        let (webhooks, token, endpoint) = (&webhooks, token.clone(), endpoint.clone());
        async move {
            let (status, rotated) = api(
                webhooks,
                Some(&token),
                Method::POST,
                &format!("/webhooks/endpoints/{endpoint}/secret"),
                Some(json!({ "overlap_seconds": overlap })),
            )
            .await;
            assert_eq!(status, 200, "{rotated}");
            rotated["secret"].as_str().unwrap().to_owned()
        }
    };
    let second = rotate(3600).await;
    assert_ne!(first, second);
    publish(&stack, failed(owner, "during the overlap")).await;
    receiver
        .wait("rotating", &[], 1, Duration::from_secs(10))
        .await;
    for secret in [&first, &second] {
        let log = receiver.log("rotating", &[secret]).await;
        assert_eq!(log[0]["verified"], true, "{log:?}");
    }
    assert_eq!(
        log_signatures(&receiver.log("rotating", &[]).await[0]),
        2,
        "one signature per valid secret"
    );

    // Rotated again without overlap: only the newest secret verifies.
    let third = rotate(0).await;
    publish(&stack, failed(owner, "after the overlap")).await;
    receiver
        .wait("rotating", &[], 2, Duration::from_secs(10))
        .await;
    assert_eq!(
        receiver.log("rotating", &[&third]).await[1]["verified"],
        true
    );
    assert_eq!(
        receiver.log("rotating", &[&second]).await[1]["verified"],
        false
    );
    assert_eq!(
        receiver.log("rotating", &[&first]).await[1]["verified"],
        false
    );
}

fn log_signatures(delivery: &Value) -> usize {
    delivery["signature"].as_str().unwrap().split(' ').count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_owners_see_and_change_endpoints_and_bad_input_changes_nothing() {
    let stack = Stack::start().await;
    let webhooks = stack.start_webhooks(|_| {}).await;
    let (owner, other) = (Uuid::now_v7(), Uuid::now_v7());
    let (token, other_token) = (
        stack.token_for(owner, "owner"),
        stack.token_for(other, "other"),
    );
    let (endpoint, _) = register(
        &webhooks,
        &token,
        json!({ "url": "http://127.0.0.1:9/hook", "event_types": ["video.ready"], "description": "mine" }),
    )
    .await;
    let path = format!("/webhooks/endpoints/{endpoint}");

    // Anonymous: the gateway refuses every webhooks route.
    let (status, _) = api(&webhooks, None, Method::GET, "/webhooks/endpoints", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Someone else: as if it did not exist, and nothing changes.
    for (method, suffix, body) in [
        (Method::GET, "", None),
        (Method::PATCH, "", Some(json!({ "description": "theirs" }))),
        (Method::DELETE, "", None),
        (Method::POST, "/secret", None),
        (Method::GET, "/deliveries", None),
        (
            Method::POST,
            "/replay",
            Some(json!({ "since": "2020-01-01T00:00:00Z" })),
        ),
    ] {
        let (status, _) = api(
            &webhooks,
            Some(&other_token),
            method.clone(),
            &format!("{path}{suffix}"),
            body,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {suffix}");
    }
    let (_, theirs) = api(
        &webhooks,
        Some(&other_token),
        Method::GET,
        "/webhooks/endpoints",
        None,
    )
    .await;
    assert_eq!(theirs["items"], json!([]));
    // Platform-wide endpoints are for admins.
    let (status, _) = api(
        &webhooks,
        Some(&token),
        Method::POST,
        "/webhooks/endpoints",
        Some(json!({ "url": "http://127.0.0.1:9/x", "event_types": ["user.deleted"], "scope": "platform" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Bad input: 400 problem+json, and the endpoint is as it was.
    for body in [
        json!({ "event_types": ["video.exploded"] }),
        json!({ "event_types": [] }),
        json!({ "url": "ftp://example.com/x" }),
        json!({ "url": "https://user:pw@example.com/x" }),
        json!({ "description": "x".repeat(501) }),
        json!({ "colour": "blue" }),
    ] {
        let (status, problem) = api(
            &webhooks,
            Some(&token),
            Method::PATCH,
            &path,
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {problem}");
    }
    let (status, problem) = api(
        &webhooks,
        Some(&token),
        Method::POST,
        "/webhooks/endpoints",
        Some(json!({ "url": "http://127.0.0.1:9/x" })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let (status, problem) = api(
        &webhooks,
        Some(&token),
        Method::GET,
        &format!("{path}/deliveries?limit=0"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let (status, _) = api(
        &webhooks,
        Some(&token),
        Method::GET,
        "/webhooks/endpoints/not-a-uuid",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, mine) = api(&webhooks, Some(&token), Method::GET, &path, None).await;
    assert_eq!(mine["description"], "mine");
    assert_eq!(mine["event_types"], json!(["video.ready"]));
    assert_eq!(mine["url"], "http://127.0.0.1:9/hook");
    assert!(mine.get("secret").is_none(), "the secret is shown once");

    // The owner's changes and deletion.
    let (status, changed) = api(
        &webhooks,
        Some(&token),
        Method::PATCH,
        &path,
        Some(json!({ "description": "renamed", "event_types": ["video.ready", "video.failed"] })),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(changed["description"], "renamed");
    assert_eq!(
        changed["event_types"],
        json!(["video.ready", "video.failed"])
    );
    let (status, _) = api(&webhooks, Some(&token), Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api(&webhooks, Some(&token), Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deliveries_pending_when_the_worker_is_killed_are_delivered_after_it_restarts() {
    let stack = Stack::start().await;
    let config = stack.webhooks_config();
    let receiver = Receiver::start().await;
    let owner = Uuid::now_v7();
    // The receiver holds every answer for 3 s: deliveries are in flight when the kill comes.
    receiver
        .behave(
            "patient",
            json!({ "statuses": [200, 200, 200, 200, 200], "then": 200, "delay_ms": 3000 }),
        )
        .await;
    let env = |config: &webhooks::Config| -> Vec<(&'static str, String)> {
        vec![
            ("DATABASE_URL", config.postgres.url.clone()),
            ("AMQP_URL", config.amqp_url.clone()),
            ("QUEUE_PREFIX", config.queue_prefix.clone()),
            ("QUEUE_EXPIRES_SECS", "60".into()),
            ("WEBHOOK_ALLOW_PRIVATE", "true".into()),
            ("WEBHOOK_TIMEOUT_SECS", "5".into()),
            ("WEBHOOK_POLL_MILLIS", "100".into()),
        ]
    };
    let binary = e2e::service_binary("webhooks");
    let first =
        testkit::process::ServiceProcess::start(binary.to_str().unwrap(), &env(&config)).await;
    e2e::wait_ready(first.addr).await;
    let gateway = testkit::gateway::Gateway::start(testkit::gateway::Upstreams {
        auth: Some(stack.auth_addr.to_string()),
        webhooks: Some(first.addr.to_string()),
        ..Default::default()
    })
    .await;
    let token = stack.token_for(owner, "patient");
    let response = Client::new()
        .post(format!("{}/webhooks/endpoints", gateway.base))
        .bearer_auth(&token)
        .json(&json!({ "url": receiver.url("patient"), "event_types": ["video.failed"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let secret = response.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    queue_ready(&stack).await;
    let mut events = Vec::new();
    for n in 0..5 {
        events.push(
            publish(&stack, failed(owner, &format!("event {n}")))
                .await
                .0,
        );
    }
    // Every delivery is in flight (the receiver got it and is holding its answer).
    receiver
        .wait("patient", &[&secret], 5, Duration::from_secs(10))
        .await;
    first.signal("KILL");
    drop(first);

    // A new process on the same database: the leases run out and each is sent again.
    let second =
        testkit::process::ServiceProcess::start(binary.to_str().unwrap(), &env(&config)).await;
    e2e::wait_ready(second.addr).await;
    let log = receiver
        .wait("patient", &[&secret], 10, Duration::from_secs(60))
        .await;
    let mut ids: Vec<String> = log
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let mut expected: Vec<String> = events
        .iter()
        .flat_map(|id| [id.to_string(), id.to_string()])
        .collect();
    expected.sort();
    assert_eq!(ids, expected, "each event again, under the same id");
    assert!(log.iter().all(|d| d["verified"] == true));
    let db = sqlx::PgPool::connect(&config.postgres.url).await.unwrap();
    let delivered = testkit::wait_for(
        "every delivery recorded",
        Duration::from_secs(20),
        || async {
            let n: i64 =
                sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE state = 'delivered'")
                    .fetch_one(&db)
                    .await
                    .ok()?;
            (n == 5).then_some(n)
        },
    )
    .await;
    assert_eq!(delivered, 5);
    drop(second);
}
