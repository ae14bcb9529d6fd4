//! The ranker worker: consumes interaction events, keeps the trending sorted sets in Redis
//! and archives raw events to MongoDB. Besides its consumers it serves only the ops
//! endpoints (`/healthz`, `/readyz`, `/metrics`).

pub mod config;

use std::sync::Arc;

use anyhow::Context as _;
use platform::{Readiness, Shutdown};
use tokio::net::TcpListener;

pub use config::Config;

#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
    pub redis: platform::redis::ConnectionManager,
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
}

/// Runs the worker until `shutdown` fires, then drains and returns.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let grace = config.http.shutdown_grace;
    let ctx = Context::connect(config).await?;
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
