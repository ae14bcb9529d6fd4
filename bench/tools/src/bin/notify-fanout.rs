//! A channel with many subscribers publishes a video (bench/notifications/run).
//!
//! 1. Seeds `SUBSCRIBERS` (100,000) followers of one channel straight into media's
//!    database (skipped when already there).
//! 2. Baseline: `LIKERS` (16) concurrent viewers like videos for `BASELINE_SECS` (5 s),
//!    through media's GraphQL (X-User-Id as the gateway sends it); their latencies.
//! 3. The channel publishes: `video.created`, `video.uploaded`, then `video.ready` on
//!    media's catalogue queue, as the video service announces them. From the `ready`
//!    publish: when every subscriber's notification is stored (the last follower's row,
//!    or the one post of a large channel's fan-in), when the first and the last subscriber's (the
//!    fan-out's first and last batch) `unreadNotificationCount` shows it through GraphQL,
//!    and when the job is done (every batch written or announced live). The likers keep
//!    liking meanwhile; their latencies until the job is done are compared with the
//!    baseline's.
//!
//! Environment: MEDIA_URL, MEDIA_DATABASE_URL, AMQP_URL, CATALOGUE_QUEUE. Prints one
//! line of `key=value` figures.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use events::{
    Envelope, Event, Publisher, Rabbit,
    video::{VideoCreated, VideoMetadata, VideoReady, VideoUploaded},
};
use kino_bench::{Rng, env_or};
use serde_json::json;
use uuid::Uuid;

/// The benchmark's channel (fixed, so its followers are seeded once).
const CHANNEL: Uuid = Uuid::from_u128(0x0b1e_55ed_c4a2_4e11_9000_0000_0000_0001);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let media = env_or("MEDIA_URL", "http://127.0.0.1:8082".to_string());
    let database = std::env::var("MEDIA_DATABASE_URL").context("MEDIA_DATABASE_URL")?;
    let amqp = env_or(
        "AMQP_URL",
        "amqp://guest:guest@127.0.0.1:5672/%2f".to_string(),
    );
    let queue = env_or("CATALOGUE_QUEUE", "media.catalogue".to_string());
    let subscribers: i64 = env_or("SUBSCRIBERS", 100_000);
    let likers: usize = env_or("LIKERS", 16);
    let baseline_secs: u64 = env_or("BASELINE_SECS", 5);
    let db = sqlx::PgPool::connect(&database).await.context("database")?;

    let have: i64 = sqlx::query_scalar("SELECT count(*) FROM follows WHERE channel_id = $1")
        .bind(CHANNEL)
        .fetch_one(&db)
        .await?;
    if have < subscribers {
        sqlx::query(
            "INSERT INTO follows (follower_id, channel_id)
             SELECT gen_random_uuid(), $1 FROM generate_series(1, $2)",
        )
        .bind(CHANNEL)
        .bind(subscribers - have)
        .execute(&db)
        .await?;
        sqlx::query(
            "INSERT INTO channels (id, subscriber_count) VALUES ($1, $2)
             ON CONFLICT (id) DO UPDATE SET subscriber_count = $2",
        )
        .bind(CHANNEL)
        .bind(subscribers)
        .execute(&db)
        .await?;
        sqlx::query("ANALYZE follows").execute(&db).await?;
    }
    let follower = |order: &'static str| {
        let db = &db;
        async move {
            sqlx::query_scalar::<_, Uuid>(&format!(
                "SELECT follower_id FROM follows WHERE channel_id = $1
                 ORDER BY follower_id {order} LIMIT 1"
            ))
            .bind(CHANNEL)
            .fetch_one(db)
            .await
        }
    };
    let (first_follower, last_follower) = (follower("ASC").await?, follower("DESC").await?);
    let videos: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM videos WHERE status = 'ready' AND visibility = 'public'
           AND deleted_at IS NULL LIMIT 1000",
    )
    .fetch_all(&db)
    .await?;
    if videos.is_empty() {
        bail!("no ready videos to like: seed some first");
    }
    let http = reqwest::Client::new();
    let graphql = format!("{media}/media/graphql");

    // 2. Baseline.
    let stop = Arc::new(AtomicBool::new(false));
    let load = spawn_likers(&http, &graphql, &videos, likers, stop.clone());
    tokio::time::sleep(Duration::from_secs(baseline_secs)).await;
    stop.store(true, Ordering::Relaxed);
    let baseline = collect(load).await?;

    // 3. The channel publishes.
    let rabbit = Rabbit::new(&amqp, "notify-fanout");
    let publisher = Publisher::new(rabbit);
    let video = Uuid::now_v7();
    let publish = |kind: &'static str, body: Vec<u8>| {
        let publisher = &publisher;
        let queue = &queue;
        async move {
            publisher
                .publish_raw("", queue, &Uuid::now_v7().to_string(), &body)
                .await
                .with_context(|| format!("publish {kind}"))
        }
    };
    let created = VideoCreated {
        video_id: video,
        owner_id: CHANNEL,
        metadata: VideoMetadata {
            title: "A new episode".into(),
            ..Default::default()
        },
    };
    publish(VideoCreated::TYPE, encode(created)).await?;
    let uploaded = VideoUploaded {
        video_id: video,
        owner_id: CHANNEL,
        size_bytes: 1_000_000,
    };
    publish(VideoUploaded::TYPE, encode(uploaded)).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ready = VideoReady {
        video_id: video,
        owner_id: CHANNEL,
        manifest_key: format!("hls/{video}/master.m3u8"),
        thumbnail_key: None,
        duration_seconds: 600.0,
        renditions: vec![],
        posters: vec![],
        storyboard: None,
    };
    // What the first and last subscribers' counts were before (earlier runs notified
    // them too).
    let first_before = unread(&http, &graphql, first_follower).await?;
    let last_before = unread(&http, &graphql, last_follower).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let load = spawn_likers(&http, &graphql, &videos, likers, stop.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = Instant::now();
    publish(VideoReady::TYPE, encode(ready)).await?;

    let (mut stored, mut first_sees, mut last_sees, mut done) = (None, None, None, None);
    while stored.is_none() || first_sees.is_none() || last_sees.is_none() || done.is_none() {
        if sent.elapsed() > Duration::from_secs(120) {
            bail!("the fan-out did not finish within 120 s");
        }
        if stored.is_none() {
            // Index probes only: the post, or the last follower's row (the fan-out writes
            // in follower order, so it is the last one). Counting the video's rows would
            // scan the table every 20 ms and slow the likes it measures.
            let done: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM notification_posts WHERE video_id = $1)
                     OR EXISTS (SELECT 1 FROM notifications
                                WHERE recipient_id = $2 AND dedupe_key = 'new_video:' || $1)",
            )
            .bind(video)
            .bind(last_follower)
            .fetch_one(&db)
            .await?;
            if done {
                stored = Some(sent.elapsed());
            }
        }
        if first_sees.is_none() && unread(&http, &graphql, first_follower).await? > first_before {
            first_sees = Some(sent.elapsed());
        }
        if last_sees.is_none() && unread(&http, &graphql, last_follower).await? > last_before {
            last_sees = Some(sent.elapsed());
        }
        if stored.is_some() && done.is_none() {
            let pending: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM notification_fanouts WHERE video_id = $1)",
            )
            .bind(video)
            .fetch_one(&db)
            .await?;
            if !pending {
                done = Some(sent.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let during = collect(load).await?;
    let mode: &str = if sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS (SELECT 1 FROM notification_posts WHERE video_id = $1)",
    )
    .bind(video)
    .fetch_one(&db)
    .await?
    {
        "fan-in"
    } else {
        "fan-out"
    };
    let s = |d: Option<Duration>| d.unwrap().as_secs_f64();
    let (b50, b99) = (percentile(&baseline, 50.0), percentile(&baseline, 99.0));
    let (d50, d99) = (percentile(&during, 50.0), percentile(&during, 99.0));
    println!(
        "mode={mode} subscribers={subscribers} stored_s={:.2} first_unread_s={:.2} \
         last_unread_s={:.2} done_s={:.2} \
         like_baseline_p50_ms={b50:.2} like_baseline_p99_ms={b99:.2} like_baseline_n={} \
         like_during_p50_ms={d50:.2} like_during_p99_ms={d99:.2} like_during_n={}",
        s(stored),
        s(first_sees),
        s(last_sees),
        s(done),
        baseline.len(),
        during.len(),
    );
    Ok(())
}

/// `user`'s `unreadNotificationCount`, through GraphQL.
async fn unread(http: &reqwest::Client, graphql: &str, user: Uuid) -> anyhow::Result<i64> {
    let answer: serde_json::Value = http
        .post(graphql)
        .header("X-User-Id", user.to_string())
        .json(&json!({ "query": "{ unreadNotificationCount }" }))
        .send()
        .await?
        .json()
        .await?;
    answer["data"]["unreadNotificationCount"]
        .as_i64()
        .with_context(|| format!("unreadNotificationCount: {answer}"))
}

fn encode<T: Event>(data: T) -> Vec<u8> {
    serde_json::to_vec(&Envelope::new(data)).expect("events serialise")
}

/// `n` viewers liking random videos as fast as they are answered until `stop`; each
/// returns its latencies in milliseconds.
fn spawn_likers(
    http: &reqwest::Client,
    graphql: &str,
    videos: &[Uuid],
    n: usize,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<anyhow::Result<Vec<f64>>>> {
    (0..n)
        .map(|i| {
            let (http, graphql, videos, stop) = (
                http.clone(),
                graphql.to_owned(),
                videos.to_vec(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut rng = Rng::new(i as u64 + 1);
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let viewer = Uuid::new_v4();
                    let video = rng.pick(&videos);
                    let started = Instant::now();
                    let answer: serde_json::Value = http
                        .post(&graphql)
                        .header("X-User-Id", viewer.to_string())
                        .json(&json!({
                            "query": "mutation($v: ID!) { likeVideo(videoId: $v) { likeCount } }",
                            "variables": { "v": video },
                        }))
                        .send()
                        .await?
                        .json()
                        .await?;
                    if answer.get("errors").is_some() {
                        bail!("likeVideo failed: {answer}");
                    }
                    latencies.push(started.elapsed().as_secs_f64() * 1000.0);
                }
                Ok(latencies)
            })
        })
        .collect()
}

async fn collect(
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<Vec<f64>>>>,
) -> anyhow::Result<Vec<f64>> {
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await??);
    }
    all.sort_by(f64::total_cmp);
    Ok(all)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i]
}
