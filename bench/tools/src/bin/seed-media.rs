//! Fills a realistic catalogue for the media benchmarks, through the real entry points:
//! users registered with auth, videos delivered as video.* events to media's catalogue
//! queue, likes and comments made with GraphQL mutations.
//!
//! Idempotent in the large: each stage is skipped when the catalogue already has it, so a
//! second bench run starts at once.
//!
//! Environment: AUTH_URL, MEDIA_URL (direct to the service; the viewer is given in
//! X-User-Id as the gateway would), AMQP_URL, MEDIA_DATABASE_URL, CATALOGUE_QUEUE,
//! SEED_USERS (10000), SEED_VIDEOS (100000), SEED_LIKES (50000), SEED_COMMENTS (10000).
//! Prints the user ids file path it wrote (one id per line) for the load scenarios.

use std::{sync::Arc, time::Duration};

use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use events::{
    Envelope, Publisher, Rabbit,
    video::{VideoCreated, VideoMetadata, VideoReady},
};
use futures::{StreamExt, stream};
use kino_bench::{Rng, env_or, video_metadata};
use serde_json::json;
use uuid::Uuid;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let auth = env_or("AUTH_URL", "http://127.0.0.1:8081".to_string());
    let media = env_or("MEDIA_URL", "http://127.0.0.1:8082".to_string());
    let amqp = env_or(
        "AMQP_URL",
        "amqp://guest:guest@127.0.0.1:5672/%2f".to_string(),
    );
    let database = env_or(
        "MEDIA_DATABASE_URL",
        "postgres://postgres@127.0.0.1:5432/media".to_string(),
    );
    let queue = env_or("CATALOGUE_QUEUE", "media.catalogue".to_string());
    let users_file = env_or("USERS_FILE", "users.txt".to_string());
    let n_users: usize = env_or("SEED_USERS", 10_000);
    let n_videos: usize = env_or("SEED_VIDEOS", 100_000);
    let n_likes: usize = env_or("SEED_LIKES", 50_000);
    let n_comments: usize = env_or("SEED_COMMENTS", 10_000);
    let http = reqwest::Client::new();
    let db = sqlx::PgPool::connect(&database)
        .await
        .context("media database")?;

    // 1. Users, through auth (argon2 makes this the slow stage: ~hash time × N / cores).
    let users = register_users(&http, &auth, n_users, &users_file).await?;
    eprintln!("users: {}", users.len());

    // 2. Videos, as events on media's catalogue queue.
    let have: i64 = sqlx::query_scalar("SELECT count(*) FROM videos WHERE status = 'ready'")
        .fetch_one(&db)
        .await?;
    if (have as usize) < n_videos {
        let rabbit = Rabbit::new(&amqp, "seed");
        // Media declares its queue when its consumer starts; do it too, so nothing published
        // before that is dropped (with the expiry media gives a prefixed queue, or the
        // broker refuses the second declaration).
        let mut spec = events::QueueSpec::new(queue.clone());
        if queue != "media.catalogue" {
            spec = spec.expires(events::queue::PREFIXED_QUEUE_EXPIRY);
        }
        spec.declare(&rabbit.channel().await?).await?;
        let publisher = Arc::new(Publisher::new(rabbit));
        let mut rng = Rng::new(42 + have as u64);
        let batch: Vec<(Uuid, Uuid, VideoMetadata)> = (have as usize..n_videos)
            .map(|_| (Uuid::now_v7(), *rng.pick(&users), video_metadata(&mut rng)))
            .collect();
        let total = batch.len();
        stream::iter(batch)
            .map(|(video_id, owner_id, metadata)| {
                let publisher = publisher.clone();
                let queue = queue.clone();
                async move {
                    deliver(
                        &publisher,
                        &queue,
                        &Envelope::new(VideoCreated {
                            video_id,
                            owner_id,
                            metadata,
                        }),
                    )
                    .await?;
                    let ready = VideoReady {
                        video_id,
                        owner_id,
                        manifest_key: format!("hls/{video_id}/master.m3u8"),
                        thumbnail_key: Some(format!("hls/{video_id}/thumbnail.jpg")),
                        duration_seconds: 60.0,
                        renditions: vec![],
                        posters: vec![],
                        storyboard: None,
                    };
                    deliver(&publisher, &queue, &Envelope::new(ready)).await
                }
            })
            .buffer_unordered(32)
            .collect::<Vec<anyhow::Result<()>>>()
            .await
            .into_iter()
            .collect::<anyhow::Result<Vec<()>>>()?;
        eprintln!("published {total} videos; waiting for media to apply them");
        loop {
            let ready: i64 =
                sqlx::query_scalar("SELECT count(*) FROM videos WHERE status = 'ready'")
                    .fetch_one(&db)
                    .await?;
            if ready as usize >= n_videos {
                break;
            }
            eprintln!("  {ready}/{n_videos}");
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    }
    let videos: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM videos WHERE status = 'ready' ORDER BY published_at DESC LIMIT 20000",
    )
    .fetch_all(&db)
    .await?;

    // 3. Likes and 4. comments, through GraphQL; skewed towards the newest videos (those on
    // the first feed pages), as real traffic is.
    let likes: i64 = sqlx::query_scalar("SELECT count(*) FROM likes")
        .fetch_one(&db)
        .await?;
    let graphql = format!("{media}/media/graphql");
    if (likes as usize) < n_likes {
        let mut rng = Rng::new(7 + likes as u64);
        let ops: Vec<(Uuid, Uuid)> = (likes as usize..n_likes)
            .map(|_| {
                let user = *rng.pick(&users);
                let upto = rng.below(videos.len()) + 1;
                (user, videos[rng.below(upto)])
            })
            .collect();
        run_mutations(
            &http,
            &graphql,
            ops,
            "mutation($v: ID!) { likeVideo(videoId: $v) { id } }",
            |_| json!({}),
        )
        .await?;
    }
    let comments: i64 =
        sqlx::query_scalar("SELECT coalesce(sum(comments_count), 0)::bigint FROM videos")
            .fetch_one(&db)
            .await?;
    if (comments as usize) < n_comments {
        let mut rng = Rng::new(11 + comments as u64);
        let ops: Vec<(Uuid, Uuid)> = (comments as usize..n_comments)
            .map(|_| {
                let user = *rng.pick(&users);
                let upto = rng.below(videos.len()) + 1;
                (user, videos[rng.below(upto)])
            })
            .collect();
        run_mutations(
            &http,
            &graphql,
            ops,
            "mutation($v: ID!, $b: String!) { addComment(videoId: $v, body: $b) { id } }",
            |v| json!({ "b": format!("Great video about {v}!") }),
        )
        .await?;
    }
    eprintln!("seeded");
    Ok(())
}

async fn deliver<T: events::Event>(
    publisher: &Publisher,
    queue: &str,
    envelope: &Envelope<T>,
) -> anyhow::Result<()> {
    let payload = serde_json::to_vec(envelope)?;
    publisher
        .publish_raw("", queue, &envelope.id.to_string(), &payload)
        .await?;
    Ok(())
}

/// Registers `bench{i}` users (skipping existing ones) and returns all their ids.
async fn register_users(
    http: &reqwest::Client,
    auth: &str,
    n: usize,
    file: &str,
) -> anyhow::Result<Vec<Uuid>> {
    if let Ok(text) = std::fs::read_to_string(file) {
        let ids: Vec<Uuid> = text.lines().filter_map(|l| l.parse().ok()).collect();
        if ids.len() >= n {
            return Ok(ids[..n].to_vec());
        }
    }
    let ids: Vec<anyhow::Result<Uuid>> = stream::iter(0..n)
        .map(|i| async move {
            let username = format!("bench{i}");
            let response = http
                .post(format!("{auth}/auth/register"))
                .json(&json!({ "username": username, "email": format!("{username}@bench.example"), "password": "bench-password-1", "display_name": format!("Bench User {i}") }))
                .send()
                .await?;
            if response.status() == 201 {
                let body: serde_json::Value = response.json().await?;
                return Ok(body["id"].as_str().context("id")?.parse()?);
            }
            if response.status() != 409 {
                bail!("register {username}: {}", response.status());
            }
            // Already there: find the id through a login.
            let body: serde_json::Value = http
                .post(format!("{auth}/auth/login"))
                .json(&json!({ "login": username, "password": "bench-password-1" }))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let token = body["access_token"].as_str().context("token")?;
            let payload = token.split('.').nth(1).context("jwt")?;
            let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload)?)?;
            Ok(claims["sub"].as_str().context("sub")?.parse()?)
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let ids = ids.into_iter().collect::<anyhow::Result<Vec<Uuid>>>()?;
    std::fs::write(
        file,
        ids.iter().map(|id| format!("{id}\n")).collect::<String>(),
    )?;
    Ok(ids)
}

async fn run_mutations(
    http: &reqwest::Client,
    url: &str,
    ops: Vec<(Uuid, Uuid)>,
    query: &str,
    extra: impl Fn(Uuid) -> serde_json::Value,
) -> anyhow::Result<()> {
    let total = ops.len();
    let results: Vec<anyhow::Result<()>> = stream::iter(ops)
        .map(|(user, video)| {
            let mut variables = extra(video);
            variables["v"] = json!(video);
            async move {
                let body: serde_json::Value = http
                    .post(url)
                    .header("x-user-id", user.to_string())
                    .json(&json!({ "query": query, "variables": variables }))
                    .send()
                    .await?
                    .json()
                    .await?;
                if let Some(errors) = body.get("errors") {
                    bail!("{errors}");
                }
                Ok(())
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let failed = results.iter().filter(|r| r.is_err()).count();
    eprintln!("{query}: {} ok, {failed} failed", total - failed);
    Ok(())
}
