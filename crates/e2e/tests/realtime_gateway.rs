//! Live updates as a browser gets them: the graphql-ws npm client, through the gateway
//! (Caddy with its ForwardAuth hop), with the token in `connection_init`. An upload's
//! transcoding progress arrives as it happens, then a comment posted by someone else.

mod video_common;

use std::time::Duration;

use e2e::{
    Stack,
    ws::{graphql_ws, graphql_ws_refusal, graphql_ws_results as results},
};
use serde_json::json;
use video_common::{generate_video, scratch, user};

/// Waits until media's hub watches `n` channels (the client's subscription is live).
async fn subscribed(stack: &Stack, n: usize) {
    testkit::wait_for("subscription live", Duration::from_secs(20), || async {
        (stack.media.realtime.hub.stats().channels >= n).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_browser_client_follows_its_upload_and_the_comments_through_the_gateway() {
    let stack = Stack::start().await;
    stack.start_transcoder().await;
    let (_, token) = user(&stack, "uploader").await;
    let (_, commenter) = user(&stack, "commenter").await;
    let file = scratch(&stack).join("live.mp4");
    generate_video(&file, "320x240", 4, "300k", false);
    let bytes = std::fs::read(&file).unwrap();

    // Create the upload (tus), so the video has an id to follow before any byte arrives.
    let http = reqwest::Client::new();
    let created = http
        .post(stack.url("/video/upload"))
        .bearer_auth(&token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", bytes.len().to_string())
        .header("Upload-Metadata", "title bGl2ZQ==") // "live"
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let video = location.rsplit('/').next().unwrap().to_owned();

    let progress = graphql_ws(
        &stack,
        "subscription($v: ID!) { uploadProgress(videoId: $v) { stage percent } }",
        json!({ "v": video }),
        Some(&token),
        usize::MAX,
    );
    subscribed(&stack, 1).await;

    let patched = http
        .patch(stack.url(&location))
        .bearer_auth(&token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", "0")
        .header("Content-Type", "application/offset+octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 204);

    // Progress to the end, never backwards; the server completes the subscription.
    let updates = results(progress).await;
    let stages: Vec<&str> = updates
        .iter()
        .map(|u| u["data"]["uploadProgress"]["stage"].as_str().unwrap())
        .collect();
    assert_eq!(stages.last(), Some(&"ready"), "{updates:?}");
    assert!(stages.contains(&"transcoding"), "{stages:?}");
    let percents: Vec<f64> = updates
        .iter()
        .map(|u| u["data"]["uploadProgress"]["percent"].as_f64().unwrap())
        .collect();
    assert!(percents.windows(2).all(|w| w[0] <= w[1]), "{percents:?}");

    // Now public and ready: an anonymous browser watches its comments.
    testkit::wait_for(
        "ready in the catalogue",
        Duration::from_secs(30),
        || async {
            let data = stack
                .graphql_ok(
                    None,
                    "query($id: ID!) { video(id: $id) { status } }",
                    json!({ "id": video }),
                )
                .await;
            (data["video"]["status"] == "READY").then_some(())
        },
    )
    .await;
    let comments = graphql_ws(
        &stack,
        "subscription($v: ID!) { commentEvents(videoId: $v) { kind comment { body author { username } } } }",
        json!({ "v": video }),
        None,
        1,
    );
    subscribed(&stack, 1).await;
    stack
        .graphql_ok(
            Some(&commenter),
            "mutation($v: ID!) { addComment(videoId: $v, body: \"first!\") { id } }",
            json!({ "v": video }),
        )
        .await;
    let events = results(comments).await;
    assert_eq!(
        events,
        vec![json!({ "data": { "commentEvents": {
            "kind": "ADDED", "comment": { "body": "first!", "author": { "username": "commenter" } }
        } } })]
    );

    // A revoked token cannot open a subscription through the gateway either.
    stack.logout(&commenter).await;
    let refused = graphql_ws(
        &stack,
        "subscription($v: ID!) { videoStats(videoId: $v) { likeCount } }",
        json!({ "v": video }),
        Some(&commenter),
        1,
    );
    let stderr = graphql_ws_refusal(refused).await;
    assert!(stderr.contains("4403"), "{stderr}");
}
