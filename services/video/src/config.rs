//! The video service's configuration; every variable has a local default.

use std::time::Duration;

use platform::{
    client_ip::TrustedProxies,
    config::{self, ConfigError, HttpConfig, var},
    postgres::PostgresConfig,
    s3::S3Config,
};

#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpConfig,
    pub postgres: PostgresConfig,
    pub s3: S3Config,
    pub amqp_url: String,
    pub uploads: UploadConfig,
    /// `RATE_LIMIT_UPLOAD_*`, `UPLOAD_QUOTA_BYTES`, `UPLOAD_MAX_CONCURRENT`: see
    /// [`crate::limits`].
    pub limits: crate::limits::LimitConfig,
    /// `REDIS_URL`: the creation rate limits' counters (shared by every replica).
    pub redis_url: String,
    /// `REDIS_PREFIX`: namespace of this service's Redis keys.
    pub redis_prefix: String,
    /// `TRUSTED_PROXIES`: peers whose `X-Forwarded-For` is believed (the gateway), for the
    /// per-IP limit (platform::client_ip).
    pub trusted_proxies: TrustedProxies,
    /// `QUEUE_PREFIX`: prepended to the names of the transcode queues and of this
    /// service's own queue, and to the routing keys of the video events it publishes and
    /// binds (events::Namespace), so parallel tests (or several stacks on one broker) do
    /// not take each other's jobs or see each other's videos. Empty in production.
    pub queue_prefix: String,
    /// `PLAYBACK_SIGNING_KEY`: checks the tokens of signed playback URLs
    /// (`/video/{id}/signed/{token}/…`, identity::playback); media must have the same.
    /// Unset: those paths answer 404.
    pub playback_key: Option<identity::playback::PlaybackKey>,
    /// `HLS_DELIVERY`: how segments and stills of public videos are delivered.
    pub delivery: Delivery,
    /// `HLS_CACHE_BYTES`: memory for hot segments and stills (crate::hls_cache; default
    /// 24 MiB, 0 = none). With the service's own 42 MiB and 64 players' buffers, the
    /// default keeps a replica under 100 MiB (bench/RESULTS.md, "Playback").
    pub hls_cache_bytes: u64,
}

/// `HLS_DELIVERY`: `proxy` (default) streams every file through this service; `redirect`
/// answers a public video's segments and stills with a 302 to a presigned S3 URL, so the
/// bytes come from S3 (or the CDN in front of it) and this service only signs. Playlists
/// are always served here (their relative URIs must keep pointing at the gateway), and a
/// private video's files always stream through, checked per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Proxy,
    Redirect {
        /// `S3_PUBLIC_ENDPOINT`: S3 as clients reach it (the endpoint services use is often
        /// internal); default `S3_ENDPOINT`.
        public_endpoint: String,
        /// `HLS_REDIRECT_TTL_SECS`: how long a presigned URL works (default 3600).
        ttl: Duration,
    },
}

impl Delivery {
    pub fn from_env(s3: &S3Config) -> Result<Self, ConfigError> {
        match var::<String>("HLS_DELIVERY", "proxy")?.as_str() {
            "proxy" => Ok(Self::Proxy),
            "redirect" => Ok(Self::Redirect {
                public_endpoint: var("S3_PUBLIC_ENDPOINT", &s3.endpoint)?,
                ttl: config::secs("HLS_REDIRECT_TTL_SECS", "3600")?,
            }),
            other => Err(ConfigError {
                name: "HLS_DELIVERY".into(),
                value: other.into(),
                reason: "proxy or redirect".into(),
            }),
        }
    }
}

#[derive(Debug, Clone)]
pub struct UploadConfig {
    /// `UPLOAD_PART_SIZE`: bytes per S3 multipart part, and so the memory one active
    /// upload may hold. At least 5 MiB (S3's minimum for every part but the last).
    pub part_size: usize,
    /// `UPLOAD_MAX_SIZE`: the largest `Upload-Length` accepted (advertised as `Tus-Max-Size`).
    pub max_size: u64,
    /// `UPLOAD_EXPIRY_SECS`: an unfinished upload untouched this long is removed.
    pub expiry: Duration,
    /// `UPLOAD_LOCK_WAIT_SECS`: how long a PATCH waits for another request on the same
    /// upload (say, one whose client gave up) to finish before answering 423.
    pub lock_wait: Duration,
    /// `SWEEP_INTERVAL_SECS`: how often unfinished completions, expired uploads and
    /// interrupted purges are looked for.
    pub sweep_interval: Duration,
}

/// S3's lower bound for a multipart part that is not the last.
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

impl Default for UploadConfig {
    fn default() -> Self {
        Self {
            part_size: 8 * 1024 * 1024,
            max_size: 10 * 1024 * 1024 * 1024,
            expiry: Duration::from_secs(24 * 3600),
            lock_wait: Duration::from_secs(10),
            sweep_interval: Duration::from_secs(30),
        }
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let part_size: usize = var("UPLOAD_PART_SIZE", "8388608")?;
        if part_size < MIN_PART_SIZE {
            return Err(ConfigError {
                name: "UPLOAD_PART_SIZE".into(),
                value: part_size.to_string(),
                reason: format!("must be at least {MIN_PART_SIZE} (S3's minimum part size)"),
            });
        }
        let s3 = S3Config::from_env()?;
        Ok(Self {
            http: HttpConfig::from_env("0.0.0.0:8083")?,
            postgres: PostgresConfig::from_env("video")?,
            delivery: Delivery::from_env(&s3)?,
            hls_cache_bytes: var("HLS_CACHE_BYTES", "25165824")?,
            s3,
            amqp_url: config::amqp_url()?,
            uploads: UploadConfig {
                part_size,
                max_size: var("UPLOAD_MAX_SIZE", "10737418240")?,
                expiry: config::secs("UPLOAD_EXPIRY_SECS", "86400")?,
                lock_wait: config::secs("UPLOAD_LOCK_WAIT_SECS", "10")?,
                sweep_interval: config::secs("SWEEP_INTERVAL_SECS", "30")?,
            },
            limits: crate::limits::LimitConfig::from_env()?,
            redis_url: config::redis_url()?,
            redis_prefix: var("REDIS_PREFIX", "kino:")?,
            trusted_proxies: TrustedProxies::from_env()?,
            queue_prefix: var("QUEUE_PREFIX", "")?,
            playback_key: identity::playback::key_from_env()?,
        })
    }
}
