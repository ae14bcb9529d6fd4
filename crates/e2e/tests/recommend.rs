//! Recommendations through the gateway: `related` and `recommended` answered by a real
//! recommender (the real model) behind media, likes reaching it through media's outbox
//! and RabbitMQ, listing rules, bad input, and media still answering when the recommender
//! is down.

use std::time::{Duration, Instant};

use e2e::Stack;
use events::video::{VideoCreated, VideoMetadata, VideoReady, VideoUploaded};
use serde_json::{Value, json};
use uuid::Uuid;

/// A stack whose media calls a recommender (and a ranker, for trending).
async fn stack() -> (Stack, recommender::Config) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stack = Stack::start_configured(
        |_| {},
        |media| media.recommender_url = format!("http://{addr}"),
    )
    .await;
    let config = stack.recommender_config();
    stack.start_recommender(config.clone(), listener).await;
    stack.start_ranker(stack.ranker_config()).await;
    (stack, config)
}

/// (title, tag, description)
type Video = (&'static str, &'static str, &'static str);

const TOPICS: &[(&str, &[Video])] = &[
    (
        "cooking",
        &[
            (
                "Fresh pasta from scratch",
                "cooking",
                "Knead flour and eggs into dough and cut tagliatelle.",
            ),
            (
                "The perfect roast chicken",
                "cooking",
                "Season, roast and rest a whole chicken for crispy skin.",
            ),
            (
                "Baking sourdough bread at home",
                "baking",
                "Feed your starter, shape the loaf and bake it.",
            ),
            (
                "Easy vegetable curry recipe",
                "recipe",
                "Simmer vegetables in coconut milk with spices.",
            ),
        ],
    ),
    (
        "football",
        &[
            (
                "Champions League final highlights",
                "football",
                "Every goal and save from the final match.",
            ),
            (
                "Top 10 free kicks of all time",
                "football",
                "Curling free kicks that beat the goalkeeper.",
            ),
            (
                "How pressing tactics win matches",
                "tactics",
                "Why teams press high up the pitch.",
            ),
            (
                "World Cup penalty shootouts",
                "soccer",
                "Nerves, misses and winning penalties.",
            ),
        ],
    ),
    (
        "programming",
        &[
            (
                "Rust ownership explained",
                "programming",
                "Borrowing, lifetimes and moves in Rust.",
            ),
            (
                "Async Python with asyncio",
                "python",
                "Coroutines, event loops and await.",
            ),
            (
                "Building a REST API in Go",
                "golang",
                "Routing HTTP requests and writing handlers.",
            ),
            (
                "Git branching for teams",
                "git",
                "Merge, rebase and pull requests.",
            ),
        ],
    ),
];

/// Publishes a ready public video to media's catalogue and the recommender; waits until
/// media lists it.
async fn publish(
    stack: &Stack,
    rec: &recommender::Config,
    owner: Uuid,
    topic: &str,
    (title, tag, description): (&str, &str, &str),
) -> Uuid {
    let video_id = Uuid::now_v7();
    let created = VideoCreated {
        video_id,
        owner_id: owner,
        metadata: VideoMetadata {
            title: title.into(),
            description: description.into(),
            tags: vec![topic.into(), tag.into()],
            ..Default::default()
        },
    };
    let ready = VideoReady {
        video_id,
        owner_id: owner,
        manifest_key: format!("hls/{video_id}/master.m3u8"),
        thumbnail_key: None,
        duration_seconds: 60.0,
        renditions: vec![],
        posters: vec![],
        storyboard: None,
    };
    stack.deliver_video_event(created.clone()).await;
    stack
        .deliver_video_event(VideoUploaded {
            video_id,
            owner_id: owner,
            size_bytes: 1000,
        })
        .await;
    stack.deliver_video_event(ready.clone()).await;
    stack.deliver_to_recommender(rec, created).await;
    stack.deliver_to_recommender(rec, ready).await;
    testkit::wait_for("the video ready", Duration::from_secs(30), || async move {
        let body = stack
            .graphql(
                None,
                "query($id: ID!) { video(id: $id) { status } }",
                json!({ "id": video_id }),
            )
            .await;
        (body["data"]["video"]["status"] == "READY").then_some(())
    })
    .await;
    video_id
}

/// Every topic's videos, in TOPICS order; waits until the recommender embedded them all.
async fn catalogue(stack: &Stack, rec: &recommender::Config, owner: Uuid) -> Vec<Vec<Uuid>> {
    let mut out = Vec::new();
    for (topic, videos) in TOPICS {
        let mut ids = Vec::new();
        for video in *videos {
            ids.push(publish(stack, rec, owner, topic, *video).await);
        }
        out.push(ids);
    }
    for id in out.iter().flatten() {
        let id = *id;
        testkit::wait_for(
            "every video embedded",
            Duration::from_secs(120),
            || async move {
                let ids = related(stack, None, id, 1).await;
                (!ids.is_empty()).then_some(())
            },
        )
        .await;
    }
    out
}

const RELATED: &str = "query($id: ID!, $n: Int!) { related(videoId: $id, first: $n) { id title } }";
const RECOMMENDED: &str = "query($n: Int!) { recommended(first: $n) { id title } }";

fn ids_of(list: &Value) -> Vec<Uuid> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|v| Uuid::parse_str(v["id"].as_str().unwrap()).unwrap())
        .collect()
}

async fn related(stack: &Stack, token: Option<&str>, video: Uuid, n: i32) -> Vec<Uuid> {
    let data = stack
        .graphql_ok(token, RELATED, json!({ "id": video, "n": n }))
        .await;
    ids_of(&data["related"])
}

async fn recommended(stack: &Stack, token: Option<&str>, n: i32) -> Vec<Uuid> {
    let data = stack
        .graphql_ok(token, RECOMMENDED, json!({ "n": n }))
        .await;
    ids_of(&data["recommended"])
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}

#[tokio::test]
async fn related_is_topical_and_a_football_fan_gets_football_first() {
    let (stack, rec) = stack().await;
    let owner = Uuid::now_v7();
    let topics = catalogue(&stack, &rec, owner).await;
    let (cooking, football, programming) = (&topics[0], &topics[1], &topics[2]);

    // "More like this" of a cooking video: the other cooking videos first.
    let got = related(&stack, None, cooking[0], 3).await;
    assert_eq!(got.len(), 3);
    assert!(!got.contains(&cooking[0]), "never the video itself");
    assert!(got.iter().all(|id| cooking.contains(id)), "{got:?}");
    // The other topics: the most related video shares the topic.
    for videos in [football, programming] {
        let data = stack
            .graphql_ok(None, RELATED, json!({ "id": videos[0], "n": 3 }))
            .await;
        let got = ids_of(&data["related"]);
        assert!(videos.contains(&got[0]), "{data}");
    }

    // Trending: views make a programming video popular.
    let token = |name: &str| stack.token_for(Uuid::now_v7(), name);
    for i in 0..3 {
        stack
            .graphql_ok(
                Some(&token(&format!("viewer{i}"))),
                "mutation($v: ID!) { recordView(videoId: $v) }",
                json!({ "v": programming[3] }),
            )
            .await;
    }
    // Anonymous viewers get trending.
    testkit::wait_for(
        "trending for anonymous viewers",
        Duration::from_secs(20),
        || async {
            recommended(&stack, None, 5)
                .await
                .first()
                .is_some_and(|id| *id == programming[3])
                .then_some(())
        },
    )
    .await;

    // A fan likes three football videos (through the gateway: media's outbox → RabbitMQ
    // → the recommender).
    let fan = token("fan");
    for video in &football[..3] {
        stack
            .graphql_ok(
                Some(&fan),
                "mutation($id: ID!) { likeVideo(videoId: $id) { id } }",
                json!({ "id": video }),
            )
            .await;
    }
    // Once the three likes are in (they arrive one by one): the unliked football video
    // leads, nothing already liked is offered, and trending takes every fourth slot.
    testkit::wait_for("a football feed", Duration::from_secs(20), || async {
        let feed = recommended(&stack, Some(&fan), 4).await;
        let ok = feed.first() == Some(&football[3])
            && football[..3].iter().all(|id| !feed.contains(id))
            && feed.get(3) == Some(&programming[3]);
        ok.then_some(feed)
    })
    .await;
}

#[tokio::test]
async fn private_and_deleted_videos_leave_recommendations_within_two_seconds() {
    let (stack, rec) = stack().await;
    let owner = Uuid::now_v7();
    let owner_token = stack.token_for(owner, "owner");
    let topics = catalogue(&stack, &rec, owner).await;
    let cooking = &topics[0];
    let fan = stack.token_for(Uuid::now_v7(), "fan");
    stack
        .graphql_ok(
            Some(&fan),
            "mutation($id: ID!) { likeVideo(videoId: $id) { id } }",
            json!({ "id": cooking[0] }),
        )
        .await;
    testkit::wait_for("a cooking feed", Duration::from_secs(20), || async {
        let feed = recommended(&stack, Some(&fan), 10).await;
        (feed.contains(&cooking[1]) && feed.contains(&cooking[2])).then_some(())
    })
    .await;

    let started = Instant::now();
    stack
        .graphql_ok(
            Some(&owner_token),
            "mutation($id: ID!) { updateVideo(id: $id, input: { visibility: PRIVATE }) { id } }",
            json!({ "id": cooking[1] }),
        )
        .await;
    stack
        .graphql_ok(
            Some(&owner_token),
            "mutation($id: ID!) { deleteVideo(id: $id) }",
            json!({ "id": cooking[2] }),
        )
        .await;
    testkit::wait_for("both gone", Duration::from_secs(2), || async {
        let rel = related(&stack, None, cooking[0], 20).await;
        let feed = recommended(&stack, Some(&fan), 20).await;
        let gone = [cooking[1], cooking[2]]
            .iter()
            .all(|id| !rel.contains(id) && !feed.contains(id));
        gone.then_some(())
    })
    .await;
    println!("gone after {:?}", started.elapsed());
    // The owner still sees their private video, but not in anyone's recommendations.
    let rel = related(&stack, Some(&owner_token), cooking[0], 20).await;
    assert!(!rel.contains(&cooking[1]));
}

#[tokio::test]
async fn bad_input_has_a_code_and_a_down_recommender_leaves_media_answering() {
    let stack = Stack::start_without_recommender().await;
    stack.start_ranker(stack.ranker_config()).await;
    let owner = Uuid::now_v7();
    let video = Uuid::now_v7();
    stack
        .deliver_video_event(VideoCreated {
            video_id: video,
            owner_id: owner,
            metadata: VideoMetadata {
                title: "Fresh pasta".into(),
                ..Default::default()
            },
        })
        .await;
    stack
        .deliver_video_event(VideoReady {
            video_id: video,
            owner_id: owner,
            manifest_key: format!("hls/{video}/master.m3u8"),
            thumbnail_key: None,
            duration_seconds: 60.0,
            renditions: vec![],
            posters: vec![],
            storyboard: None,
        })
        .await;
    let viewer = stack.token_for(Uuid::now_v7(), "viewer");
    testkit::wait_for("the video trending", Duration::from_secs(30), || async {
        stack
            .graphql(
                Some(&viewer),
                "mutation($v: ID!) { recordView(videoId: $v) }",
                json!({ "v": video }),
            )
            .await;
        (recommended(&stack, None, 5).await == [video]).then_some(())
    })
    .await;

    // Signed in, the feed falls back to trending rather than failing.
    assert_eq!(recommended(&stack, Some(&viewer), 5).await, [video]);
    // "More like this" says why it has nothing.
    let body = stack
        .graphql(None, RELATED, json!({ "id": video, "n": 5 }))
        .await;
    assert_eq!(code(&body), "UNAVAILABLE", "{body}");
    // ...and when to ask again.
    assert_eq!(body["errors"][0]["extensions"]["retryAfter"], 1, "{body}");

    for (query, variables) in [
        (RELATED, json!({ "id": video, "n": 0 })),
        (RELATED, json!({ "id": "not-an-id", "n": 5 })),
        (RECOMMENDED, json!({ "n": 1000 })),
    ] {
        let body = stack.graphql(Some(&viewer), query, variables).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    }
    let body = stack
        .graphql(None, RELATED, json!({ "id": Uuid::now_v7(), "n": 5 }))
        .await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
}

#[tokio::test]
async fn a_recommender_that_never_answers_costs_media_only_its_deadline() {
    // Accepts connections and says nothing, not even the HTTP/2 preface: every call can
    // only end by media's deadline (a stopped recommender refuses at once instead).
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = hole.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hole.accept().await {
            held.push(socket);
        }
    });
    let deadline = Duration::from_millis(300);
    let stack = Stack::start_configured(
        |_| {},
        |media| {
            media.recommender_url = format!("http://{addr}");
            media.recommender_timeout = deadline;
        },
    )
    .await;
    let metadata = VideoMetadata {
        title: "Fresh pasta".into(),
        ..Default::default()
    };
    let video = stack.publish_video(Uuid::now_v7(), metadata).await;
    stack.wait_video_ready(None, video).await;
    let viewer = stack.token_for(Uuid::now_v7(), "viewer");

    for _ in 0..3 {
        // The signed-in feed: trending (none yet) instead of an error, in about the deadline.
        let started = Instant::now();
        let body = stack
            .graphql(Some(&viewer), RECOMMENDED, json!({ "n": 5 }))
            .await;
        let took = started.elapsed();
        assert!(body["errors"].is_null(), "{body}");
        assert!(
            took >= deadline - Duration::from_millis(20) && took < deadline * 3,
            "recommended took {took:?} with a {deadline:?} deadline"
        );
        // "More like this": UNAVAILABLE, as fast.
        let started = Instant::now();
        let body = stack
            .graphql(Some(&viewer), RELATED, json!({ "id": video, "n": 5 }))
            .await;
        let took = started.elapsed();
        assert_eq!(code(&body), "UNAVAILABLE", "{body}");
        assert!(took < deadline * 3, "related took {took:?}");
    }
}
