//! Watch history and resume through the gateway: a viewer who watched 60 % of a video
//! finds it in `continueWatching` at that position; one who finished it no longer gets it
//! in `recommended` (which another viewer still does); private videos drop out and come
//! back; remove-one, clear-all and pause; anonymous callers and bad positions refused.

use std::time::Duration;

use e2e::Stack;
use events::video::VideoMetadata;
use serde_json::{Value, json};
use uuid::Uuid;

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}

const ENTRIES: &str = "edges { node { position finished video { id } } }";

/// (video id, position, finished) of `continueWatching` or `history`.
async fn entries(stack: &Stack, token: &str, field: &str) -> Vec<(String, f64, bool)> {
    let data = stack
        .graphql_ok(
            Some(token),
            &format!("{{ {field}(first: 50) {{ {ENTRIES} }} }}"),
            json!({}),
        )
        .await;
    data[field]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let n = &e["node"];
            (
                n["video"]["id"].as_str().unwrap().to_owned(),
                n["position"].as_f64().unwrap(),
                n["finished"].as_bool().unwrap(),
            )
        })
        .collect()
}

async fn watch(stack: &Stack, token: &str, video: Uuid, position: f64) -> Value {
    stack
        .graphql(
            Some(token),
            "mutation($v: ID!, $p: Float) { recordWatchTime(videoId: $v, seconds: 10, position: $p) }",
            json!({ "v": video, "p": position }),
        )
        .await
}

async fn recommended(stack: &Stack, token: Option<&str>) -> Vec<String> {
    let data = stack
        .graphql_ok(token, "{ recommended(first: 10) { id } }", json!({}))
        .await;
    data["recommended"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn viewers_resume_where_they_left_and_finished_videos_leave_their_feed() {
    // No recommender: `recommended` is trending, which both videos will be in, so what
    // leaves the feed is left out by the viewer's history alone.
    let stack = Stack::start_without_recommender().await;
    stack.start_ranker(stack.ranker_config()).await;
    let owner_id = Uuid::now_v7();
    let owner = stack.token_for(owner_id, "owner");
    let mut videos = Vec::new();
    for title in ["Long talk", "Short film"] {
        let metadata = VideoMetadata {
            title: title.into(),
            ..Default::default()
        };
        videos.push(stack.publish_video_lasting(owner_id, metadata, 100.0).await);
    }
    let (talk, film) = (videos[0], videos[1]);
    for &v in &videos {
        stack.wait_video_ready(None, v).await;
    }
    let viewer = stack.token_for(Uuid::now_v7(), "viewer");
    let someone = stack.token_for(Uuid::now_v7(), "someone");
    testkit::wait_for("both videos trending", Duration::from_secs(30), || async {
        for &v in &videos {
            stack
                .graphql(
                    Some(&someone),
                    "mutation($v: ID!) { recordView(videoId: $v) }",
                    json!({ "v": v }),
                )
                .await;
        }
        (recommended(&stack, Some(&viewer)).await.len() == 2).then_some(())
    })
    .await;

    // 60 % of the talk; the film to its last seconds.
    assert_eq!(
        watch(&stack, &viewer, talk, 60.0).await["data"]["recordWatchTime"],
        true
    );
    assert_eq!(
        watch(&stack, &viewer, film, 97.0).await["data"]["recordWatchTime"],
        true
    );
    assert_eq!(
        entries(&stack, &viewer, "continueWatching").await,
        [(talk.to_string(), 60.0, false)]
    );
    assert_eq!(
        entries(&stack, &viewer, "history").await,
        [
            (film.to_string(), 97.0, true),
            (talk.to_string(), 60.0, false)
        ]
    );
    assert_eq!(recommended(&stack, Some(&viewer)).await, [talk.to_string()]);
    assert_eq!(recommended(&stack, Some(&someone)).await.len(), 2);
    // A position past the end counts as the end.
    watch(&stack, &viewer, talk, 250.0).await;
    assert_eq!(entries(&stack, &viewer, "continueWatching").await, []);
    assert!(recommended(&stack, Some(&viewer)).await.is_empty());
    // Watching again from earlier on makes it unfinished again.
    watch(&stack, &viewer, talk, 30.0).await;
    assert_eq!(
        entries(&stack, &viewer, "continueWatching").await,
        [(talk.to_string(), 30.0, false)]
    );

    // The owner makes the talk private: it leaves the viewer's lists, and comes back.
    let set_visibility = |visibility: &'static str| {
        let owner = owner.clone();
        let stack = &stack;
        async move {
            stack
                .graphql_ok(
                    Some(&owner),
                    &format!(
                        "mutation($v: ID!) {{ updateVideo(id: $v, input: {{ visibility: {visibility} }}) {{ id }} }}"
                    ),
                    json!({ "v": talk }),
                )
                .await;
        }
    };
    set_visibility("PRIVATE").await;
    assert_eq!(entries(&stack, &viewer, "continueWatching").await, []);
    assert_eq!(entries(&stack, &viewer, "history").await.len(), 1);
    set_visibility("PUBLIC").await;
    assert_eq!(entries(&stack, &viewer, "continueWatching").await.len(), 1);

    // Paused, nothing is recorded (and the position kept does not move).
    let paused = stack
        .graphql_ok(
            Some(&viewer),
            "mutation { setHistoryPaused(paused: true) }",
            json!({}),
        )
        .await;
    assert_eq!(paused["setHistoryPaused"], true);
    watch(&stack, &viewer, talk, 45.0).await;
    let other = stack
        .publish_video(owner_id, VideoMetadata::default())
        .await;
    stack.wait_video_ready(None, other).await;
    watch(&stack, &viewer, other, 5.0).await;
    assert_eq!(
        entries(&stack, &viewer, "continueWatching").await,
        [(talk.to_string(), 30.0, false)]
    );
    let data = stack
        .graphql_ok(Some(&viewer), "{ historyPaused }", json!({}))
        .await;
    assert_eq!(data["historyPaused"], true);
    stack
        .graphql_ok(
            Some(&viewer),
            "mutation { setHistoryPaused(paused: false) }",
            json!({}),
        )
        .await;
    watch(&stack, &viewer, other, 5.0).await;
    assert_eq!(entries(&stack, &viewer, "history").await.len(), 3);

    // Remove one (twice: the second finds nothing), then clear the rest.
    let remove = "mutation($v: ID!) { removeFromHistory(videoId: $v) }";
    let data = stack
        .graphql_ok(Some(&viewer), remove, json!({ "v": film }))
        .await;
    assert_eq!(data["removeFromHistory"], true);
    let data = stack
        .graphql_ok(Some(&viewer), remove, json!({ "v": film }))
        .await;
    assert_eq!(data["removeFromHistory"], false);
    let left: Vec<String> = entries(&stack, &viewer, "history")
        .await
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(left, [other.to_string(), talk.to_string()]);
    let data = stack
        .graphql_ok(Some(&viewer), "mutation { clearHistory }", json!({}))
        .await;
    assert_eq!(data["clearHistory"], 2);
    assert_eq!(entries(&stack, &viewer, "history").await, []);
    // The film is in the feed again once out of the history.
    assert!(
        recommended(&stack, Some(&viewer))
            .await
            .contains(&film.to_string())
    );
}

#[tokio::test]
async fn anonymous_callers_and_bad_positions_are_refused_and_change_nothing() {
    let stack = Stack::start().await;
    let video = stack
        .publish_video(Uuid::now_v7(), VideoMetadata::default())
        .await;
    stack.wait_video_ready(None, video).await;
    let viewer = stack.token_for(Uuid::now_v7(), "viewer");
    watch(&stack, &viewer, video, 4.0).await;

    for query in [
        "{ history { edges { cursor } } }",
        "{ continueWatching { edges { cursor } } }",
        "{ historyPaused }",
        "mutation { clearHistory }",
        "mutation { setHistoryPaused(paused: true) }",
    ] {
        let body = stack.graphql(None, query, json!({})).await;
        assert_eq!(code(&body), "UNAUTHENTICATED", "{query}: {body}");
    }
    let body = stack
        .graphql(
            None,
            "mutation($v: ID!) { removeFromHistory(videoId: $v) }",
            json!({ "v": video }),
        )
        .await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    for position in [-1.0, 1e12] {
        let body = watch(&stack, &viewer, video, position).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    }
    let body = watch(&stack, &viewer, Uuid::now_v7(), 1.0).await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    let body = stack
        .graphql(
            Some(&viewer),
            "{ history(after: \"garbage\") { edges { cursor } } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    // Nothing changed.
    assert_eq!(
        entries(&stack, &viewer, "continueWatching").await,
        [(video.to_string(), 4.0, false)]
    );
}
