//! Interactions and trending through the gateway, with the ranker running on the stack's
//! stores: view dedupe per viewer within the window (and again after it) reaching the
//! catalogue's counters, weighted ranking in every scope, listing rules, bad input, and
//! RATE_LIMITED when the publish buffer is full (with nothing acknowledged lost).

use std::time::{Duration, Instant};

use e2e::{
    Stack,
    ws::{Received, WsClient},
};
use events::video::VideoMetadata;
use futures::future::join_all;
use serde_json::{Value, json};
use uuid::Uuid;

/// A ready, public video of `owner` in `category`, once the catalogue lists it.
async fn publish_video(stack: &Stack, owner: Uuid, category: Option<&str>) -> Uuid {
    let video_id = Uuid::now_v7();
    let metadata = VideoMetadata {
        title: format!("video {video_id}"),
        category: category.map(str::to_owned),
        ..Default::default()
    };
    let video_id = stack.publish_video(owner, metadata).await;
    stack.wait_video_ready(None, video_id).await;
    video_id
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}

const VIEW: &str = "mutation($v: ID!, $s: String) { recordView(videoId: $v, sessionId: $s) }";

async fn view(stack: &Stack, token: Option<&str>, video: Uuid, session: Option<&str>) {
    let data = stack
        .graphql_ok(token, VIEW, json!({ "v": video, "s": session }))
        .await;
    assert_eq!(data["recordView"], true);
}

async fn view_count(stack: &Stack, video: Uuid) -> i64 {
    let data = stack
        .graphql_ok(
            None,
            "query($id: ID!) { video(id: $id) { viewCount } }",
            json!({ "id": video }),
        )
        .await;
    data["video"]["viewCount"].as_i64().unwrap()
}

/// Waits until the view count is `n`, then checks it stays there a little longer (every
/// accepted view is reported within the counter flush interval, 200 ms here).
async fn expect_views(stack: &Stack, video: Uuid, n: i64) {
    testkit::wait_for(
        &format!("{n} views"),
        // Generous: on a loaded 2-core CI machine the whole suite shares the ranker's path.
        Duration::from_secs(60),
        || async move { (view_count(stack, video).await == n).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(view_count(stack, video).await, n, "no late extra views");
}

/// The ids of a trending list query's answer.
async fn ids(stack: &Stack, query: &str, variables: Value) -> Vec<String> {
    let data = stack.graphql_ok(None, query, variables).await;
    id_list(data.as_object().unwrap().values().next().unwrap())
}

/// The `id`s of a list of videos.
fn id_list(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn repeated_views_count_once_within_the_window_and_again_after_it() {
    let stack = Stack::start().await;
    let mut ranker = stack.ranker_config();
    ranker.ingest.view_dedupe = Duration::from_secs(3);
    stack.start_ranker(ranker).await;
    let owner = Uuid::now_v7();
    let video = publish_video(&stack, owner, None).await;
    let viewer = stack.token_for(Uuid::now_v7(), "viewer");

    for _ in 0..3 {
        view(&stack, None, video, Some("session-aaaaaaaa")).await;
    }
    // A signed-in viewer is deduplicated by user, whatever sessionId they send.
    view(&stack, Some(&viewer), video, Some("session-1")).await;
    view(&stack, Some(&viewer), video, Some("session-2")).await;
    view(&stack, Some(&viewer), video, None).await;
    expect_views(&stack, video, 2).await;

    // After the window, the same viewers count again, once each. The window starts when
    // the ranker takes a view (its dedupe key's TTL), no later than the view is counted:
    // it is waited for from there, not from when the views were sent (under the whole
    // suite's load the ranker was seen far enough behind to dedupe the second round).
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    view(&stack, None, video, Some("session-aaaaaaaa")).await;
    view(&stack, None, video, Some("session-aaaaaaaa")).await;
    view(&stack, Some(&viewer), video, None).await;
    expect_views(&stack, video, 4).await;

    // And it trends (4 views).
    let listed = ids(
        &stack,
        "{ trending(window: HOUR) { id viewCount } }",
        json!({}),
    )
    .await;
    assert_eq!(listed, [video.to_string()]);
}

#[tokio::test]
async fn trending_ranks_weighted_interactions_per_window_category_and_channel() {
    let stack = Stack::start().await;
    stack.start_ranker(stack.ranker_config()).await;
    let (o1, o2) = (Uuid::now_v7(), Uuid::now_v7());
    let owner1 = stack.token_for(o1, "owner1");
    let a = publish_video(&stack, o1, Some("music")).await;
    let b = publish_video(&stack, o2, Some("music")).await;
    let c = publish_video(&stack, o1, Some("games")).await;
    let fan = stack.token_for(Uuid::now_v7(), "fan");

    // a: 3 views + a comment = 11; b: a like = 5; c: a share and 25 s watched = 10 + 3.
    for s in ["session-1-aaaa", "session-2-aaaa", "session-3-aaaa"] {
        view(&stack, None, a, Some(s)).await;
    }
    stack
        .graphql_ok(
            Some(&fan),
            "mutation($v: ID!) { addComment(videoId: $v, body: \"nice\") { id } }",
            json!({ "v": a }),
        )
        .await;
    stack
        .graphql_ok(
            Some(&fan),
            "mutation($v: ID!) { likeVideo(videoId: $v) { likeCount } }",
            json!({ "v": b }),
        )
        .await;
    stack
        .graphql_ok(
            Some(&fan),
            "mutation($v: ID!) { shareVideo(videoId: $v) recordWatchTime(videoId: $v, seconds: 25) }",
            json!({ "v": c }),
        )
        .await;
    let (a, b, c) = (a.to_string(), b.to_string(), c.to_string());
    let global = "query($w: TrendingWindow!) { trending(window: $w) { id } }";
    for window in ["HOUR", "DAY", "WEEK"] {
        let expected = [c.clone(), a.clone(), b.clone()];
        testkit::wait_for(
            &format!("{window} ranking"),
            Duration::from_secs(20),
            || async {
                let got = ids(&stack, global, json!({ "w": window })).await;
                (got == expected).then_some(())
            },
        )
        .await;
    }
    let music = ids(
        &stack,
        "{ trending(window: DAY, category: \"music\") { id } }",
        json!({}),
    )
    .await;
    assert_eq!(music, [a.clone(), b.clone()]);
    let channel = ids(
        &stack,
        "query($u: ID!) { channelTrending(userId: $u, window: WEEK) { id } }",
        json!({ "u": o1 }),
    )
    .await;
    assert_eq!(channel, [c.clone(), a.clone()]);
    let limited = ids(&stack, "{ trending(limit: 1) { id } }", json!({})).await;
    assert_eq!(limited, std::slice::from_ref(&c));

    // An unlike takes the like's points back exactly: b falls to 0, below a fresh
    // single view on a new video.
    let d = publish_video(&stack, o2, Some("music")).await.to_string();
    view(&stack, None, d.parse().unwrap(), Some("session-4-aaaa")).await;
    stack
        .graphql_ok(
            Some(&fan),
            "mutation($v: ID!) { unlikeVideo(videoId: $v) { likeCount } }",
            json!({ "v": b }),
        )
        .await;
    let expected = [a.clone(), d.clone(), b.clone()];
    testkit::wait_for("the unlike applied", Duration::from_secs(20), || async {
        let got = ids(
            &stack,
            "{ trending(category: \"music\") { id } }",
            json!({}),
        )
        .await;
        (got == expected).then_some(())
    })
    .await;

    // A video made private leaves every list at once.
    stack
        .graphql_ok(
            Some(&owner1),
            "mutation($v: ID!) { updateVideo(id: $v, input: { visibility: PRIVATE }) { id } }",
            json!({ "v": c }),
        )
        .await;
    let after = ids(&stack, "{ trending(window: HOUR) { id } }", json!({})).await;
    assert!(!after.contains(&c), "{after:?}");
    assert_eq!(after[0], a);
}

#[tokio::test]
async fn bad_interactions_are_refused_and_publish_nothing() {
    let stack = Stack::start().await;
    stack.start_ranker(stack.ranker_config()).await;
    let video = publish_video(&stack, Uuid::now_v7(), None).await;
    let user = stack.token_for(Uuid::now_v7(), "someone");
    let watch = "mutation($v: ID!, $n: Int!, $s: String) { recordWatchTime(videoId: $v, seconds: $n, sessionId: $s) }";
    let cases: Vec<(Option<&str>, &str, Value, &str)> = vec![
        (
            Some(&user),
            watch,
            json!({ "v": video, "n": 0 }),
            "BAD_USER_INPUT",
        ),
        (
            Some(&user),
            watch,
            json!({ "v": video, "n": 3601 }),
            "BAD_USER_INPUT",
        ),
        (None, watch, json!({ "v": video, "n": 5 }), "BAD_USER_INPUT"),
        (None, VIEW, json!({ "v": video }), "BAD_USER_INPUT"),
        (
            None,
            VIEW,
            json!({ "v": video, "s": "short" }),
            "BAD_USER_INPUT",
        ),
        (
            None,
            VIEW,
            json!({ "v": video, "s": "has spaces in it" }),
            "BAD_USER_INPUT",
        ),
        (
            None,
            VIEW,
            json!({ "v": "not-a-uuid", "s": "session-aaaaaaaa" }),
            "BAD_USER_INPUT",
        ),
        (
            None,
            VIEW,
            json!({ "v": Uuid::now_v7(), "s": "session-aaaaaaaa" }),
            "NOT_FOUND",
        ),
        (
            Some(&user),
            "mutation($v: ID!) { shareVideo(videoId: $v) }",
            json!({ "v": Uuid::now_v7() }),
            "NOT_FOUND",
        ),
        (
            None,
            "{ trending(limit: 0) { id } }",
            json!({}),
            "BAD_USER_INPUT",
        ),
        (
            None,
            "{ trending(limit: 101) { id } }",
            json!({}),
            "BAD_USER_INPUT",
        ),
        (
            None,
            "{ trending(category: \"\") { id } }",
            json!({}),
            "BAD_USER_INPUT",
        ),
        (
            None,
            "{ channelTrending(userId: \"nope\") { id } }",
            json!({}),
            "BAD_USER_INPUT",
        ),
    ];
    for (token, query, variables, expected) in cases {
        let body = stack.graphql(token, query, variables.clone()).await;
        assert_eq!(code(&body), expected, "{query} {variables}: {body}");
    }
    // Nothing reached the ranker: one valid view afterwards is the only event archived.
    view(&stack, None, video, Some("session-aaaaaaaa")).await;
    expect_views(&stack, video, 1).await;
    assert_eq!(archived(&stack).await, 1);
}

/// Events in the stack's archive.
async fn archived(stack: &Stack) -> u64 {
    let client = platform::mongo::connect(&stack.env.mongodb_uri, "e2e")
        .await
        .unwrap();
    client
        .database(&stack.env.mongodb_database)
        .collection::<mongodb::bson::Document>(ranker::archive::COLLECTION)
        .count_documents(mongodb::bson::doc! {})
        .await
        .unwrap()
}

#[tokio::test]
async fn a_full_publish_buffer_answers_rate_limited_and_loses_nothing_acknowledged() {
    let stack = Stack::start_configured(
        |_| {},
        |media| {
            media.interaction_buffer = 1;
            media.interaction_batch = 1;
        },
    )
    .await;
    stack.start_ranker(stack.ranker_config()).await;
    let video = publish_video(&stack, Uuid::now_v7(), None).await;
    // Straight to media (anonymous, as the gateway would pass it), many at once.
    let client = reqwest::Client::new();
    let url = format!("http://{}/media/graphql", stack.media_addr);
    let (mut accepted, mut limited) = (0i64, 0);
    for burst in 0..10 {
        let answers = join_all((0..100).map(|i| {
            let request = client.post(&url).json(&json!({
                "query": VIEW,
                "variables": { "v": video, "s": format!("session-{burst}-{i:04}") },
            }));
            async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
        }))
        .await;
        for body in answers {
            if body["data"]["recordView"] == true {
                accepted += 1;
            } else {
                assert_eq!(code(&body), "RATE_LIMITED", "{body}");
                limited += 1;
            }
        }
        if limited > 0 && accepted > 0 {
            break;
        }
    }
    assert!(
        limited > 0,
        "a buffer of 1 under 100 concurrent views refuses some"
    );
    assert!(accepted > 0);
    // Every acknowledged view (distinct sessions) is counted and archived, and only those.
    expect_views(&stack, video, accepted).await;
    assert_eq!(archived(&stack).await, accepted as u64);
}

const TRENDING_CHANGED: &str =
    "subscription($l: Int!) { trendingChanged(window: HOUR, limit: $l) { id } }";

/// The ids of a `trendingChanged` push.
async fn pushed(client: &mut WsClient, id: &str) -> Vec<String> {
    id_list(&client.next_data(id).await["trendingChanged"])
}

#[tokio::test]
async fn a_burst_of_likes_tops_the_next_trending_changed_push_within_two_seconds() {
    let stack = Stack::start().await;
    stack.start_ranker(stack.ranker_config()).await;
    let owner = Uuid::now_v7();
    let a = publish_video(&stack, owner, None).await;
    let b = publish_video(&stack, owner, None).await;
    let c = publish_video(&stack, owner, None).await;
    // a: 2 views, b: 1 view; c has nothing yet.
    for (video, session) in [
        (a, "session-a1-aaaa"),
        (a, "session-a2-aaaa"),
        (b, "session-b1-aaaa"),
    ] {
        view(&stack, None, video, Some(session)).await;
    }
    let (a, b, c) = (a.to_string(), b.to_string(), c.to_string());
    testkit::wait_for("the views ranked", Duration::from_secs(20), || async {
        let got = ids(&stack, "{ trending(window: HOUR) { id } }", json!({})).await;
        (got == [a.clone(), b.clone()]).then_some(())
    })
    .await;

    // Subscribers through the gateway, anonymous and signed in, with different limits:
    // each gets the current list at once.
    let url = stack.url("/media/graphql/ws").replace("http://", "ws://");
    let fan = stack.token_for(Uuid::now_v7(), "fan");
    let mut top2 = WsClient::connect_init(&url, None).await;
    top2.subscribe("t", TRENDING_CHANGED, json!({ "l": 2 }))
        .await;
    let mut top1 = WsClient::connect_init(&url, Some(&fan)).await;
    top1.subscribe("t", TRENDING_CHANGED, json!({ "l": 1 }))
        .await;
    assert_eq!(pushed(&mut top2, "t").await, [a.clone(), b.clone()]);
    assert_eq!(pushed(&mut top1, "t").await, std::slice::from_ref(&a));

    // Nothing changed: nothing is pushed.
    assert!(
        top2.recv_within(Duration::from_millis(1_500))
            .await
            .is_none()
    );

    // A burst of likes on c (5 points each, against a's 2 views).
    let likers: Vec<String> = (0..10)
        .map(|i| stack.token_for(Uuid::now_v7(), &format!("liker{i}")))
        .collect();
    join_all(likers.iter().map(|token| {
        stack.graphql_ok(
            Some(token),
            "mutation($v: ID!) { likeVideo(videoId: $v) { likeCount } }",
            json!({ "v": c }),
        )
    }))
    .await;
    let liked = Instant::now();
    assert_eq!(pushed(&mut top2, "t").await, [c.clone(), a.clone()]);
    assert_eq!(pushed(&mut top1, "t").await, std::slice::from_ref(&c));
    let waited = liked.elapsed();
    assert!(
        waited <= Duration::from_secs(2),
        "the new top list came {waited:?} after the likes"
    );

    // A change below a subscriber's limit is no news to it: b overtakes a (a view and a
    // like: 6 points against 2), which moves top2's second place but not top1's first.
    stack
        .graphql_ok(
            Some(&fan),
            "mutation($v: ID!) { likeVideo(videoId: $v) { likeCount } }",
            json!({ "v": b }),
        )
        .await;
    assert_eq!(pushed(&mut top2, "t").await, [c.clone(), b.clone()]);
    assert!(
        top1.recv_within(Duration::from_millis(1_500))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn trending_changed_refuses_bad_limits() {
    let stack = Stack::start().await;
    let url = stack.url("/media/graphql/ws").replace("http://", "ws://");
    let mut client = WsClient::connect_init(&url, None).await;
    for (id, limit) in [("zero", 0), ("huge", 100_000)] {
        client
            .subscribe(id, TRENDING_CHANGED, json!({ "l": limit }))
            .await;
        match client.recv().await {
            Received::Json(message) if message["type"] == "error" && message["id"] == id => {
                assert_eq!(
                    message["payload"][0]["extensions"]["code"], "BAD_USER_INPUT",
                    "{message}"
                );
            }
            other => panic!("expected an error for {id}, got {other:?}"),
        }
    }
}
