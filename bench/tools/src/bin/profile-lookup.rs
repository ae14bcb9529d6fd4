//! Batch profile lookups against auth, as media makes them on a feed page whose owners are
//! all cache misses: `batch` ids per call, `concurrency` callers, for `seconds`.
//!
//!   profile-lookup grpc <auth gRPC url> <ids file> <concurrency> <seconds> [batch] [rate]
//!   profile-lookup http <auth HTTP url> <ids file> <concurrency> <seconds> [batch] [rate]
//!
//! `grpc` calls `kino.auth.v1.UserDirectory/GetProfiles` through media's own client code
//! (rpc::client: a balanced channel, a deadline, retries) and turns the answer into
//! profiles; `http` is what media did before (a reqwest client, `POST /internal/users`
//! with a JSON body, the JSON answer decoded into the same profiles), for an auth built
//! from a revision that still has it. Each call asks for `batch` ids drawn at random from
//! the file (one id per line, all existing users). Without `rate` every caller sends its
//! next call as soon as the last is answered (saturation); with it, the callers together
//! send `rate` calls per second on a fixed schedule (latency at that load).
//!
//! Prints "lookups_per_s p50_ms p99_ms max_ms".

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use rpc::{
    auth::v1::{GetProfilesRequest, user_directory_client::UserDirectoryClient},
    client::CallPolicy,
};
use time::OffsetDateTime;
use uuid::Uuid;

/// A profile as media keeps it.
#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)] // built to be decoded, as media decodes it
struct User {
    id: Uuid,
    username: String,
    display_name: Option<String>,
    bio: String,
    avatar_url: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

#[derive(Clone)]
enum Client {
    Grpc(UserDirectoryClient<tonic::transport::Channel>),
    Http(reqwest::Client, String),
}

impl Client {
    async fn lookup(&self, ids: &[Uuid]) -> anyhow::Result<Vec<User>> {
        match self {
            Self::Grpc(client) => {
                let message = GetProfilesRequest {
                    ids: ids.iter().map(Uuid::to_string).collect(),
                };
                let policy = CallPolicy {
                    deadline: Duration::from_secs(1),
                    retries: 2,
                };
                let service = "kino.auth.v1.UserDirectory";
                let answer = rpc::client::call(service, "GetProfiles", policy, true, |left| {
                    let mut client = client.clone();
                    let request = rpc::client::request(message.clone(), left);
                    async move { client.get_profiles(request).await }
                })
                .await?;
                answer
                    .profiles
                    .into_iter()
                    .map(|p| {
                        Ok(User {
                            id: Uuid::parse_str(&p.id)?,
                            username: p.username,
                            display_name: p.display_name,
                            bio: p.bio,
                            avatar_url: p.avatar_url,
                            created_at: rpc::from_timestamp(p.created_at.as_ref())
                                .context("created_at")?,
                        })
                    })
                    .collect()
            }
            Self::Http(client, url) => Ok(client
                .post(url)
                .json(&serde_json::json!({ "ids": ids }))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?),
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, mode, url, file, concurrency, seconds, rest @ ..] = args.as_slice() else {
        bail!(
            "usage: profile-lookup grpc|http <url> <ids file> <concurrency> <seconds> [batch] [rate]"
        );
    };
    let batch: usize = rest
        .first()
        .map_or(Ok(100), |b| b.parse())
        .context("batch")?;
    let rate: Option<f64> = rest.get(1).map(|r| r.parse()).transpose().context("rate")?;
    let ids: Arc<Vec<Uuid>> = Arc::new(
        std::fs::read_to_string(file)?
            .lines()
            .map(Uuid::parse_str)
            .collect::<Result<_, _>>()?,
    );
    let concurrency: usize = concurrency.parse().context("concurrency")?;
    let duration = Duration::from_secs_f64(seconds.parse().context("seconds")?);
    let client = match mode.as_str() {
        "grpc" => Client::Grpc(UserDirectoryClient::new(rpc::client::balanced_channel(
            url,
        )?)),
        "http" => Client::Http(
            reqwest::Client::builder()
                .timeout(Duration::from_secs(3))
                .build()?,
            format!("{}/internal/users", url.trim_end_matches('/')),
        ),
        other => bail!("unknown mode {other}"),
    };
    // Warm up: connections open, auth's pool and caches filled.
    for _ in 0..20 {
        check(&client, &ids, batch, 0).await?;
    }
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|worker| {
            let (client, ids) = (client.clone(), ids.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut round = worker;
                // Paced: this caller's calls are `concurrency / rate` apart, offset by worker.
                let interval = rate.map(|r| Duration::from_secs_f64(concurrency as f64 / r));
                let mut next = started
                    + interval.map_or(Duration::ZERO, |i| {
                        i.mul_f64(worker as f64 / concurrency as f64)
                    });
                while started.elapsed() < duration {
                    if let Some(interval) = interval {
                        tokio::time::sleep_until(next.into()).await;
                        next += interval;
                    }
                    let call = Instant::now();
                    check(&client, &ids, batch, round).await?;
                    latencies.push(call.elapsed());
                    round += concurrency;
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let ms = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    println!(
        "{:.0} {:.2} {:.2} {:.2}",
        latencies.len() as f64 / elapsed,
        ms(0.5),
        ms(0.99),
        ms(1.0)
    );
    Ok(())
}

/// One lookup of `batch` ids picked by `round` (a cheap deterministic spread over the
/// file); every id exists, so every profile must come back.
async fn check(client: &Client, ids: &[Uuid], batch: usize, round: usize) -> anyhow::Result<()> {
    let start = round.wrapping_mul(7_919) % ids.len();
    let asked: Vec<Uuid> = (0..batch)
        .map(|i| ids[(start + i * 31) % ids.len()])
        .collect();
    let found = client.lookup(&asked).await?;
    if found.len() != asked.iter().collect::<std::collections::HashSet<_>>().len() {
        bail!("asked {} profiles, got {}", asked.len(), found.len());
    }
    Ok(())
}
