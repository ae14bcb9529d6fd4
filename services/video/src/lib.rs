//! The video service: resumable (tus) uploads into S3, asset status and deletion, HLS
//! delivery. This crate is the whole service; `main.rs` only reads the configuration and
//! waits for a signal, so tests run the real thing in-process on a random port.
//!
//! Features: [`tus`] (the protocol surface) over [`uploads`] (bytes into an S3 multipart
//! upload, durably), [`assets`] (status, deletion, transcode results), [`hls`] (delivery),
//! [`sweeper`] (completions, expiry and purges that a crash cut short).

pub mod assets;
pub mod captions;
pub mod config;
pub mod error;
pub mod hls;
pub mod hls_cache;
pub mod identity;
pub mod limits;
pub mod queues;
pub mod storage;
pub mod sweeper;
pub mod tus;
pub mod uploads;
pub mod videos;

use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use events::{Publisher, outbox::Relay};
use platform::{
    Readiness, Shutdown,
    background::{Backoff, until_ready},
    postgres::Postgres,
    s3::Bucket,
};
use tokio::net::TcpListener;

pub use config::{Config, Delivery, UploadConfig};
pub use limits::LimitConfig;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Everything a request handler may need, cloned cheaply into each handler.
#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
    pub db: Postgres,
    pub storage: Bucket,
    /// `HLS_DELIVERY=redirect`: a client for S3's public endpoint, used only to presign
    /// (crate::hls), and how long a presigned URL works.
    pub presigner: Option<(aws_sdk_s3::Client, std::time::Duration)>,
    /// Hot segments and stills in memory (`HLS_CACHE_BYTES`; `None`: off).
    pub hls_cache: Option<Arc<hls_cache::HlsCache>>,
    pub rabbit: Arc<events::Rabbit>,
    /// Where this service's video events go and what its queue binds (`QUEUE_PREFIX`).
    pub events: events::Namespace,
    pub redis: platform::redis::Redis,
    /// Upload creation rate limits (crate::limits).
    pub limiter: platform::rate_limit::Limiter,
    /// Set once the transcode queue is declared (see [`start_relay`]).
    relay: Arc<OnceLock<Relay>>,
}

impl Context {
    /// Connects lazily to every store: nothing here waits for a store to be up.
    pub fn connect(config: Config, shutdown: &Shutdown) -> anyhow::Result<Self> {
        let db = Postgres::start(&config.postgres, &MIGRATOR, shutdown).context("DATABASE_URL")?;
        let client = platform::s3::client(&config.s3);
        // Checksums only where S3 requires them: parts are streamed once and S3-compatible
        // servers differ in their support for the newer default (CRC32 on every request).
        // Nor are responses' checksums asked for: every HLS GET would otherwise ask S3 for
        // the object's checksum (`x-amz-checksum-mode`), and this service validate it, on
        // the hot path of playback; the segments were checked when they were written.
        let client = aws_sdk_s3::Client::from_conf(
            client
                .config()
                .to_builder()
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
                .build(),
        );
        let storage = Bucket {
            client,
            name: config.s3.bucket.clone(),
        };
        let presigner = match &config.delivery {
            config::Delivery::Proxy => None,
            config::Delivery::Redirect {
                public_endpoint,
                ttl,
            } => {
                let public = platform::s3::S3Config {
                    endpoint: public_endpoint.clone(),
                    ..config.s3.clone()
                };
                Some((platform::s3::client(&public), *ttl))
            }
        };
        let hls_cache = hls_cache::HlsCache::new(config.hls_cache_bytes).map(Arc::new);
        storage.ensure_in_background(shutdown);
        let rabbit = events::Rabbit::new(&config.amqp_url, "kino-video");
        let redis = platform::redis::connect(&config.redis_url).context("REDIS_URL")?;
        Ok(Self {
            limiter: platform::rate_limit::Limiter::new(redis.clone(), &config.redis_prefix),
            events: events::Namespace::new(&config.queue_prefix),
            config: Arc::new(config),
            db,
            storage,
            presigner,
            hls_cache,
            rabbit,
            redis,
            relay: Arc::new(OnceLock::new()),
        })
    }

    pub fn readiness(&self) -> Readiness {
        Readiness::new()
            .add("postgres", self.db.clone())
            .add("s3", self.storage.clone())
            .add("rabbitmq", self.rabbit.clone())
            .add("redis", self.redis.clone())
    }

    /// Tells the outbox relay a transaction just committed events.
    pub fn wake_relay(&self) {
        if let Some(relay) = self.relay.get() {
            relay.notify();
        }
    }
}

/// Declares the jobs queue first (the relay publishes jobs to it without `mandatory`, so
/// a missing queue would drop them), then starts the outbox relay.
fn start_relay(ctx: &Context, shutdown: &Shutdown) {
    let (ctx, shutdown) = (ctx.clone(), shutdown.clone());
    tokio::spawn(async move {
        let declare = || queues::declare_jobs(&ctx.rabbit, &ctx.config.queue_prefix);
        if until_ready("the transcode queue", Backoff::STORE, &shutdown, declare)
            .await
            .is_none()
        {
            return;
        }
        // Declaring the jobs queue on every channel it opens, too: a broker that lost it
        // while this service ran gets it back before the next job is published.
        let jobs = queues::transcode_jobs(&ctx.config.queue_prefix);
        let publisher = Arc::new(Publisher::new(ctx.rabbit.clone()).declaring([jobs]));
        let relay = Relay::spawn(ctx.db.pool().clone(), publisher, &shutdown);
        relay.notify();
        let _ = ctx.relay.set(relay);
    });
}

pub fn router(ctx: Context) -> axum::Router {
    let trusted = ctx.config.trusted_proxies.clone();
    let router = axum::Router::new()
        .merge(tus::routes())
        .merge(assets::routes())
        .merge(captions::routes())
        .merge(hls::routes())
        .with_state(ctx);
    // Every request knows its client's address, for the per-IP limit (crate::limits).
    platform::client_ip::resolving(router, trusted)
}

/// Runs the service on `listener` until `shutdown` fires, then drains and returns.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let grace = config.http.shutdown_grace;
    let ctx = Context::connect(config, &shutdown)?;
    start_relay(&ctx, &shutdown);
    assets::consumer::spawn(ctx.clone(), &shutdown);
    assets::moderation::spawn(ctx.clone(), &shutdown);
    sweeper::spawn(ctx.clone(), ctx.config.uploads.sweep_interval, &shutdown);
    let routes = router(ctx.clone());
    platform::http::serve_service(listener, "/video", routes, ctx.readiness(), shutdown, grace)
        .await?;
    ctx.rabbit.close().await;
    Ok(())
}
