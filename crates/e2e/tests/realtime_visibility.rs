//! Live subscriptions follow the video's visibility: a video made private, deleted by its
//! owner, or deleted through the video service stops streaming to those who may no
//! longer see it — their `commentEvents` and `videoStats` end with a `NOT_FOUND` error
//! within a second — while its owner's subscriptions to their own private video go on.
//!
//! Clients are the graphql-ws npm client (what browsers run) through the gateway, which
//! routes WebSockets to replica A; the owner's changes are made on replica B, so the
//! change reaches A's subscribers through the Redis hub.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use e2e::Stack;
use events::video::{VideoDeleted, VideoMetadata, Visibility};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    sync::mpsc,
};
use uuid::Uuid;

const COMMENTS: &str =
    "subscription($v: ID!) { commentEvents(videoId: $v) { kind comment { body } } }";
const STATS: &str = "subscription($v: ID!) { videoStats(videoId: $v) { commentCount } }";
const ADD_COMMENT: &str =
    "mutation($v: ID!, $b: String!) { addComment(videoId: $v, body: $b) { id } }";

/// How long after the change a subscriber may still be streaming.
const WITHIN: Duration = Duration::from_secs(1);

/// What the graphql-ws client printed: a result (stdout), or why the operation failed
/// (stderr, `failed: <errors as JSON>`).
#[derive(Debug)]
enum Line {
    Result(Value),
    Failed(String),
}

/// One subscription run by `graphql_ws_client.cjs` through the gateway, read as it goes.
struct Client {
    _child: Child,
    lines: mpsc::UnboundedReceiver<Line>,
}

impl Client {
    fn start(stack: &Stack, query: &str, video: Uuid, token: &str) -> Self {
        let cache = std::env::var("KINO_CACHE_DIR").unwrap_or_else(|_| "/var/tmp/kino".into());
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/graphql_ws_client.cjs");
        let url = stack.url("/media/graphql/ws").replace("http://", "ws://");
        let mut child = Command::new("node")
            .arg(script)
            .args([
                url.as_str(),
                query,
                &json!({ "v": video }).to_string(),
                token,
            ])
            .env("NODE_PATH", format!("{cache}/node/node_modules"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node (deploy/local/deps installs graphql-ws)");
        let (tx, lines) = mpsc::unbounded_channel();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let results = tx.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stdout.next_line().await {
                let _ = results.send(Line::Result(serde_json::from_str(&line).unwrap()));
            }
        });
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                if let Some(failure) = line.strip_prefix("failed: ") {
                    let _ = tx.send(Line::Failed(failure.to_owned()));
                }
            }
        });
        Self {
            _child: child,
            lines,
        }
    }

    async fn next(&mut self, within: Duration) -> Option<Line> {
        tokio::time::timeout(within, self.lines.recv())
            .await
            .ok()
            .flatten()
    }

    /// The next result's data; panics on a failure or after 20 s.
    async fn data(&mut self) -> Value {
        match self.next(Duration::from_secs(20)).await {
            Some(Line::Result(result)) => {
                assert!(result.get("errors").is_none(), "{result}");
                result["data"].clone()
            }
            other => panic!("expected a result, got {other:?}"),
        }
    }

    /// Asserts the operation ends with exactly one `NOT_FOUND` error, by `deadline`.
    async fn ends_not_found(&mut self, deadline: Instant) {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.next(left).await {
            Some(Line::Failed(errors)) => {
                let errors: Value = serde_json::from_str(&errors)
                    .unwrap_or_else(|_| panic!("not a GraphQL error list: {errors}"));
                assert_eq!(errors.as_array().map(Vec::len), Some(1), "{errors}");
                assert_eq!(errors[0]["extensions"]["code"], "NOT_FOUND", "{errors}");
            }
            other => panic!("expected NOT_FOUND within {WITHIN:?} of the change, got {other:?}"),
        }
    }
}

/// A new ready public video of `owner`.
async fn ready_video(stack: &Stack, owner: Uuid) -> Uuid {
    let metadata = VideoMetadata {
        title: "watched".into(),
        visibility: Visibility::Public,
        ..Default::default()
    };
    let video = stack.publish_video(owner, metadata).await;
    stack.wait_video_ready(None, video).await;
    video
}

/// GraphQL straight against one replica, as the gateway would call it for `user`.
async fn graphql_on(addr: std::net::SocketAddr, user: Uuid, query: &str, variables: Value) {
    let body: Value = reqwest::Client::new()
        .post(format!("http://{addr}/media/graphql"))
        .header("x-user-id", user.to_string())
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body.get("errors").is_none(), "{query}: {body}");
}

/// Waits until replica A (the gateway's) runs `n` subscriptions, then checks that
/// `comments` are live: a comment posted now reaches each of them.
async fn live(
    stack: &Stack,
    n: usize,
    on: std::net::SocketAddr,
    video: Uuid,
    comments: &mut [&mut Client],
) {
    testkit::wait_for("subscriptions live", Duration::from_secs(20), || async {
        (stack.media.realtime.hub.stats().subscribers >= n).then_some(())
    })
    .await;
    let body = format!("hello {}", Uuid::now_v7());
    graphql_on(
        on,
        Uuid::now_v7(),
        ADD_COMMENT,
        json!({ "v": video, "b": body }),
    )
    .await;
    for client in comments {
        let data = client.data().await;
        assert_eq!(data["commentEvents"]["comment"]["body"], body.as_str());
    }
}

#[tokio::test]
async fn subscriptions_end_for_viewers_who_may_no_longer_see_the_video() {
    let stack = Stack::start().await;
    let (b, _replica) = stack.spawn_media_replica(|_| {}).await;
    let owner = Uuid::now_v7();
    let viewer = Uuid::now_v7();
    let owner_token = stack.token_for(owner, "owner");
    let viewer_token = stack.token_for(viewer, "viewer");

    // Made private (updateVideo on replica B): the viewer's subscriptions end, the
    // owner's go on.
    let video = ready_video(&stack, owner).await;
    let mut viewer_comments = Client::start(&stack, COMMENTS, video, &viewer_token);
    let mut viewer_stats = Client::start(&stack, STATS, video, &viewer_token);
    let mut owner_comments = Client::start(&stack, COMMENTS, video, &owner_token);
    let mut owner_stats = Client::start(&stack, STATS, video, &owner_token);
    viewer_stats.data().await; // the counts now: live
    owner_stats.data().await;
    live(
        &stack,
        4,
        b,
        video,
        &mut [&mut viewer_comments, &mut owner_comments],
    )
    .await;
    owner_stats.data().await; // the comment counted
    viewer_stats.data().await;

    graphql_on(
        b,
        owner,
        "mutation($v: ID!) { updateVideo(id: $v, input: { visibility: PRIVATE }) { id } }",
        json!({ "v": video }),
    )
    .await;
    let deadline = Instant::now() + WITHIN;
    viewer_comments.ends_not_found(deadline).await;
    viewer_stats.ends_not_found(deadline).await;
    // The owner still gets the comments and counters of their private video.
    graphql_on(
        b,
        owner,
        ADD_COMMENT,
        json!({ "v": video, "b": "still mine" }),
    )
    .await;
    let data = owner_comments.data().await;
    assert_eq!(data["commentEvents"]["comment"]["body"], "still mine");
    assert_eq!(owner_stats.data().await["videoStats"]["commentCount"], 2);
    // And the viewer cannot subscribe again.
    let mut again = Client::start(&stack, COMMENTS, video, &viewer_token);
    again
        .ends_not_found(Instant::now() + Duration::from_secs(20))
        .await;

    // Deleted by its owner (deleteVideo on replica B): everyone's subscriptions end.
    let video = ready_video(&stack, owner).await;
    let mut viewer_comments = Client::start(&stack, COMMENTS, video, &viewer_token);
    let mut viewer_stats = Client::start(&stack, STATS, video, &viewer_token);
    let mut owner_comments = Client::start(&stack, COMMENTS, video, &owner_token);
    viewer_stats.data().await;
    // The owner's two from above are still running.
    live(
        &stack,
        2 + 3,
        b,
        video,
        &mut [&mut viewer_comments, &mut owner_comments],
    )
    .await;
    graphql_on(
        b,
        owner,
        "mutation($v: ID!) { deleteVideo(id: $v) }",
        json!({ "v": video }),
    )
    .await;
    let deadline = Instant::now() + WITHIN;
    viewer_comments.ends_not_found(deadline).await;
    viewer_stats.ends_not_found(deadline).await;
    owner_comments.ends_not_found(deadline).await;

    // Deleted through the video service (`video.deleted`, taken by either replica).
    let video = ready_video(&stack, owner).await;
    let mut viewer_comments = Client::start(&stack, COMMENTS, video, &viewer_token);
    let mut viewer_stats = Client::start(&stack, STATS, video, &viewer_token);
    viewer_stats.data().await;
    live(&stack, 2 + 2, b, video, &mut [&mut viewer_comments]).await;
    stack
        .deliver_video_event(VideoDeleted {
            video_id: video,
            owner_id: owner,
        })
        .await;
    let deadline = Instant::now() + WITHIN;
    viewer_comments.ends_not_found(deadline).await;
    viewer_stats.ends_not_found(deadline).await;
}
