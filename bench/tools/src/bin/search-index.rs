//! What one search and one completion cost media's CPU, in process: the search index
//! and the suggestion set alone, without GraphQL, PostgreSQL or the network (those are in
//! bench/media's figures). For working on the index: a change shows here in seconds,
//! where bench/media needs a seeded catalogue and two release services.
//!
//!   search-index [videos (100000)] [rounds (5)]
//!
//! Builds both from `videos` seeded videos (the vocabulary of seed-media, 1,000 channels),
//! then runs the 1,000 distinct searches search-load sends (`first: 20`, relevance) and
//! the 1,000 distinct prefixes (`first: 10`), `rounds` times each after one warm-up
//! round, on one thread. Prints the build times and, per kind, the mean, p50, p99 and
//! maximum microseconds per call and the results per call.

use std::{
    collections::{HashMap, HashSet},
    time::Instant,
};

use kino_bench::{Rng, search_prefixes, search_queries, video_metadata};
use media::search::{
    index::{Document, Engine, Filters, Order, Request},
    replica::suggestion_entries,
    suggest::{Kind, Suggestions},
};
use uuid::Uuid;

fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let videos = args.first().copied().unwrap_or(100_000);
    let rounds = args.get(1).copied().unwrap_or(5);

    let mut rng = Rng::new(42);
    let channels: Vec<Uuid> = (0..1_000).map(|_| Uuid::now_v7()).collect();
    let day = 86_400_000_000i64;
    let now = 1_780_000_000_000_000i64;
    let mut documents = Vec::with_capacity(videos);
    let mut sources = Vec::with_capacity(videos);
    for _ in 0..videos {
        let meta = video_metadata(&mut rng);
        let id = Uuid::now_v7();
        let owner = *rng.pick(&channels);
        sources.push((
            id,
            meta.title.clone(),
            meta.tags.clone(),
            owner,
            rng.below(10_000) as i64,
        ));
        documents.push(Document {
            id,
            title: meta.title,
            description: meta.description,
            tags: meta.tags,
            category: meta.category,
            published: now - rng.below(730) as i64 * day - rng.below(day as usize) as i64,
            duration_seconds: Some(rng.below(3_600) as f64),
        });
    }
    let names: HashMap<Uuid, String> = channels
        .iter()
        .enumerate()
        .map(|(n, id)| (*id, format!("Channel {n}")))
        .collect();

    let started = Instant::now();
    let engine = Engine::build(documents)?;
    let index_ms = started.elapsed().as_secs_f64() * 1e3;
    let started = Instant::now();
    let suggestions = Suggestions::build(suggestion_entries(&sources, &names));
    let suggest_ms = started.elapsed().as_secs_f64() * 1e3;
    println!(
        "{videos} videos: index built in {index_ms:.0} ms ({} segments), suggestions in {suggest_ms:.0} ms ({} entries)",
        engine.segments(),
        suggestions.len()
    );

    let filters = Filters::default();
    let queries = search_queries();
    let search = |text: &str| {
        let request = Request {
            text,
            filters: &filters,
            order: Order::Relevance,
            after: None,
            limit: 21,
        };
        engine.search(&request).expect("search").len()
    };
    report("search", &queries, rounds, search);

    let listed: HashSet<Uuid> = sources.iter().map(|s| s.0).collect();
    let prefixes = search_prefixes();
    let complete = |prefix: &str| {
        suggestions
            .complete(prefix, 10, |e| {
                e.kind != Kind::Title || e.videos.iter().any(|v| listed.contains(v))
            })
            .len()
    };
    report("suggest", &prefixes, rounds, complete);
    Ok(())
}

/// Runs `call` on every input `rounds` times (after one warm-up round) and prints the
/// distribution of its cost.
fn report(name: &str, inputs: &[String], rounds: usize, call: impl Fn(&str) -> usize) {
    inputs.iter().for_each(|q| {
        call(q);
    });
    let mut micros = Vec::with_capacity(inputs.len() * rounds);
    let mut results = 0;
    let mut slowest = ("", 0.0);
    for _ in 0..rounds {
        for input in inputs {
            let started = Instant::now();
            results += call(input);
            let took = started.elapsed().as_secs_f64() * 1e6;
            if took > slowest.1 {
                slowest = (input, took);
            }
            micros.push(took);
        }
    }
    micros.sort_by(f64::total_cmp);
    let n = micros.len();
    let at = |p: f64| micros[((n as f64 * p) as usize).min(n - 1)];
    println!(
        "{name}: mean {:.1} µs, p50 {:.1}, p99 {:.1}, max {:.1} ({:?}); {:.1} results per call",
        micros.iter().sum::<f64>() / n as f64,
        at(0.5),
        at(0.99),
        slowest.1,
        slowest.0,
        results as f64 / n as f64
    );
}
