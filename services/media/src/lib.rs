//! The media service: the catalogue and its GraphQL API (feed, search, likes, comments,
//! subscriptions). This crate is the whole service; `main.rs` only reads the configuration
//! and waits for a signal, so tests run the real thing in-process on a random port.

pub mod config;

use std::sync::Arc;

use anyhow::Context as _;
use platform::{Readiness, Shutdown, postgres::Postgres};
use tokio::net::TcpListener;

pub use config::Config;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Everything a request handler may need, cloned cheaply into each handler.
#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
    pub db: Postgres,
    pub mongo: mongodb::Database,
    pub redis: platform::redis::ConnectionManager,
    pub rabbit: Arc<events::Rabbit>,
}

impl Context {
    /// Connects lazily to every store: nothing here waits for a store to be up.
    pub async fn connect(config: Config, shutdown: &Shutdown) -> anyhow::Result<Self> {
        let db = Postgres::start(&config.postgres, &MIGRATOR, shutdown).context("DATABASE_URL")?;
        let mongo = platform::mongo::connect(&config.mongodb_uri, "kino-media")
            .await
            .context("MONGODB_URI")?
            .database(&config.mongodb_database);
        let redis = platform::redis::connect(&config.redis_url).context("REDIS_URL")?;
        let rabbit = events::Rabbit::new(&config.amqp_url, "kino-media");
        Ok(Self {
            config: Arc::new(config),
            db,
            mongo,
            redis,
            rabbit,
        })
    }

    pub fn readiness(&self) -> Readiness {
        Readiness::new()
            .add("postgres", self.db.clone())
            .add("mongodb", self.mongo.client().clone())
            .add("redis", self.redis.clone())
            .add("rabbitmq", self.rabbit.clone())
    }
}

/// Runs the service on `listener` until `shutdown` fires, then drains and returns.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let grace = config.http.shutdown_grace;
    let ctx = Context::connect(config, &shutdown).await?;
    let routes = axum::Router::new();
    platform::http::serve_service(listener, "/media", routes, ctx.readiness(), shutdown, grace)
        .await?;
    ctx.rabbit.close().await;
    Ok(())
}
