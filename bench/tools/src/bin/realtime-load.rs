//! Load generator for live comments (bench/realtime/run).
//!
//! Opens CONNECTIONS graphql-transport-ws connections to one server, each subscribed to
//! `commentEvents` of one of VIDEOS videos (spread evenly), then posts RATE comments per
//! second through media's GraphQL API for SECONDS (after WARMUP seconds), round-robin over
//! the videos. Every comment's body is the time it was posted (Unix microseconds); every
//! receiving connection computes post → receipt from it. Only comments posted inside the
//! measured window count.
//!
//! Environment: WS_URL (the subscription endpoint under test), MEDIA_URL (where comments
//! are posted, with the poster in X-User-Id as the gateway would send it), VIDEOS_FILE
//! (video ids, one a line; when missing, VIDEOS (100) public videos are created through
//! the catalogue queue CATALOGUE_QUEUE on AMQP_URL and their ids written there),
//! CONNECTIONS (10000), RATE (200), SECONDS (20), WARMUP (3),
//! OPEN_CONCURRENCY (256), MEDIA_PID (to report the server's resident memory). Prints one
//! JSON object.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use futures::{SinkExt, StreamExt, stream};
use kino_bench::env_or;
use serde_json::json;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::{
    Message, client::IntoClientRequest, protocol::WebSocketConfig,
};
use uuid::Uuid;

fn now_micros() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000) as i64
}

/// Measurement window, in Unix microseconds of post time.
struct Window {
    start: AtomicU64,
    end: AtomicU64,
}

impl Window {
    fn contains(&self, at: i64) -> bool {
        let at = at as u64;
        at >= self.start.load(Ordering::Relaxed) && at < self.end.load(Ordering::Relaxed)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let ws_url: String = env_or("WS_URL", "ws://127.0.0.1:8082/media/graphql/ws".to_string());
    let media_url: String = env_or("MEDIA_URL", "http://127.0.0.1:8082".to_string());
    let videos_file: String = env_or("VIDEOS_FILE", String::new());
    let connections: usize = env_or("CONNECTIONS", 10_000);
    let rate: f64 = env_or("RATE", 200.0);
    let seconds: u64 = env_or("SECONDS", 20);
    let warmup: u64 = env_or("WARMUP", 3);
    let open_concurrency: usize = env_or("OPEN_CONCURRENCY", 256);
    if !std::path::Path::new(&videos_file).exists() {
        seed_videos(&videos_file, &media_url, env_or("VIDEOS", 100)).await?;
    }
    let videos: Vec<String> = std::fs::read_to_string(&videos_file)
        .with_context(|| format!("VIDEOS_FILE={videos_file}"))?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().to_owned())
        .collect();
    anyhow::ensure!(!videos.is_empty(), "no videos in {videos_file}");

    // 1. Connect and subscribe everyone.
    let window = Arc::new(Window {
        start: AtomicU64::new(u64::MAX),
        end: AtomicU64::new(u64::MAX),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let latencies: Arc<Mutex<Vec<u32>>> = Arc::default();
    let errors = Arc::new(AtomicU64::new(0));
    let rss_before = server_rss();
    let opened = Instant::now();
    let readers: Vec<_> = stream::iter(0..connections)
        .map(|i| {
            let url = ws_url.clone();
            let video = videos[i % videos.len()].clone();
            async move { open(&url, &video).await }
        })
        .buffer_unordered(open_concurrency)
        .collect()
        .await;
    let mut tasks = Vec::new();
    for socket in readers {
        let socket = match socket {
            Ok(socket) => socket,
            Err(e) => {
                eprintln!("connect: {e:#}");
                errors.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        let (window, stop, latencies, errors) = (
            window.clone(),
            stop.clone(),
            latencies.clone(),
            errors.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            read(socket, &window, &stop, &mut mine, &errors).await;
            latencies.lock().await.extend(mine);
        }));
    }
    let connected = tasks.len();
    eprintln!(
        "{connected} connections subscribed in {:.1} s",
        opened.elapsed().as_secs_f64()
    );
    // Let the last SUBSCRIBEs reach Redis.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_connected = server_rss();
    let redis_channels = redis_channels();

    // 2. Post comments at RATE for WARMUP + SECONDS.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let poster = Uuid::now_v7().to_string();
    let posted = Arc::new(AtomicU64::new(0));
    let post_errors = Arc::new(AtomicU64::new(0));
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let begin = Instant::now();
    let total = Duration::from_secs(warmup + seconds);
    let in_flight = Arc::new(tokio::sync::Semaphore::new(128));
    let mut n = 0usize;
    let mut posted_in_window = 0u64;
    loop {
        ticker.tick().await;
        let elapsed = begin.elapsed();
        if elapsed >= total {
            window.end.store(now_micros() as u64, Ordering::Relaxed);
            break;
        }
        if elapsed >= Duration::from_secs(warmup)
            && window.start.load(Ordering::Relaxed) == u64::MAX
        {
            window.start.store(now_micros() as u64, Ordering::Relaxed);
        }
        let video = videos[n % videos.len()].clone();
        n += 1;
        let at = now_micros();
        if window.contains(at) {
            posted_in_window += 1;
        }
        let permit = in_flight.clone().acquire_owned().await?;
        let (http, media_url, poster, posted, post_errors) = (
            http.clone(),
            media_url.clone(),
            poster.clone(),
            posted.clone(),
            post_errors.clone(),
        );
        tokio::spawn(async move {
            let body = json!({
                "query": "mutation($v: ID!, $b: String!) { addComment(videoId: $v, body: $b) { id } }",
                "variables": { "v": video, "b": format!("t={at}") },
            });
            let ok = http
                .post(format!("{media_url}/media/graphql"))
                .header("x-user-id", &poster)
                .json(&body)
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success());
            match ok {
                Some(response) => {
                    let text = response.text().await.unwrap_or_default();
                    if text.contains("\"errors\"") {
                        eprintln!("post: {text}");
                        post_errors.fetch_add(1, Ordering::Relaxed);
                    } else {
                        posted.fetch_add(1, Ordering::Relaxed);
                    }
                }
                None => {
                    post_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            drop(permit);
        });
    }
    // Let what was posted arrive, then stop the readers.
    let _ = in_flight.acquire_many(128).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }

    let mut latencies = std::mem::take(&mut *latencies.lock().await);
    latencies.sort_unstable();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies[i] as f64 / 1000.0
    };
    let delivered = latencies.len() as u64;
    let per_video = connected as f64 / videos.len() as f64;
    let expected = posted_in_window as f64 * per_video;
    println!(
        "{}",
        json!({
            "connections": connected,
            "videos": videos.len(),
            "rate": rate,
            "seconds": seconds,
            "posted_in_window": posted_in_window,
            "post_errors": post_errors.load(Ordering::Relaxed),
            "delivered": delivered,
            "expected": expected.round(),
            "deliveries_per_s": delivered as f64 / seconds as f64,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "max_ms": pct(1.0),
            "errors": errors.load(Ordering::Relaxed),
            "redis_channels": redis_channels,
            "server_rss_mib_before": rss_before.map(|b| b as f64 / 1048576.0),
            "server_rss_mib_connected": rss_connected.map(|b| b as f64 / 1048576.0),
            "server_rss_mib_per_1000": rss_before.zip(rss_connected).map(|(a, b)| {
                (b.saturating_sub(a)) as f64 / 1048576.0 / (connected as f64 / 1000.0)
            }),
        })
    );
    Ok(())
}

/// Each client's read chunk (the server uses the same, see media's `realtime/protocol.rs`).
const READ_BUFFER_BYTES: usize = 4 * 1024;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects, initialises and subscribes one client.
async fn open(url: &str, video: &str) -> anyhow::Result<Socket> {
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
    // tungstenite zero-fills its read buffer (128 KiB by default) on every read: at
    // 20,000 frames/s that memset was the load generator's largest cost (perf), taking
    // CPU from the server under test on the same cores. Frames here are ~150 bytes.
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES);
    let (mut socket, _) =
        tokio_tungstenite::connect_async_with_config(request, Some(config), false).await?;
    socket
        .send(Message::Text(
            json!({ "type": "connection_init", "payload": {} })
                .to_string()
                .into(),
        ))
        .await?;
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(t))) if t.as_str().contains("connection_ack") => break,
            Some(Ok(Message::Text(_))) => continue,
            other => anyhow::bail!("no ack: {other:?}"),
        }
    }
    let subscribe = json!({
        "id": "1", "type": "subscribe",
        "payload": {
            "query": "subscription($v: ID!) { commentEvents(videoId: $v) { comment { body } } }",
            "variables": { "v": video },
        },
    });
    socket
        .send(Message::Text(subscribe.to_string().into()))
        .await?;
    Ok(socket)
}

/// Reads until stopped, recording post → receipt for comments posted in the window.
async fn read(
    mut socket: Socket,
    window: &Window,
    stop: &AtomicBool,
    latencies: &mut Vec<u32>,
    errors: &AtomicU64,
) {
    while !stop.load(Ordering::Relaxed) {
        let frame = match tokio::time::timeout(Duration::from_millis(500), socket.next()).await {
            Err(_) => continue,
            Ok(None) => {
                errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(Some(Err(_))) => {
                errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Message::Text(text) = frame else { continue };
        let text = text.as_str();
        if text.contains("\"ping\"") {
            let _ = socket
                .send(Message::Text(r#"{"type":"pong"}"#.into()))
                .await;
            continue;
        }
        // Cheap extraction of "t=<micros>" (a JSON parse per message would make the load
        // generator, not the server, the bottleneck).
        let Some(at) = text
            .find("t=")
            .and_then(|i| text[i + 2..].split('"').next())
            .and_then(|s| s.parse::<i64>().ok())
        else {
            if text.contains("\"error\"") || text.contains("RESYNC") {
                eprintln!("unexpected: {text}");
                errors.fetch_add(1, Ordering::Relaxed);
            }
            continue;
        };
        if window.contains(at) {
            let micros = (now_micros() - at).clamp(0, u32::MAX as i64) as u32;
            latencies.push(micros);
        }
    }
    let _ = socket.close(None).await;
}

/// Creates `n` ready public videos through media's catalogue queue (as the video service's
/// events would) and writes their ids to `path` once media shows them all.
async fn seed_videos(path: &str, media_url: &str, n: usize) -> anyhow::Result<()> {
    use events::{
        Envelope, Publisher, Rabbit,
        video::{VideoCreated, VideoMetadata, VideoReady},
    };
    let amqp: String = env_or(
        "AMQP_URL",
        "amqp://guest:guest@127.0.0.1:5672/%2f".to_string(),
    );
    let queue: String = env_or("CATALOGUE_QUEUE", "media.catalogue".to_string());
    let publisher = Publisher::new(Rabbit::new(&amqp, "bench-realtime"));
    let owner = Uuid::now_v7();
    let mut ids = Vec::new();
    for i in 0..n {
        let video_id = Uuid::now_v7();
        let created = Envelope::new(VideoCreated {
            video_id,
            owner_id: owner,
            metadata: VideoMetadata {
                title: format!("live {i}"),
                ..Default::default()
            },
        });
        let ready = Envelope::new(VideoReady {
            video_id,
            owner_id: owner,
            manifest_key: format!("hls/{video_id}/master.m3u8"),
            thumbnail_key: None,
            duration_seconds: 60.0,
            renditions: vec![],
            posters: vec![],
            storyboard: None,
        });
        for payload in [serde_json::to_vec(&created)?, serde_json::to_vec(&ready)?] {
            publisher
                .publish_raw("", &queue, &Uuid::now_v7().to_string(), &payload)
                .await?;
        }
        ids.push(video_id.to_string());
    }
    let http = reqwest::Client::new();
    let last = ids.last().unwrap().clone();
    for _ in 0..300 {
        let body: serde_json::Value = http
            .post(format!("{media_url}/media/graphql"))
            .json(&json!({ "query": "query($id: ID!) { video(id: $id) { status } }", "variables": { "id": last } }))
            .send()
            .await?
            .json()
            .await?;
        if body["data"]["video"]["status"] == "READY" {
            std::fs::write(path, ids.join("\n") + "\n")?;
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::bail!("the catalogue did not show the seeded videos")
}

/// The server's resident memory (VmRSS, bytes), when MEDIA_PID names it.
fn server_rss() -> Option<u64> {
    let pid: u32 = std::env::var("MEDIA_PID").ok()?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Redis's count of pub/sub channels matching REDIS_CHANNEL_PATTERN, and its count of
/// clients, via redis-cli (so the figure is Redis's own, not the server's claim).
fn redis_channels() -> serde_json::Value {
    let pattern: String = env_or("REDIS_CHANNEL_PATTERN", "kino:rt:*".to_string());
    let cli = |args: &[&str]| -> Option<String> {
        let out = std::process::Command::new("redis-cli")
            .args(args)
            .output()
            .ok()?;
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let channels =
        cli(&["PUBSUB", "CHANNELS", &pattern]).map(|o| o.lines().filter(|l| !l.is_empty()).count());
    let clients = cli(&["INFO", "clients"]).and_then(|o| {
        o.lines()
            .find_map(|l| l.strip_prefix("connected_clients:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
    });
    json!({ "channels": channels, "clients": clients })
}
