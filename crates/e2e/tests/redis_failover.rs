//! A Redis Cluster primary lost under load (issue: scale-out).
//!
//! The stack runs on the local Redis Cluster (deploy/local/cluster.sh: 3 primaries with a
//! replica each, started by deploy/local/test). Users like and comment through the gateway
//! without pause: every request passes Redis (the gateway's revocation check, the rate
//! limiter, the user directory's cache, the comments' real-time publish). One primary is
//! killed with SIGKILL mid-run, its replica is promoted, the load goes on, and the killed
//! node comes back as a replica. Afterwards every acknowledged like and comment is in the
//! catalogue exactly once; a request that failed may or may not have landed, never twice.
//! Clients retry what failed; the test prints what they saw.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use e2e::Stack;
use events::video::VideoMetadata;
use serde_json::{Value, json};
use testkit::cluster::run as cluster;
use uuid::Uuid;

/// The port of a primary that serves slots, from a node's `CLUSTER NODES`.
async fn a_primary(nodes: &str) -> u16 {
    let seed = nodes.split(',').next().unwrap();
    let client = redis::Client::open(seed).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let view: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut conn)
        .await
        .unwrap();
    view.lines()
        .map(|line| line.split(' ').collect::<Vec<_>>())
        .find(|f| f.len() > 8 && f[2].contains("master") && !f[2].contains("fail"))
        .map(|f| {
            let addr = f[1].split('@').next().unwrap();
            addr.rsplit(':').next().unwrap().parse().unwrap()
        })
        .expect("a primary serving slots")
}

/// What the clients saw.
#[derive(Default)]
struct Outcomes {
    /// Comment bodies acknowledged, and those whose request failed.
    comments_acked: HashSet<String>,
    comments_failed: HashSet<String>,
    /// (user index, video) likes acknowledged, and those that failed.
    likes_acked: HashSet<(usize, Uuid)>,
    likes_failed: HashSet<(usize, Uuid)>,
    failures: usize,
    /// When each failure and each success happened, for the error windows.
    timeline: Vec<(Instant, bool)>,
}

#[tokio::test]
async fn losing_a_redis_primary_loses_no_acknowledged_action() {
    let nodes = std::env::var("KINO_REDIS_CLUSTER_NODES").expect(
        "KINO_REDIS_CLUSTER_NODES: run through deploy/local/test, which starts the cluster",
    );
    // SAFETY: nextest runs each test in its own process, and this current-thread runtime
    // has started no other thread yet: nothing reads the environment concurrently. The
    // stack's services read REDIS_URL through testkit when they start below.
    unsafe { std::env::set_var("REDIS_URL", &nodes) };
    let stack = Arc::new(Stack::start().await);
    assert!(
        stack.env.redis_url.contains(','),
        "the stack is on the cluster"
    );

    let owner = Uuid::now_v7();
    let mut videos = Vec::new();
    for i in 0..6 {
        let metadata = VideoMetadata {
            title: format!("failover {i}"),
            ..Default::default()
        };
        videos.push(stack.publish_video(owner, metadata).await);
    }
    for video in &videos {
        stack.wait_video_ready(None, *video).await;
    }
    const USERS: usize = 4;
    let mut tokens = Vec::new();
    for u in 0..USERS {
        let name = format!("fo{}{u}", &Uuid::now_v7().simple().to_string()[24..]);
        stack.register(&name, "correct horse battery").await;
        let pair = stack.login(&name, "correct horse battery").await;
        tokens.push(pair["access_token"].as_str().unwrap().to_owned());
    }

    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for (u, token) in tokens.iter().cloned().enumerate() {
        let (stack, outcomes, stop, videos) = (
            stack.clone(),
            outcomes.clone(),
            stop.clone(),
            videos.clone(),
        );
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            let mut n = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let video = videos[(n / 2) % videos.len()];
                let (query, variables, comment) = if n.is_multiple_of(2) {
                    let body = format!("u{u}-c{n}");
                    (
                        "mutation($v: ID!, $b: String!) { addComment(videoId: $v, body: $b) { id } }",
                        json!({ "v": video, "b": body }),
                        Some(body),
                    )
                } else {
                    (
                        "mutation($v: ID!) { likeVideo(videoId: $v) { likeCount } }",
                        json!({ "v": video }),
                        None,
                    )
                };
                let response = client
                    .post(stack.url("/media/graphql"))
                    .bearer_auth(&token)
                    .json(&json!({ "query": query, "variables": variables }))
                    .send()
                    .await;
                let ok = match response {
                    Ok(r) if r.status() == 200 => r
                        .json::<Value>()
                        .await
                        .is_ok_and(|body| body.get("errors").is_none()),
                    _ => false,
                };
                {
                    let mut o = outcomes.lock().unwrap();
                    o.timeline.push((Instant::now(), ok));
                    match (comment, ok) {
                        (Some(body), true) => drop(o.comments_acked.insert(body)),
                        (Some(body), false) => drop(o.comments_failed.insert(body)),
                        (None, true) => drop(o.likes_acked.insert((u, video))),
                        (None, false) => drop(o.likes_failed.insert((u, video))),
                    }
                    o.failures += usize::from(!ok);
                }
                if !ok {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                n += 1;
                // A steady load, not a flood: the comments stay few enough to read back.
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(5)).await;
    let port = a_primary(&nodes).await;
    let killed_at = Instant::now();
    eprintln!("killing the Redis primary on :{port}");
    tokio::task::spawn_blocking(move || cluster(&format!("kill_redis_node {port}")))
        .await
        .unwrap();
    // The replica is promoted after the cluster's node timeout (2 s) and an election.
    tokio::time::sleep(Duration::from_secs(12)).await;
    eprintln!("restarting :{port} (it rejoins as a replica)");
    tokio::task::spawn_blocking(move || cluster(&format!("start_redis_node {port}")))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }

    let o = std::mem::take(&mut *outcomes.lock().unwrap());
    let after_kill = o.timeline.iter().filter(|(at, _)| *at > killed_at).count();
    assert!(after_kill > 20, "the load went on through the failover");
    // The longest stretch from a failed request to the next acknowledged one.
    let mut timeline = o.timeline.clone();
    timeline.sort_by_key(|(at, _)| *at);
    let (mut window, mut failing_since) = (Duration::ZERO, None);
    for (at, ok) in &timeline {
        match (ok, failing_since) {
            (false, None) => failing_since = Some(*at),
            (true, Some(since)) => {
                window = window.max(*at - since);
                failing_since = None;
            }
            _ => {}
        }
    }

    // Every acknowledged comment is stored exactly once; a failed one at most once.
    let mut stored: HashMap<String, usize> = HashMap::new();
    let mut likes: HashMap<Uuid, i64> = HashMap::new();
    let page = "query($v: ID!, $a: String) { comments(videoId: $v, first: 100, after: $a) { edges { node { body } } pageInfo { hasNextPage endCursor } } video(id: $v) { likeCount } }";
    for video in &videos {
        let mut after = Value::Null;
        loop {
            let data = stack
                .graphql_ok(None, page, json!({ "v": video, "a": after }))
                .await;
            for edge in data["comments"]["edges"].as_array().unwrap() {
                *stored
                    .entry(edge["node"]["body"].as_str().unwrap().to_owned())
                    .or_default() += 1;
            }
            likes.insert(*video, data["video"]["likeCount"].as_i64().unwrap());
            if data["comments"]["pageInfo"]["hasNextPage"] != true {
                break;
            }
            after = data["comments"]["pageInfo"]["endCursor"].clone();
        }
    }
    let lost = o
        .comments_acked
        .iter()
        .filter(|b| !stored.contains_key(*b))
        .count();
    let doubled = stored.values().filter(|&&n| n > 1).count();
    let unknown = stored
        .keys()
        .filter(|b| !o.comments_acked.contains(*b) && !o.comments_failed.contains(*b))
        .count();
    // Likes: one per user and video; the count is the acknowledged likers, plus any whose
    // failed request landed anyway.
    let mut likes_wrong = 0;
    for video in &videos {
        let acked = (0..USERS)
            .filter(|u| o.likes_acked.contains(&(*u, *video)))
            .count() as i64;
        let maybe = (0..USERS)
            .filter(|u| {
                !o.likes_acked.contains(&(*u, *video)) && o.likes_failed.contains(&(*u, *video))
            })
            .count() as i64;
        if !(acked..=acked + maybe).contains(&likes[video]) {
            likes_wrong += 1;
        }
    }
    eprintln!(
        "Redis primary :{port} killed: {} requests ({} after the kill), {} failed (retried), \
         longest error window {} ms; comments acknowledged {}, lost {lost}, doubled {doubled}; \
         likes acknowledged {}, videos with a wrong count {likes_wrong}",
        o.timeline.len(),
        after_kill,
        o.failures,
        window.as_millis(),
        o.comments_acked.len(),
        o.likes_acked.len(),
    );
    assert!(o.comments_acked.len() > 20, "comments went through");
    assert_eq!(lost, 0, "an acknowledged comment is missing");
    assert_eq!(doubled, 0, "a comment is stored twice");
    assert_eq!(unknown, 0, "a comment nobody sent");
    assert_eq!(
        likes_wrong, 0,
        "a like count differs from the acknowledged likes"
    );
}
