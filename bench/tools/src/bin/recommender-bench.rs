//! The recommender's figures, in one process, through the service's own code:
//!
//! 1. embedding throughput: video texts through [`recommender::embed::Model`] in batches
//!    of `EMBED_BATCH` (32), videos/s;
//! 2. the index at `VECTORS` (100,000) vectors: build time, then `QUERIES` "related" and
//!    "recommended" answers (exactly what the HTTP handlers run, minus HTTP), timed one by
//!    one (p50, p99), and recall@10 of each answer against the exact (brute force) answer
//!    of the same query, in the same run.
//!
//! At 100,000 the vectors are synthetic: `TOPICS` random unit centroids, each video a
//! centroid plus Gaussian noise, normalised (real embeddings cluster by topic too; pure
//! uniform noise in 384 dimensions has no neighbours worth finding). A user's taste comes
//! from `LIKES` liked videos of one topic, through the real taste code.
//!
//! Prints `embed_videos_per_s build_s`, then one line per search beam (`EF_SWEEP`, default
//! the configured one): `ef related_p50_ms related_p99_ms related_recall
//! recommended_p50_ms recommended_p99_ms recommended_recall`.

use std::{collections::HashSet, time::Instant};

use recommender::{
    Serving,
    api::{self, RecommendRequest},
    config::{IndexConfig, TasteConfig},
    embed::{DIMENSIONS, Model, normalize},
    index::Index,
    taste::{Score, Tastes},
};
use uuid::Uuid;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small, seedable generator (xorshift64*), so runs are repeatable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box–Muller).
    fn gauss(&mut self) -> f32 {
        let (u, v) = (self.uniform().max(1e-12), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    normalize(&mut v);
    v
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p).ceil() as usize)
        .saturating_sub(1)
        .min(sorted.len() - 1)]
}

fn recall(got: &[Uuid], exact: &[Uuid]) -> f64 {
    let exact: HashSet<&Uuid> = exact.iter().collect();
    got.iter().filter(|id| exact.contains(id)).count() as f64 / exact.len().max(1) as f64
}

fn main() -> anyhow::Result<()> {
    let vectors: usize = env("VECTORS", 100_000);
    let queries: usize = env("QUERIES", 1000);
    let topics: usize = env("TOPICS", 500);
    let noise: f32 = env("NOISE", 0.06);
    let likes: usize = env("LIKES", 10);
    let embed_batches: usize = env("EMBED_BATCHES", 10);
    let embed_batch: usize = env("EMBED_BATCH", 32);
    let model_dir: String = std::env::var("RECOMMENDER_MODEL_DIR")?;
    let k = 10;

    // 1. Embedding throughput.
    let model = Model::load(model_dir.as_ref(), "all-MiniLM-L6-v2", 256)?;
    let texts: Vec<String> = (0..embed_batch * embed_batches)
        .map(|i| {
            recommender::embed::video_text(
                &format!("Video {i}: a weekend of cooking, football and programming"),
                &["vlog".into(), format!("tag{i}")],
                "A description of a few sentences, as uploaders write them: what happens, \
                 who is in it, where it was filmed and why you might want to watch it.",
            )
        })
        .collect();
    model.embed(&texts[..embed_batch])?; // warm-up
    let started = Instant::now();
    for batch in texts.chunks(embed_batch) {
        let out = model.embed(batch)?;
        assert_eq!(out[0].len(), DIMENSIONS);
    }
    let embed_rate = texts.len() as f64 / started.elapsed().as_secs_f64();
    drop(model);

    // 2. The index at scale.
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let centroids: Vec<Vec<f32>> = (0..topics)
        .map(|_| unit((0..DIMENSIONS).map(|_| rng.gauss()).collect()))
        .collect();
    let mut topic_of = Vec::with_capacity(vectors);
    let rows: Vec<recommender::index::Row> = (0..vectors)
        .map(|_| {
            let t = rng.below(topics);
            topic_of.push(t);
            let v = centroids[t]
                .iter()
                .map(|c| c + noise * rng.gauss())
                .collect();
            (Uuid::now_v7(), unit(v), true, 0)
        })
        .collect();
    let ids: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
    // `EF_SWEEP` (e.g. "64,96,128"): the search beams to measure over the one graph built;
    // the configured `INDEX_EF_SEARCH` alone by default.
    let d = IndexConfig::default();
    let ef_search = env("INDEX_EF_SEARCH", d.ef_search);
    let ef_sweep: Vec<usize> = std::env::var("EF_SWEEP")
        .ok()
        .map(|list| {
            list.split(',')
                .filter_map(|v| v.trim().parse().ok())
                .collect()
        })
        .unwrap_or_else(|| vec![ef_search]);
    let started = Instant::now();
    let index_config = IndexConfig {
        max_connections: env("INDEX_MAX_CONNECTIONS", d.max_connections),
        ef_construction: env("INDEX_EF_CONSTRUCTION", d.ef_construction),
        ef_search,
        capacity: vectors,
    };
    let index = Index::build(index_config, rows);
    let build_secs = started.elapsed().as_secs_f64();

    let taste = TasteConfig::default();
    let mut serving = Serving {
        index,
        tastes: Tastes::new(&taste),
        snapshot: None,
    };
    let now = recommender::taste::unix(time::OffsetDateTime::now_utc());
    println!("{embed_rate:.1} {build_secs:.1}");

    // The same queries for every beam: the query generator restarts from one seed.
    for ef in ef_sweep {
        serving.index.set_ef_search(ef);
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let mut related_ms = Vec::with_capacity(queries);
        let mut related_recall = 0.0;
        let mut recommended_ms = Vec::with_capacity(queries);
        let mut recommended_recall = 0.0;
        for _ in 0..queries {
            // related: a random video.
            let video = ids[rng.below(vectors)];
            let started = Instant::now();
            let hits = serving.index.related(video, k).unwrap();
            related_ms.push(started.elapsed().as_secs_f64() * 1000.0);
            let query = serving.index.vector(&video).unwrap();
            let exact = serving.index.brute_force(&query, k, &|id| *id == video);
            related_recall += recall(
                &hits.iter().map(|h| h.id).collect::<Vec<_>>(),
                &exact.iter().map(|h| h.id).collect::<Vec<_>>(),
            );

            // recommended: a user who liked `likes` videos of one topic.
            let user = Uuid::now_v7();
            let topic = topic_of[rng.below(vectors)];
            let mut liked = 0;
            while liked < likes {
                let i = rng.below(vectors);
                if topic_of[i] == topic || rng.below(20) == 0 {
                    let score = Score {
                        value: taste.like,
                        at: now - rng.uniform() * 30.0 * 86_400.0,
                    };
                    serving.tastes.set(user, ids[i], score, false);
                    liked += 1;
                }
            }
            let request = RecommendRequest {
                user_id: user,
                first: k,
                trending: Vec::new(),
            };
            let started = Instant::now();
            let answer = api::recommend(&serving, &request, 0.0, now);
            recommended_ms.push(started.elapsed().as_secs_f64() * 1000.0);
            let (taste_vector, seen) = serving.tastes.taste(user, &serving.index, now);
            let exact = serving
                .index
                .brute_force(&taste_vector.unwrap(), k, &|id| seen.contains(id));
            recommended_recall += recall(
                &answer.videos.iter().map(|p| p.id).collect::<Vec<_>>(),
                &exact.iter().map(|h| h.id).collect::<Vec<_>>(),
            );
        }
        related_ms.sort_by(f64::total_cmp);
        recommended_ms.sort_by(f64::total_cmp);
        println!(
            "{ef} {:.3} {:.3} {:.4} {:.3} {:.3} {:.4}",
            percentile(&related_ms, 0.5),
            percentile(&related_ms, 0.99),
            related_recall / queries as f64,
            percentile(&recommended_ms, 0.5),
            percentile(&recommended_ms, 0.99),
            recommended_recall / queries as f64,
        );
    }
    Ok(())
}
