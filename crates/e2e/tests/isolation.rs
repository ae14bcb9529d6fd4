//! Stacks that share one broker never see each other: the test suite beside a running
//! `deploy/local/up`, and parallel tests beside each other.
//!
//! Every service of a stack publishes its events under the stack's `QUEUE_PREFIX`
//! (events::Namespace) and its queues bind only that prefix. Here stack A does what users
//! do — registers, uploads with tuspy through the gateway, gets its video transcoded, likes
//! and comments, views, deletes the account — while stack B runs on the same broker and a
//! tap is bound exactly as a platform without a prefix binds its queues. A's own tap sees
//! A's events (so the checks below could fail); neither B's catalogue nor the platform's
//! bindings receive any of them.

mod video_common;

use std::time::Duration;

use e2e::Stack;
use events::{
    Namespace, interaction,
    tap::Tap,
    topology::{INTERACTIONS, USER_EVENTS, VIDEO_EVENTS},
    user::UserEventKind,
    video::VideoEventKind,
};
use reqwest::Client;
use serde_json::{Value, json};
use video_common::*;

/// Every binding a stack under `namespace` makes for the events other services publish:
/// all video and user event types and every interaction.
fn bindings_of(namespace: &Namespace) -> Vec<(&'static str, String)> {
    let video = VideoEventKind::ALL.map(|k| (VIDEO_EVENTS, namespace.routing_key(k.routing_key())));
    let user = UserEventKind::ALL.map(|k| (USER_EVENTS, namespace.routing_key(k.routing_key())));
    let mut all: Vec<_> = video.into_iter().chain(user).collect();
    all.push((INTERACTIONS, interaction::binding(namespace.prefix())));
    all
}

/// Whether `event` is about `video` or `user` (as video id, owner, user or viewer).
fn mentions(event: &Value, video: &str, user: &str) -> bool {
    let data = &event["data"];
    data["video_id"] == video
        || data["user_id"] == user
        || data["owner_id"] == user
        || data["viewer"].as_str().is_some_and(|v| v.contains(user))
}

/// The events in a message: one envelope, or a pack of them (events::pack).
fn unpack(message: Value) -> Vec<Value> {
    match message {
        Value::Array(envelopes) => envelopes,
        envelope => vec![envelope],
    }
}

/// The events `tap` receives until it has been quiet for `quiet`.
async fn drain(tap: &mut Tap, quiet: Duration) -> Vec<Value> {
    let mut seen = Vec::new();
    while let Ok(Some(message)) = tokio::time::timeout(quiet, tap.next_json()).await {
        seen.extend(unpack(message));
    }
    seen
}

#[tokio::test]
async fn a_stack_reaches_neither_a_running_platform_nor_another_stack_on_the_same_broker() {
    let a = Stack::start().await;
    a.start_transcoder().await;
    let b = Stack::start().await;
    let amqp = a.env.amqp_url.clone();
    let mut platform = Tap::bind(&amqp, "e2e-platform", bindings_of(&Namespace::new("")))
        .await
        .unwrap();
    let mut own = Tap::bind(&amqp, "e2e-stack-a", bindings_of(&a.namespace()))
        .await
        .unwrap();

    // A's user uploads a real video through A's gateway and it becomes ready.
    let (user, token) = user(&a, "isolated").await;
    let file = scratch(&a).join("source.mp4");
    generate_video(&file, "320x240", 2, "300k", false);
    let report = tus(&a, &token, &file, 1 << 20, &["--meta", "title=Isolated"]).await;
    let video = video_id(report["url"].as_str().unwrap());
    wait_for_status(&a, &video, &token, "ready", Duration::from_secs(60)).await;
    a.wait_video_ready(Some(&token), video.parse().unwrap())
        .await;

    // Interactions and an account deletion: every other kind of event A publishes.
    let liked = a
        .graphql(
            Some(&token),
            "mutation($v: ID!) { likeVideo(videoId: $v) { id } \
             addComment(videoId: $v, body: \"only here\") { id } \
             recordView(videoId: $v) }",
            json!({ "v": video }),
        )
        .await;
    assert!(liked["errors"].is_null(), "{liked}");
    let deleted = Client::new()
        .delete(a.url("/user/profile"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);

    // A saw its own events: created, uploaded, progress, ready, its interactions, the
    // account's deletion and the video's (the erasure).
    let expected = [
        "video.created",
        "video.uploaded",
        "video.progress",
        "video.ready",
        "interaction",
        "user.deleted",
        "video.deleted",
    ];
    let mut types: Vec<String> = Vec::new();
    let collect = async {
        while !expected.iter().all(|t| types.iter().any(|seen| seen == t)) {
            let message = own.next_json().await.expect("the tap open");
            for event in unpack(message) {
                if mentions(&event, &video, &user) {
                    types.push(event["type"].as_str().unwrap_or_default().to_owned());
                }
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(60), collect)
        .await
        .is_err()
    {
        panic!("A's own tap saw only {types:?}, not all of {expected:?}");
    }

    // The platform's bindings got nothing of A's.
    let leaked: Vec<Value> = drain(&mut platform, Duration::from_secs(3))
        .await
        .into_iter()
        .filter(|e| mentions(e, &video, &user))
        .collect();
    assert!(
        leaked.is_empty(),
        "reached an unprefixed platform: {leaked:?}"
    );

    // B's catalogue never heard of A's video: no row, not even a tombstone, and an empty
    // feed.
    let b_media = sqlx::PgPool::connect(&format!("{}_media", b.env.database_url))
        .await
        .unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM videos WHERE id = $1::uuid")
        .bind(&video)
        .fetch_one(&b_media)
        .await
        .unwrap();
    assert_eq!(rows, 0, "B's catalogue has A's video");
    let feed = b
        .graphql(
            None,
            "{ feed(first: 50) { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(feed["data"]["feed"]["edges"], json!([]), "{feed}");
    b_media.close().await;
    platform.close().await;
    own.close().await;
}
