//! Ranking benchmark: interaction events published to RabbitMQ (persistent, confirmed),
//! timed until they are visible in a Redis sorted set.
//!
//! `MODE=kino`: the ranker (a separate process started by bench/ranker/run with the same
//! QUEUE_PREFIX and REDIS_PREFIX) does the ranking, and events are published as media
//! publishes them: in packs of up to PACK events per message (events::pack).
//! `MODE=naive`: the seeds' design: one message per event, and this process runs the
//! seeds' consumer itself: one message at a time, one ZINCRBY, one ack.
//!
//! `SKEW`: which video each event is about, among 20,000. `zipf` (default): the k-th most
//! popular video gets a share proportional to 1/k, the usual model of video popularity
//! (the top video ~9.5 % of events, the top 100 ~50 %); `uniform`: every video alike, the
//! worst case for summing per video.
//!
//! Two phases per mode, printed as one line `mode events_per_s p50_ms p99_ms max_ms`:
//! 1. throughput: EVENTS events published as fast as the broker confirms them; the time
//!    from the first publish until the last event is visible.
//! 2. latency, after a pause of SETTLE_SECS: RATE events/s offered for LATENCY_SECS; every
//!    50th event is a probe (a video of its own) whose publish-to-visible time is taken by
//!    polling ZMSCORE.
//!
//! Environment: AMQP_URL, REDIS_URL, QUEUE_PREFIX, REDIS_PREFIX, MODE, SKEW (zipf),
//! EVENTS (200000), RATE (20000), LATENCY_SECS (10), SETTLE_SECS (5: the pause between the
//! phases), PACK (100), NAIVE_PREFETCH (100), LATENCY_DUMP (a file for each probe's publish
//! time and latency, ms; unset: none).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use events::{
    Envelope,
    batch::BatchPublisher,
    consumer::QueueSpec,
    interaction::{Action, Interaction, ViewerKey, binding},
    topology::INTERACTIONS,
    trending::{Scope, Window, trending_key},
};
use futures::StreamExt;
use kino_bench::{Rng, env_or};
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use uuid::Uuid;

/// Probes not yet seen, by member, with their publish time.
type Pending = Arc<Mutex<HashMap<String, Instant>>>;

struct Load {
    publisher: BatchPublisher,
    prefix: String,
    rng: Rng,
    videos: Vec<(Uuid, Uuid, String)>,
    /// Cumulative popularity of `videos` (last = 1.0), for drawing which one an event is
    /// about.
    popularity: Vec<f64>,
}

/// Cumulative shares of `n` videos: Zipf (share of the k-th ∝ 1/k) or uniform.
fn popularity(n: usize, zipf: bool) -> Vec<f64> {
    let weights: Vec<f64> = (1..=n)
        .map(|k| if zipf { 1.0 / k as f64 } else { 1.0 })
        .collect();
    let total: f64 = weights.iter().sum();
    let mut sum = 0.0;
    weights
        .iter()
        .map(|w| {
            sum += w / total;
            sum
        })
        .collect()
}

impl Load {
    fn event(&mut self, probe: Option<Uuid>) -> Envelope<Interaction> {
        let (video, owner, category) = match probe {
            Some(id) => (id, Uuid::nil(), "probe".to_owned()),
            None => {
                let u = self.rng.next_u64() as f64 / u64::MAX as f64;
                let i = self.popularity.partition_point(|&c| c < u);
                self.videos[i.min(self.videos.len() - 1)].clone()
            }
        };
        // Distinct viewers, so views are not deduplicated away.
        let action = match self.rng.below(10) {
            0..6 => Action::View,
            6..8 => Action::Like,
            8 => Action::Share,
            _ => Action::Watch { seconds: 30 },
        };
        Envelope::new(Interaction {
            video_id: video,
            owner_id: owner,
            category: Some(category),
            viewer: ViewerKey::user(Uuid::new_v4()),
            action,
        })
    }

    /// Publishes without waiting for the confirm (it is awaited in the background).
    async fn send(&self, envelope: &Envelope<Interaction>) {
        let key = envelope.data.routing_key(&self.prefix);
        loop {
            match self.publisher.try_publish(key.clone(), envelope) {
                Ok(confirmed) => {
                    tokio::spawn(async move {
                        if let Err(e) = confirmed.await {
                            eprintln!("publish failed: {e}");
                        }
                    });
                    return;
                }
                Err(_) => tokio::time::sleep(Duration::from_micros(200)).await,
            }
        }
    }
}

/// Polls `key` for the pending probes; records each one's latency when it appears.
fn spawn_poller(
    redis: platform::redis::Redis,
    key: String,
    pending: Pending,
    seen: Arc<Mutex<Vec<(Instant, Duration)>>>,
) {
    tokio::spawn(async move {
        loop {
            let members: Vec<String> = pending.lock().unwrap().keys().cloned().collect();
            if !members.is_empty() {
                let mut conn = redis.clone();
                let scores: Vec<Option<f64>> = redis::cmd("ZMSCORE")
                    .arg(&key)
                    .arg(&members)
                    .query_async(&mut conn)
                    .await
                    .unwrap_or_default();
                let now = Instant::now();
                let mut pending = pending.lock().unwrap();
                for (member, score) in members.iter().zip(scores) {
                    if score.is_some()
                        && let Some(sent) = pending.remove(member)
                    {
                        seen.lock().unwrap().push((sent, now - sent));
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
}

/// The seeds' consumer: one message at a time, one ZINCRBY of its weight, one ack.
fn spawn_naive(
    rabbit: Arc<events::Rabbit>,
    prefix: String,
    redis: platform::redis::Redis,
    key: String,
) {
    let prefetch: u16 = env_or("NAIVE_PREFETCH", 100);
    tokio::spawn(async move {
        let channel = rabbit.channel().await.unwrap();
        let spec = QueueSpec::new(format!("{prefix}naive.interactions"))
            .bind(INTERACTIONS, &binding(&prefix))
            .expires(Duration::from_secs(600));
        spec.declare(&channel).await.unwrap();
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await
            .unwrap();
        let mut deliveries = channel
            .basic_consume(
                spec.name.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                Default::default(),
            )
            .await
            .unwrap();
        let mut conn = redis.clone();
        while let Some(Ok(delivery)) = deliveries.next().await {
            let envelope: Envelope<Interaction> = serde_json::from_slice(&delivery.data).unwrap();
            let weight = match envelope.data.action {
                Action::View => 1.0,
                Action::Like => 5.0,
                Action::Share => 10.0,
                _ => 3.0,
            };
            let _: f64 = redis::cmd("ZINCRBY")
                .arg(&key)
                .arg(weight)
                .arg(envelope.data.video_id.to_string())
                .query_async(&mut conn)
                .await
                .unwrap();
            delivery
                .acker
                .ack(BasicAckOptions::default())
                .await
                .unwrap();
        }
    });
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let amqp: String = env_or(
        "AMQP_URL",
        "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned(),
    );
    let redis_url: String = env_or("REDIS_URL", "redis://127.0.0.1:6379".to_owned());
    let prefix: String = env_or("QUEUE_PREFIX", "bench-ranker.".to_owned());
    let redis_prefix: String = env_or("REDIS_PREFIX", "bench:ranker:".to_owned());
    let mode: String = env_or("MODE", "kino".to_owned());
    let events: usize = env_or("EVENTS", 200_000);
    let rate: usize = env_or("RATE", 20_000);
    let latency_secs: u64 = env_or("LATENCY_SECS", 10);
    let settle_secs: u64 = env_or("SETTLE_SECS", 5);
    let skew: String = env_or("SKEW", "zipf".to_owned());
    let zipf = match skew.as_str() {
        "zipf" => true,
        "uniform" => false,
        other => anyhow::bail!("SKEW must be zipf or uniform, not {other}"),
    };
    // The seeds publish one message per event; Kino's publisher packs what is waiting.
    let per_message = if mode == "naive" {
        1
    } else {
        env_or("PACK", 100)
    };

    let rabbit = events::Rabbit::new(&amqp, "ranker-load");
    let redis = platform::redis::connect(&redis_url).context("REDIS_URL")?;
    let key = match mode.as_str() {
        "kino" => trending_key(&redis_prefix, Window::Day, &Scope::Global),
        "naive" => format!("{redis_prefix}naive:global"),
        other => anyhow::bail!("MODE must be kino or naive, not {other}"),
    };
    if mode == "naive" {
        spawn_naive(rabbit.clone(), prefix.clone(), redis.clone(), key.clone());
        tokio::time::sleep(Duration::from_secs(1)).await; // its queue is bound
    }
    let mut rng = Rng::new(42);
    let owners: Vec<Uuid> = (0..1000).map(|_| Uuid::new_v4()).collect();
    let categories = ["music", "games", "news", "howto", "sports", "film"];
    let videos: Vec<_> = (0..20_000)
        .map(|_| {
            (
                Uuid::new_v4(),
                *rng.pick(&owners),
                (*rng.pick(&categories)).to_owned(),
            )
        })
        .collect();
    let mut load = Load {
        publisher: BatchPublisher::spawn(rabbit.clone(), 20_000, 1000, per_message),
        prefix,
        rng,
        popularity: popularity(videos.len(), zipf),
        videos,
    };
    let pending: Pending = Arc::default();
    let seen = Arc::new(Mutex::new(Vec::new()));
    spawn_poller(redis.clone(), key.clone(), pending.clone(), seen.clone());

    // 1. Throughput: publish EVENTS as fast as confirms allow; the last one is a probe.
    let started = Instant::now();
    for i in 0..events {
        let probe = (i + 1 == events).then(Uuid::new_v4);
        let envelope = load.event(probe);
        if let Some(id) = probe {
            pending
                .lock()
                .unwrap()
                .insert(id.to_string(), Instant::now());
        }
        load.send(&envelope).await;
    }
    let published = started.elapsed();
    while !pending.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let total = started.elapsed();
    let throughput = events as f64 / total.as_secs_f64();
    eprintln!(
        "{mode} ({skew}): {events} events published in {published:.2?}, all visible after {total:.2?}"
    );
    seen.lock().unwrap().clear();
    // The last probe is visible, but the broker and Redis are still settling the flood
    // (acknowledgements, the other batch in flight); a steady rate starts once they have.
    tokio::time::sleep(Duration::from_secs(settle_secs)).await;

    // 2. Latency at a steady offered rate.
    let n = rate * latency_secs as usize;
    let started = Instant::now();
    for i in 0..n {
        let probe = (i % 50 == 0).then(Uuid::new_v4);
        let envelope = load.event(probe);
        if let Some(id) = probe {
            pending
                .lock()
                .unwrap()
                .insert(id.to_string(), Instant::now());
        }
        load.send(&envelope).await;
        if i % 200 == 199 {
            let due = started + Duration::from_secs_f64((i + 1) as f64 / rate as f64);
            tokio::time::sleep_until(due.into()).await;
        }
    }
    let offered = n as f64 / started.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !pending.lock().unwrap().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let lost = pending.lock().unwrap().len();
    let probes = seen.lock().unwrap().clone();
    if let Some(path) = std::env::var_os("LATENCY_DUMP") {
        // One line per probe: when it was published (ms into the phase) and its latency.
        let lines: String = (probes.iter())
            .map(|(sent, latency)| {
                let at = sent.saturating_duration_since(started).as_secs_f64() * 1000.0;
                format!("{at:.1} {:.1}\n", latency.as_secs_f64() * 1000.0)
            })
            .collect();
        std::fs::write(path, lines)?;
    }
    let mut latencies: Vec<Duration> = probes.iter().map(|(_, latency)| *latency).collect();
    latencies.sort();
    eprintln!(
        "{mode}: offered {offered:.0} events/s, {} probes, {lost} not visible within 120 s",
        latencies.len()
    );
    println!(
        "{mode} {throughput:.0} {:.1} {:.1} {:.1} {offered:.0}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
    );
    Ok(())
}
