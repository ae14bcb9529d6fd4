//! 100,000 interactions (with re-published duplicates and repeated views) while the ranker
//! binary is SIGKILLed three times at random points. Afterwards every score equals an
//! offline recomputation from the archived events (within 1e-9, relative to the
//! magnitude of what was added), and the archive holds each event exactly once.
//!
//! The hour window's half-life is 5 s and sets are rebased once a half-life old, so the
//! run also crosses many rebases, each racing the batches being applied.

mod common;

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use events::{
    Envelope,
    interaction::{Action, Interaction},
    trending::{Scope, Window, trending_key},
};
use mongodb::bson::Document;
use ranker::{config::Weights, scoring};
use testkit::{TestEnv, process::ServiceProcess};
use time::OffsetDateTime;
use uuid::Uuid;

const EVENTS: usize = 100_000;
/// Publishing pace, so the kills land while events flow (~25 s in all).
const PER_SECOND: usize = 4_000;
const HOUR_HALF_LIFE: f64 = 5.0;

/// xorshift64*: reproducible randomness from a printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

struct Video {
    id: Uuid,
    owner: Uuid,
    category: Option<String>,
}

fn env_vars(env: &TestEnv) -> Vec<(&'static str, String)> {
    vec![
        ("REDIS_URL", env.redis_url.clone()),
        ("REDIS_PREFIX", env.redis_prefix.clone()),
        ("MONGODB_URI", env.mongodb_uri.clone()),
        ("MONGODB_DATABASE", env.mongodb_database.clone()),
        ("AMQP_URL", env.amqp_url.clone()),
        ("QUEUE_PREFIX", common::queue_prefix(env)),
        ("QUEUE_EXPIRES_SECS", "600".into()),
        ("HALF_LIFE_HOUR_SECS", HOUR_HALF_LIFE.to_string()),
        ("REBASE_CHECK_SECS", "0.5".into()),
        ("REBASE_AFTER_HALF_LIVES", "1".into()),
        ("TRENDING_PRUNE_BELOW", "-inf".into()),
        ("RANKER_BATCH_SIZE", "500".into()),
        // Batches written as several scripts (split by video), so a kill also lands
        // between the parts of a batch.
        ("RANKER_SCRIPT_WRITES", "600".into()),
        ("RANKER_BATCH_WAIT_MILLIS", "10".into()),
        ("SHUTDOWN_GRACE_SECS", "5".into()),
    ]
}

async fn start(vars: &[(&'static str, String)]) -> ServiceProcess {
    ServiceProcess::start(env!("CARGO_BIN_EXE_ranker"), vars).await
}

/// The generated workload: views from a pool of viewers (so views repeat), likes and their
/// retractions, comments, shares, watch time; about 3 % re-published duplicates.
struct Workload {
    rng: Rng,
    videos: Vec<Video>,
    sent: Vec<Envelope<Interaction>>,
    likes: HashMap<(usize, usize), OffsetDateTime>,
}

impl Workload {
    fn next(&mut self) -> Envelope<Interaction> {
        if !self.sent.is_empty() && self.rng.below(100) < 3 {
            let earlier = self.rng.below(self.sent.len());
            return self.sent[earlier].clone();
        }
        let v = self.rng.below(self.videos.len());
        let viewer = self.rng.below(2_000);
        let roll = self.rng.below(100);
        let action = match roll {
            0..55 => Action::View,
            55..70 => match self.likes.remove(&(viewer, v)) {
                Some(liked_at) => Action::Unlike { liked_at },
                None => Action::Like,
            },
            70..78 => Action::Comment,
            78..85 => Action::Share,
            _ => Action::Watch {
                seconds: 1 + self.rng.below(120) as u32,
            },
        };
        let video = &self.videos[v];
        let envelope = Envelope::new(common::interaction(
            video.id,
            video.owner,
            video.category.as_deref(),
            &format!("user:{viewer:04}"),
            action,
        ));
        if matches!(envelope.data.action, Action::Like) {
            self.likes.insert((viewer, v), envelope.occurred_at);
        }
        self.sent.push(envelope.clone());
        envelope
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scores_equal_a_recomputation_from_the_archive_after_three_sigkills() {
    let env = TestEnv::new("ranker");
    let config = common::config(&env);
    let rabbit = events::Rabbit::new(&env.amqp_url, "ranker-kill-test");
    common::declare_queues(&rabbit, &config).await;
    let vars = env_vars(&env);
    let mut ranker = start(&vars).await;

    // KILL_TEST_SEED replays a printed seed's workload and kill points.
    let seed = match std::env::var("KILL_TEST_SEED") {
        Ok(seed) => seed.parse::<u64>().expect("KILL_TEST_SEED is a u64") | 1,
        Err(_) => OffsetDateTime::now_utc().unix_timestamp_nanos() as u64 | 1,
    };
    eprintln!("workload and kill points from seed {seed} (KILL_TEST_SEED replays them)");
    let mut rng = Rng(seed);
    let owners: Vec<Uuid> = (0..30).map(|_| Uuid::now_v7()).collect();
    let categories = ["music", "games", "news", "howto"];
    let videos: Vec<Video> = (0..300)
        .map(|i| Video {
            id: Uuid::now_v7(),
            owner: owners[rng.below(owners.len())],
            category: (i % 5 != 0).then(|| categories[rng.below(categories.len())].to_owned()),
        })
        .collect();
    let kill_points: Vec<Duration> = (0..3)
        .map(|_| Duration::from_millis(1_500 + rng.below(5_000) as u64))
        .collect();
    let mut workload = Workload {
        rng,
        videos,
        sent: Vec::with_capacity(EVENTS),
        likes: HashMap::new(),
    };

    // Publish at a steady pace while a second task kills and restarts the ranker.
    let publisher = common::Publisher::new(rabbit.clone(), &env);
    let killer = tokio::spawn(async move {
        for pause in kill_points {
            tokio::time::sleep(pause).await;
            ranker.child.start_kill().unwrap(); // SIGKILL: no cleanup, no acks
            ranker.child.wait().await.unwrap();
            eprintln!("ranker SIGKILLed; restarting");
            ranker = start(&vars).await;
        }
        ranker
    });
    let started = tokio::time::Instant::now();
    let mut confirms = Vec::with_capacity(EVENTS);
    for i in 0..EVENTS {
        let envelope = workload.next();
        confirms.push(publisher.send(&envelope).await);
        if i % 500 == 499 {
            let due = started + Duration::from_secs_f64((i + 1) as f64 / PER_SECOND as f64);
            tokio::time::sleep_until(due).await;
        }
    }
    for confirm in futures::future::join_all(confirms).await {
        confirm.expect("published with a confirm");
    }
    let ranker = killer.await.unwrap();
    let published: HashSet<Uuid> = workload.sent.iter().map(|e| e.id).collect();
    eprintln!(
        "published {EVENTS} ({} distinct) in {:?}",
        published.len(),
        started.elapsed()
    );

    // Wait until every distinct event is applied (marked seen) and archived.
    let redis = common::redis(&env);
    // Where the ranker keeps its state on this Redis (a shard per window on a cluster).
    let store = ranker::store::Store::new(redis.clone(), &env.redis_prefix);
    testkit::wait_for(
        "every event ranked in every window and archived",
        Duration::from_secs(240),
        || {
            let (redis, env, store) = (redis.clone(), env.clone(), store.clone());
            let expected = published.len();
            async move {
                if common::archive_count(&env).await != expected {
                    return None;
                }
                for shard in &store.shards {
                    let pattern = format!("{}seen:*", shard.marks_prefix());
                    if marked(&redis, &pattern).await.len() != expected {
                        return None;
                    }
                }
                Some(())
            }
        },
    )
    .await;
    // Stop it (SIGTERM) so nothing changes while we read.
    ranker.signal("TERM");
    let mut ranker = ranker;
    ranker.child.wait().await.unwrap();

    // The archive: each published event exactly once.
    let docs = common::archive(&env).await;
    let archived: HashSet<Uuid> = docs
        .iter()
        .map(|d| Uuid::parse_str(d.get_str("_id").unwrap()).unwrap())
        .collect();
    assert_eq!(docs.len(), archived.len(), "no event archived twice");
    assert_eq!(archived, published, "every event archived");

    // Offline recomputation from the archive alone, against the landmarks as they ended.
    let mut conn = redis.clone();
    let mut landmarks: HashMap<String, f64> = HashMap::new();
    for shard in &store.shards {
        let stored = redis::cmd("HGETALL")
            .arg(shard.t0_key())
            .query_async::<HashMap<String, String>>(&mut conn)
            .await
            .unwrap();
        landmarks.extend(stored.into_iter().map(|(k, v)| (k, v.parse().unwrap())));
    }
    let hour_global = trending_key(&env.redis_prefix, Window::Hour, &Scope::Global);
    assert!(
        landmarks[&hour_global]
            > workload.sent[0].occurred_at.unix_timestamp() as f64 + HOUR_HALF_LIFE,
        "the hour sets were rebased during the run"
    );
    // Each shard dedupes views on its own (on a cluster, a shard per window).
    let mut accepted_views = HashMap::new();
    for shard in &store.shards {
        let kept = self::accepted_views(&redis, shard, &docs).await;
        for window in &shard.windows {
            accepted_views.insert(*window, kept.clone());
        }
    }
    let mut expected: HashMap<String, HashMap<String, (f64, f64)>> = HashMap::new();
    let weights = Weights::default();
    for doc in &docs {
        let id = doc.get_str("_id").unwrap();
        let event = decode(doc);
        let at = OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(doc.get_datetime("occurred_at").unwrap().timestamp_millis()) * 1_000_000,
        )
        .unwrap();
        let (points, t) = scoring::points(&event.action, at, &weights);
        let mut scopes = vec![Scope::Global];
        if let Some(c) = &event.category {
            scopes.push(Scope::Category(c.clone()));
        }
        for window in Window::ALL {
            if matches!(event.action, Action::View)
                && accepted_views[&window].get(&(event.viewer.to_string(), event.video_id))
                    != Some(&id.to_owned())
            {
                continue; // a repeated view: counted once, as the one the window kept
            }
            let half_life = match window {
                Window::Hour => HOUR_HALF_LIFE,
                Window::Day => 86_400.0,
                Window::Week => 604_800.0,
            };
            for scope in &scopes {
                let key = trending_key(&env.redis_prefix, window, scope);
                let t0 = landmarks[&key];
                let inc = scoring::increment(points, t, t0, scoring::lambda(half_life));
                let slot = expected
                    .entry(key)
                    .or_default()
                    .entry(event.video_id.to_string())
                    .or_default();
                slot.0 += inc;
                slot.1 += inc.abs();
            }
        }
    }
    let mut compared = 0;
    for (key, members) in &expected {
        let actual = common::scores(&redis, key).await;
        assert_eq!(actual.len(), members.len(), "members of {key}");
        for (member, (score, magnitude)) in members {
            let got = actual[member];
            assert!(
                (got - score).abs() <= 1e-9 * magnitude,
                "{key} {member}: stored {got}, recomputed {score} (magnitude {magnitude})"
            );
            compared += 1;
        }
    }
    assert_eq!(
        expected.len(),
        landmarks.len(),
        "no sorted set without events"
    );
    eprintln!(
        "{compared} scores in {} sets equal the recomputation",
        expected.len()
    );
    rabbit.close().await;
}

fn decode(doc: &Document) -> Interaction {
    let data = doc.get_document("data").unwrap();
    let json = serde_json::to_value(data).unwrap();
    serde_json::from_value(json).unwrap()
}

/// Which view of each (viewer, video) the ranker kept in `shard`: the event id it stored in
/// the shard's dedupe key. Each must be one of the archived views of that pair.
async fn accepted_views(
    redis: &platform::redis::Redis,
    shard: &ranker::store::Shard,
    docs: &[Document],
) -> HashMap<(String, Uuid), String> {
    let mut views: HashMap<(String, Uuid), HashSet<String>> = HashMap::new();
    for doc in docs {
        let event = decode(doc);
        if matches!(event.action, Action::View) {
            views
                .entry((event.viewer.to_string(), event.video_id))
                .or_default()
                .insert(doc.get_str("_id").unwrap().to_owned());
        }
    }
    // The views that counted, from every bucket: `{viewer}:{video}` -> `{millis}:{event id}`.
    let mut conn = redis.clone();
    let mut kept: HashMap<String, String> = HashMap::new();
    let pattern = format!("{}views:*", shard.marks_prefix());
    for key in keys(redis, &pattern).await {
        let fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        for (field, value) in fields {
            let (_, id) = value.split_once(':').expect("{millis}:{event id}");
            let previous = kept.insert(field.clone(), id.to_owned());
            assert!(previous.is_none(), "{field} counted once in the window");
        }
    }
    let mut accepted = HashMap::new();
    for (pair, ids) in views {
        let field = format!("{}:{}", pair.0, pair.1);
        let id = kept
            .remove(&field)
            .unwrap_or_else(|| panic!("a view of {field} counted"));
        assert!(ids.contains(&id), "{field} kept one of its own views");
        accepted.insert(pair, id);
    }
    assert!(kept.is_empty(), "only published views counted: {kept:?}");
    accepted
}

/// The event ids marked seen, in every bucket.
async fn marked(redis: &platform::redis::Redis, pattern: &str) -> HashSet<String> {
    let mut conn = redis.clone();
    let mut ids = HashSet::new();
    for key in keys(redis, pattern).await {
        let members: Vec<String> = redis::cmd("SMEMBERS")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        ids.extend(members);
    }
    ids
}

async fn keys(redis: &platform::redis::Redis, pattern: &str) -> HashSet<String> {
    redis.keys(pattern).await.unwrap().into_iter().collect()
}
