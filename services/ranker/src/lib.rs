//! The ranker worker: consumes interaction events, keeps the trending sorted sets in Redis
//! and archives raw events to MongoDB. Besides its consumers it serves only the ops
//! endpoints (`/healthz`, `/readyz`, `/metrics`).
//!
//! * [`scoring`]: weights and forward decay (the math, unit- and property-tested);
//! * [`store`]: the Redis state and the atomic scripts that change it;
//! * [`ingest`]: the `ranker.interactions` consumer, a batch at a time;
//! * [`rebase`]: moving each sorted set's landmark before scores outgrow f64;
//! * [`counters`]: accepted views and watch time, reported to the catalogue exactly once;
//! * [`archive`]: the `ranker.archive` consumer, raw events into MongoDB once each.

pub mod archive;
pub mod config;
pub mod counters;
pub mod error;
pub mod ingest;
pub mod rebase;
pub mod scoring;
pub mod store;

use std::sync::Arc;

use anyhow::Context as _;
use platform::{Readiness, Shutdown};
use tokio::net::TcpListener;

pub use config::Config;
pub use error::Error;

#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
    pub redis: platform::redis::Redis,
    pub mongo: mongodb::Database,
    pub rabbit: Arc<events::Rabbit>,
}

impl Context {
    pub async fn connect(config: Config) -> anyhow::Result<Self> {
        let redis = platform::redis::connect(&config.redis_url).context("REDIS_URL")?;
        let mongo = platform::mongo::connect(&config.mongodb_uri, "kino-ranker")
            .await
            .context("MONGODB_URI")?
            .database(&config.mongodb_database);
        let rabbit = events::Rabbit::new(&config.amqp_url, "kino-ranker");
        Ok(Self {
            config: Arc::new(config),
            redis,
            mongo,
            rabbit,
        })
    }

    pub fn readiness(&self) -> Readiness {
        Readiness::new()
            .add("redis", self.redis.clone())
            .add("mongodb", self.mongo.client().clone())
            .add("rabbitmq", self.rabbit.clone())
    }

    /// The ingest state over this context's stores.
    pub fn ingestor(&self) -> ingest::Ingestor {
        ingest::Ingestor {
            store: store::Store::new(self.redis.clone(), &self.config.redis_prefix),
            scoring: self.config.scoring,
            ingest: self.config.ingest,
            landmarks: ingest::Landmarks::default(),
        }
    }
}

/// Runs the worker until `shutdown` fires, then drains and returns.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let grace = config.http.shutdown_grace;
    let ctx = Context::connect(config).await?;
    let roles = ctx.config.roles;
    if roles.rank {
        let ingestor = Arc::new(ctx.ingestor());
        // State left by a version before the window shards (a no-op once moved; retried
        // at the next start if Redis is not there yet).
        match ingestor.store.upgrade_unsharded().await {
            Ok(0) => {}
            Ok(moved) => tracing::info!(sets = moved, "trending sets moved to window shards"),
            Err(e) => tracing::warn!(error = %e, "trending state not checked for the old layout"),
        }
        ingest::spawn(&ctx, ingestor.clone(), &shutdown);
        rebase::spawn(ingestor.clone(), &shutdown);
        counters::spawn(
            ingestor.store.clone(),
            Arc::new(events::Publisher::new(ctx.rabbit.clone())),
            ctx.config.queue_prefix.clone(),
            ctx.config.ingest.counter_flush,
            &shutdown,
        );
    }
    if roles.archive {
        archive::spawn(&ctx, &shutdown);
    }
    platform::http::serve_service(
        listener,
        "/ranker",
        axum::Router::new(),
        ctx.readiness(),
        shutdown,
        grace,
    )
    .await?;
    ctx.rabbit.close().await;
    Ok(())
}
