//! The media service's configuration; every variable has a local default.

use std::time::Duration;

use platform::{
    client_ip::TrustedProxies,
    config::{self, ConfigError, HttpConfig, secs, var, var_opt},
    postgres::PostgresConfig,
    retention::PruneConfig,
};

#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpConfig,
    pub postgres: PostgresConfig,
    pub mongodb_uri: String,
    pub mongodb_database: String,
    pub redis_url: String,
    /// `REDIS_PREFIX`: namespace of every Redis key (shared with auth).
    pub redis_prefix: String,
    pub amqp_url: String,
    /// `AUTH_URL`: auth's HTTP API, directly, not through the gateway (its JWKS document,
    /// for the tokens of WebSocket subscriptions).
    pub auth_url: String,
    /// `AUTH_GRPC_URL`: auth's gRPC user directory (public profiles). In Kubernetes, a
    /// headless Service's name, so calls spread over every auth replica (rpc::client).
    pub auth_grpc_url: String,
    /// `AUTH_TIMEOUT_MILLIS`: the deadline of one profile lookup, retries included; past it
    /// the profiles not in the cache answer UNAVAILABLE.
    pub auth_timeout: Duration,
    /// `RECOMMENDER_URL`: the recommender's gRPC API (`related`, `recommended`); a
    /// headless Service's name in Kubernetes, as for `AUTH_GRPC_URL`.
    pub recommender_url: String,
    /// `RECOMMENDER_TIMEOUT_MILLIS`: how long a recommendation may take, retries included,
    /// before `recommended` falls back to trending (and `related` answers UNAVAILABLE).
    pub recommender_timeout: Duration,
    /// `QUEUE_PREFIX`: prepended to the names of media's own queues (`media.catalogue`,
    /// `media.users`…) and to the routing keys of the events it publishes and binds
    /// (events::Namespace), so several stacks can share one broker (tests do). Every
    /// service of a stack uses the same.
    pub queue_prefix: String,
    /// `QUEUE_EXPIRES_SECS`: when set, media's queues are deleted by the broker after being
    /// unused that long (for throw-away stacks; leave unset in production). Unset, queues
    /// under a `QUEUE_PREFIX` expire after events::queue::PREFIXED_QUEUE_EXPIRY.
    pub queue_expires: Option<Duration>,
    /// `USER_CACHE_TTL_SECS`: how long a user profile stays in the Redis cache. Updates
    /// and deletions evict it at once (user.* events); the TTL bounds any missed eviction.
    pub user_cache_ttl: Duration,
    /// `PLAYBACK_SIGNING_KEY`: signs the playback URLs of private and unlisted videos
    /// (identity::playback); the video service checks them with the same key. Unset: those
    /// videos get no `playback` (public ones still do).
    pub playback_key: Option<identity::playback::PlaybackKey>,
    /// `PLAYBACK_TOKEN_TTL_SECS`: how long a signed playback URL works (a film's length and
    /// then some; clients ask again for a fresh one).
    pub playback_ttl: Duration,
    /// `COMMENT_RECOUNT_INTERVAL_SECS`: how often every video's comment counter is
    /// recomputed from MongoDB (see comments::recount).
    pub comment_recount_interval: Duration,
    /// `FEED_CACHE_MILLIS`: how long a feed page is reused for all viewers (0: never).
    pub feed_cache: Duration,
    /// `SEARCH_CACHE_MILLIS`: how long a search result page is reused for every viewer
    /// asking the same search (0: never).
    pub search_cache: Duration,
    /// `DATALOADER_DELAY_MILLIS`: how long a DataLoader gathers keys before one batched
    /// query (likes, follows, subscriber counts, users, videos of one request).
    pub loader_delay: Duration,
    pub limits: Limits,
    /// `RATE_LIMIT_{COMMENT,LIKE,SUBSCRIBE}_{USER,IP}`: see [`crate::rate_limits`].
    pub rates: crate::rate_limits::Rates,
    /// `TRUSTED_PROXIES`: peers whose `X-Forwarded-For` is believed (the gateway), for the
    /// per-IP limits (platform::client_ip).
    pub trusted_proxies: TrustedProxies,
    /// Live updates (`REALTIME_*`, `JWT_*`): see [`crate::realtime::RealtimeConfig`].
    pub realtime: crate::realtime::RealtimeConfig,
    /// `INTERACTION_BUFFER`: interactions waiting for the broker at most; past it
    /// `recordView` & co. answer RATE_LIMITED.
    pub interaction_buffer: usize,
    /// `INTERACTION_BATCH`: interactions published per confirm round trip at most.
    pub interaction_batch: usize,
    /// `INTERACTION_PACK_SIZE`: interactions per AMQP message at most (events::pack): the
    /// broker's work is per message, so a busy replica sends them in packs.
    pub interaction_pack: usize,
    /// `PROCESSED_EVENTS_RETENTION_SECS`: how long the id of an applied event is kept to
    /// drop its duplicates (crate::retention).
    pub processed_events_retention: Duration,
    /// `PRUNE_INTERVAL_SECS`, `PRUNE_BATCH_SIZE` (platform::retention).
    pub prune: PruneConfig,
    /// How a new video reaches a channel's subscribers (crate::notifications::fanout).
    pub notifications: crate::notifications::FanoutConfig,
    /// `NOTIFICATION_RETENTION_SECS`: notifications older than this are pruned.
    pub notification_retention: Duration,
}

/// What one GraphQL request may ask for.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `GRAPHQL_MAX_DEPTH`
    pub max_depth: usize,
    /// `GRAPHQL_MAX_COMPLEXITY`: each field costs 1, a list field `first` times its child.
    pub max_complexity: usize,
    /// `GRAPHQL_MAX_PAGE`: the largest `first`.
    pub max_page: usize,
    /// `GRAPHQL_MAX_BODY_BYTES`
    pub max_body_bytes: usize,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let (mongodb_uri, mongodb_database) = config::mongodb()?;
        Ok(Self {
            http: HttpConfig::from_env("0.0.0.0:8082")?,
            postgres: PostgresConfig::from_env("media")?,
            mongodb_uri,
            mongodb_database,
            redis_url: config::redis_url()?,
            redis_prefix: var("REDIS_PREFIX", "kino:")?,
            amqp_url: config::amqp_url()?,
            auth_url: var("AUTH_URL", "http://127.0.0.1:8081")?,
            auth_grpc_url: var("AUTH_GRPC_URL", "http://127.0.0.1:9081")?,
            auth_timeout: Duration::from_millis(var("AUTH_TIMEOUT_MILLIS", "1000")?),
            recommender_url: var("RECOMMENDER_URL", "http://127.0.0.1:9086")?,
            recommender_timeout: Duration::from_millis(var("RECOMMENDER_TIMEOUT_MILLIS", "500")?),
            queue_prefix: var("QUEUE_PREFIX", "")?,
            queue_expires: var_opt::<f64>("QUEUE_EXPIRES_SECS")?.map(Duration::from_secs_f64),
            user_cache_ttl: secs("USER_CACHE_TTL_SECS", "600")?,
            playback_key: identity::playback::key_from_env()?,
            playback_ttl: secs("PLAYBACK_TOKEN_TTL_SECS", "14400")?,
            comment_recount_interval: secs("COMMENT_RECOUNT_INTERVAL_SECS", "3600")?,
            feed_cache: Duration::from_millis(var("FEED_CACHE_MILLIS", "1000")?),
            search_cache: Duration::from_millis(var("SEARCH_CACHE_MILLIS", "1000")?),
            loader_delay: Duration::from_millis(var("DATALOADER_DELAY_MILLIS", "1")?),
            interaction_buffer: var("INTERACTION_BUFFER", "10000")?,
            interaction_batch: var("INTERACTION_BATCH", "500")?,
            interaction_pack: var("INTERACTION_PACK_SIZE", "100")?,
            processed_events_retention: secs("PROCESSED_EVENTS_RETENTION_SECS", "604800")?,
            prune: PruneConfig::from_env()?,
            notifications: crate::notifications::FanoutConfig {
                batch: var::<i64>("NOTIFICATION_FANOUT_BATCH", "5000")?.max(1),
                poll: Duration::from_millis(var("NOTIFICATION_FANOUT_POLL_MILLIS", "1000")?),
                fan_in_above: var::<i64>("NOTIFICATION_FANIN_SUBSCRIBERS", "10000")?.max(0),
            },
            notification_retention: secs("NOTIFICATION_RETENTION_SECS", "7776000")?,
            limits: Limits {
                max_depth: var("GRAPHQL_MAX_DEPTH", "12")?,
                max_complexity: var("GRAPHQL_MAX_COMPLEXITY", "5000")?,
                max_page: var("GRAPHQL_MAX_PAGE", "100")?,
                max_body_bytes: var("GRAPHQL_MAX_BODY_BYTES", "65536")?,
            },
            rates: crate::rate_limits::Rates::from_env()?,
            trusted_proxies: TrustedProxies::from_env()?,
            realtime: crate::realtime::RealtimeConfig::from_env()?,
        })
    }

    /// Media's queues: under `QUEUE_PREFIX`, expiring as `QUEUE_EXPIRES_SECS` says (or by
    /// the default for a prefixed stack, events::queue).
    pub fn namespace(&self) -> events::Namespace {
        events::Namespace::new(&self.queue_prefix).expiring(self.queue_expires)
    }

    /// A queue spec for one of media's own queues.
    pub fn queue(&self, name: &str) -> events::consumer::QueueSpec {
        self.namespace().queue(name)
    }
}
