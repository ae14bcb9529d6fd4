//! Webhook deliveries under load: events published as Kino's services publish them, to a
//! running webhooks service, delivered to a fast receiver in this process.
//!
//!   webhook-load <amqp url> <queue prefix> <webhooks url> <events> <per second> <endpoints>
//!
//! 1. Starts a receiver on loopback that answers every POST with 204 and notes when each
//!    `webhook-id` first arrived, and measures what it takes without Kino in between
//!    (64 connections posting for 3 s): the ceiling for the figures below.
//! 2. Registers `endpoints` endpoints, each of its own owner, on the webhooks service
//!    (straight, with `X-User-Id`, as the gateway would send it), for `video.failed`.
//! 3. Publishes `events` `video.failed` events on `video.events` under `queue prefix`,
//!    spread over the owners, at `per second` (0: as fast as confirms allow, 64 in
//!    flight), and waits until every one was delivered.
//!
//! Prints "receiver_rps deliveries_per_s p50_ms p99_ms max_ms": the throughput from the
//! first publish to the last delivery, and the time from each event's publish to its
//! delivery.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use axum::{Router, extract::State, http::HeaderMap, http::StatusCode, routing::post};
use events::{Envelope, video::VideoFailed};
use serde_json::json;
use uuid::Uuid;

type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, amqp, prefix, webhooks, count, rate, endpoints] = args.as_slice() else {
        bail!(
            "usage: webhook-load <amqp url> <queue prefix> <webhooks url> <events> <per second> <endpoints>"
        );
    };
    let count: usize = count.parse().context("events")?;
    let rate: f64 = rate.parse().context("per second")?;
    let endpoints: usize = endpoints.parse().context("endpoints")?;

    let arrivals: Arrivals = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let receiver = format!("http://{}", listener.local_addr()?);
    let app = Router::new()
        .route("/hook", post(receive))
        .route("/ceiling", post(|| async { StatusCode::NO_CONTENT }))
        .with_state(arrivals.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let ceiling = ceiling(&format!("{receiver}/ceiling")).await;

    let http = reqwest::Client::new();
    let owners: Vec<Uuid> = (0..endpoints).map(|_| Uuid::now_v7()).collect();
    for owner in &owners {
        let response = http
            .post(format!("{webhooks}/webhooks/endpoints"))
            .header("x-user-id", owner.to_string())
            .json(&json!({ "url": format!("{receiver}/hook"), "event_types": ["video.failed"] }))
            .send()
            .await?;
        if response.status() != 201 {
            bail!("registering an endpoint: {}", response.text().await?);
        }
    }

    let rabbit = events::Rabbit::new(amqp, "webhook-load");
    let publisher = Arc::new(events::Publisher::new(rabbit));
    let routing_key = events::Namespace::new(prefix.as_str()).routing_key("video.failed");
    let published: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let in_flight = Arc::new(tokio::sync::Semaphore::new(64));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(count);
    for n in 0..count {
        if rate > 0.0 {
            let due = started + Duration::from_secs_f64(n as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let envelope = Envelope::new(VideoFailed {
            video_id: Uuid::now_v7(),
            owner_id: owners[n % owners.len()],
            reason: "bench".into(),
        });
        let body = serde_json::to_vec(&envelope)?;
        let id = envelope.id.to_string();
        let permit = in_flight.clone().acquire_owned().await?;
        let (publisher, published, routing_key) =
            (publisher.clone(), published.clone(), routing_key.clone());
        tasks.push(tokio::spawn(async move {
            published.lock().unwrap().insert(id.clone(), Instant::now());
            let sent = publisher
                .publish_raw(events::topology::VIDEO_EVENTS, &routing_key, &id, &body)
                .await;
            drop(permit);
            sent
        }));
    }
    for task in tasks {
        task.await??;
    }

    let deadline = Instant::now() + Duration::from_secs(300);
    while arrivals.lock().unwrap().len() < count {
        if Instant::now() > deadline {
            bail!(
                "only {} of {count} delivered within 300 s",
                arrivals.lock().unwrap().len()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let arrivals = arrivals.lock().unwrap();
    let published = published.lock().unwrap();
    let mut latencies: Vec<f64> = published
        .iter()
        .map(|(id, at)| {
            let arrived = arrivals.get(id).expect("every event delivered");
            arrived.saturating_duration_since(*at).as_secs_f64() * 1000.0
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let last = arrivals.values().max().copied().unwrap_or(started);
    let throughput = count as f64 / last.duration_since(started).as_secs_f64();
    let pick = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "{ceiling:.0} {throughput:.0} {:.1} {:.1} {:.1}",
        pick(0.5),
        pick(0.99),
        latencies.last().copied().unwrap_or(0.0)
    );
    Ok(())
}

/// Notes when each webhook-id first arrived.
async fn receive(State(arrivals): State<Arrivals>, headers: HeaderMap) -> StatusCode {
    let now = Instant::now();
    if let Some(id) = headers.get("webhook-id").and_then(|v| v.to_str().ok()) {
        arrivals.lock().unwrap().entry(id.to_owned()).or_insert(now);
    }
    StatusCode::NO_CONTENT
}

/// Requests per second the receiver answers with nothing in between: 64 connections,
/// each posting a webhook-sized body for 3 s.
async fn ceiling(url: &str) -> f64 {
    let http = reqwest::Client::new();
    let body = vec![b'x'; 300];
    let until = Instant::now() + Duration::from_secs(3);
    let workers: Vec<_> = (0..64)
        .map(|_| {
            let (http, url, body) = (http.clone(), url.to_owned(), body.clone());
            tokio::spawn(async move {
                let mut done = 0u64;
                while Instant::now() < until {
                    if http.post(&url).body(body.clone()).send().await.is_ok() {
                        done += 1;
                    }
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for worker in workers {
        total += worker.await.unwrap_or(0);
    }
    total as f64 / 3.0
}
