//! Distinct searches, or completions, against media's GraphQL endpoint: what real users
//! send, unlike a load generator repeating one request (which media's page cache answers).
//!
//!   search-load <graphql url> search|suggest <connections> <seconds> <viewer id>
//!
//! * `search`: 1,000 distinct two-word queries over the seeded catalogue's vocabulary
//!   (bench/tools TOPICS and SHAPES): word pairs of one topic, and a topic word with a
//!   title word; `search(query, first: 20)` with the owners' names, as bench/media's
//!   repeated search asks.
//! * `suggest`: 1,000 distinct prefixes as typed: 1 to all characters of the vocabulary's
//!   words, a quarter of those of 5+ characters with one letter wrong.
//!
//! Each connection sends one request at a time, drawing the next query at random.
//! Prints "req/s p50_ms p99_ms success_rate mean_results" (success: HTTP 200 without
//! GraphQL errors).
//!
//!   search-load <graphql url> fresh <owner id> <video id> <rounds>
//!
//! * `fresh`: index freshness. Renames the owner's video to a new unique word, then
//!   searches for that word every 2 ms until the video is found; `rounds` times. Prints
//!   "p50_ms max_ms rounds" from the rename's answer to the first search that finds it.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kino_bench::{Rng, search_prefixes, search_queries};
use serde_json::json;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, mode, connections, seconds, viewer] = args.as_slice() else {
        bail!(
            "usage: search-load <graphql url> search|suggest <connections> <seconds> <viewer id>"
        );
    };
    if mode == "fresh" {
        return freshness(url, connections, seconds, viewer.parse()?).await;
    }
    let connections: usize = connections.parse().context("connections")?;
    let duration = Duration::from_secs(seconds.parse().context("seconds")?);
    let (document, inputs) = match mode.as_str() {
        "search" => (
            "query($q: String) { search(query: $q, first: 20) { edges { node { id title owner { displayName } } } } }",
            search_queries(),
        ),
        "suggest" => (
            "query($q: String!) { searchSuggestions(prefix: $q, first: 10) { text kind } }",
            search_prefixes(),
        ),
        _ => bail!("mode is search or suggest"),
    };
    let bodies: Vec<Vec<u8>> = inputs
        .iter()
        .map(|q| serde_json::to_vec(&json!({ "query": document, "variables": { "q": q } })))
        .collect::<Result<_, _>>()?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()?;
    let bodies = std::sync::Arc::new(bodies);
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for n in 0..connections {
        let (http, bodies, url, viewer) =
            (http.clone(), bodies.clone(), url.clone(), viewer.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::new(n as u64 + 1);
            let mut latencies = Vec::new();
            let (mut ok, mut results) = (0u64, 0u64);
            while Instant::now() < deadline {
                let body = bodies[rng.below(bodies.len())].clone();
                let started = Instant::now();
                let answer = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-user-id", &viewer)
                    .body(body)
                    .send()
                    .await;
                let good = match answer {
                    Ok(response) if response.status() == 200 => match response.bytes().await {
                        Ok(bytes) => {
                            let text = String::from_utf8_lossy(&bytes);
                            results += text.matches("\"id\"").count() as u64
                                + text.matches("\"kind\"").count() as u64;
                            !text.contains("\"errors\"")
                        }
                        Err(_) => false,
                    },
                    _ => false,
                };
                latencies.push(started.elapsed().as_micros() as u64);
                ok += u64::from(good);
            }
            (latencies, ok, results)
        }));
    }
    let mut latencies = Vec::new();
    let (mut ok, mut results) = (0, 0);
    for task in tasks {
        let (l, o, r) = task.await?;
        latencies.extend(l);
        ok += o;
        results += r;
    }
    latencies.sort_unstable();
    let n = latencies.len().max(1);
    let percentile = |p: f64| latencies[((n as f64 * p) as usize).min(n - 1)] as f64 / 1000.0;
    println!(
        "{:.0} {:.2} {:.2} {:.4} {:.1}",
        latencies.len() as f64 / duration.as_secs_f64(),
        percentile(0.50),
        percentile(0.99),
        ok as f64 / n as f64,
        results as f64 / n as f64
    );
    Ok(())
}

async fn freshness(url: &str, owner: &str, video: &str, rounds: usize) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let post =
        |body: serde_json::Value| http.post(url).header("x-user-id", owner).json(&body).send();
    let mut took = Vec::new();
    for round in 0..rounds {
        let word = format!("fresh{}r{round}", std::process::id());
        let rename =
            "mutation($id: ID!, $t: String) { updateVideo(id: $id, input: { title: $t }) { id } }";
        let answer: serde_json::Value = post(json!({ "query": rename, "variables": { "id": video, "t": format!("Freshness {word}") } }))
            .await?
            .json()
            .await?;
        if answer.get("errors").is_some() {
            bail!("rename refused: {answer}");
        }
        let renamed = Instant::now();
        let search = "query($q: String) { search(query: $q, first: 1) { edges { node { id } } } }";
        loop {
            let text = post(json!({ "query": search, "variables": { "q": word } }))
                .await?
                .text()
                .await?;
            if text.contains(video) {
                break;
            }
            if renamed.elapsed() > Duration::from_secs(10) {
                bail!("not findable after 10 s: {text}");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        took.push(renamed.elapsed().as_secs_f64() * 1000.0);
    }
    took.sort_by(f64::total_cmp);
    println!(
        "{:.1} {:.1} {}",
        took[took.len() / 2],
        took[took.len() - 1],
        took.len()
    );
    Ok(())
}
