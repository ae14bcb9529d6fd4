//! Bench helper (bench/playback/run): players fetching HLS segments.
//!
//! `playback_load <players> <seconds> <url file> [pace]`: `players` concurrent clients,
//! each fetching the URLs of the file in turn (each starting at its own offset), reading
//! every body to the end, for `seconds`; redirects are followed, as players do. Without
//! `pace` each client asks for the next segment as soon as it has the last (saturation:
//! the path's throughput). With `pace` (seconds) each asks for one segment every `pace`
//! seconds, the clients spread evenly over the first interval: a player at 1x, fetching a
//! 4 s segment every 4 s (the latency a watching viewer sees). Prints one line:
//! `requests MiB/s p50_ms p99_ms errors`, latency being request to last byte, and the
//! slowest requests to stderr.
//!
//! `playback_load sign <video id> <seconds> [viewer id]`: a playback token for that video
//! and viewer (none: anonymous, enough for unlisted videos; a private one needs its
//! owner), valid that long, signed with `PLAYBACK_SIGNING_KEY` as media signs them.

use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("sign") {
        let key = identity::playback::key_from_env()?
            .ok_or_else(|| anyhow::anyhow!("set PLAYBACK_SIGNING_KEY"))?;
        let video = args[1].parse()?;
        let ttl = time::Duration::seconds(args[2].parse()?);
        let viewer = args.get(3).map(|v| v.parse()).transpose()?;
        println!(
            "{}",
            key.sign(video, viewer, time::OffsetDateTime::now_utc() + ttl)
        );
        return Ok(());
    }
    let (players, seconds, file, pace) = match args.as_slice() {
        [players, seconds, file] => (players, seconds, file, None),
        [players, seconds, file, pace] => (players, seconds, file, Some(pace.parse::<f64>()?)),
        _ => anyhow::bail!("usage: playback_load <players> <seconds> <url file> [pace]"),
    };
    let players: usize = players.parse()?;
    let pace = pace.map(Duration::from_secs_f64);
    let run = Duration::from_secs_f64(seconds.parse()?);
    let urls: Vec<String> = std::fs::read_to_string(file)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    anyhow::ensure!(!urls.is_empty(), "no URLs in {file}");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(players)
        .build()?;
    let deadline = Instant::now() + run;
    let started = Instant::now();
    let workers: Vec<_> = (0..players)
        .map(|player| {
            let (client, urls) = (client.clone(), urls.clone());
            tokio::spawn(async move {
                let (mut latencies, mut bytes, mut errors) = (Vec::new(), 0u64, 0u64);
                let mut requests = 0usize;
                let mut n = player;
                // With a pace, player k starts k/players of an interval in.
                let mut next = pace.map(|p| started + p.mul_f64(player as f64 / players as f64));
                while Instant::now() < deadline {
                    if let (Some(at), Some(pace)) = (next.as_mut(), pace) {
                        tokio::time::sleep_until((*at).into()).await;
                        *at += pace;
                    }
                    let url = &urls[n % urls.len()];
                    n += 1;
                    let sent = Instant::now();
                    requests += 1;
                    let body = match client.get(url).send().await {
                        Ok(r) if r.status().is_success() => r.bytes().await,
                        _ => {
                            errors += 1;
                            continue;
                        }
                    };
                    match body {
                        Ok(body) => {
                            bytes += body.len() as u64;
                            latencies.push((sent.elapsed(), player, requests, sent - started));
                        }
                        Err(_) => errors += 1,
                    }
                }
                (latencies, bytes, errors)
            })
        })
        .collect();
    let (mut latencies, mut bytes, mut errors) = (Vec::new(), 0u64, 0u64);
    for worker in workers {
        let (l, b, e) = worker.await?;
        latencies.extend(l);
        bytes += b;
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    // The slowest requests, to stderr: which player, its how-manyth request, and when.
    for (latency, player, request, at) in latencies.iter().rev().take(6) {
        eprintln!(
            "slow: {:.1} ms, player {player}, request {request}, at {:.2} s",
            latency.as_secs_f64() * 1000.0,
            at.as_secs_f64()
        );
    }
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |(d, ..)| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{} {:.1} {:.1} {:.1} {}",
        latencies.len(),
        bytes as f64 / elapsed / (1024.0 * 1024.0),
        at(0.50),
        at(0.99),
        errors
    );
    Ok(())
}
