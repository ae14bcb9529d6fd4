//! The video service: resumable (tus) uploads into S3, asset status and deletion, HLS
//! delivery. This crate is the whole service; `main.rs` only reads the configuration and
//! waits for a signal, so tests run the real thing in-process on a random port.

pub mod config;

use std::sync::Arc;

use anyhow::Context as _;
use platform::{Readiness, Shutdown, postgres::Postgres, s3::Bucket};
use tokio::net::TcpListener;

pub use config::Config;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Everything a request handler may need, cloned cheaply into each handler.
#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
    pub db: Postgres,
    pub storage: Bucket,
    pub rabbit: Arc<events::Rabbit>,
}

impl Context {
    /// Connects lazily to every store: nothing here waits for a store to be up.
    pub fn connect(config: Config, shutdown: &Shutdown) -> anyhow::Result<Self> {
        let db = Postgres::start(&config.postgres, &MIGRATOR, shutdown).context("DATABASE_URL")?;
        let storage = Bucket {
            client: platform::s3::client(&config.s3),
            name: config.s3.bucket.clone(),
        };
        storage.ensure_in_background(shutdown);
        let rabbit = events::Rabbit::new(&config.amqp_url, "kino-video");
        Ok(Self {
            config: Arc::new(config),
            db,
            storage,
            rabbit,
        })
    }

    pub fn readiness(&self) -> Readiness {
        Readiness::new()
            .add("postgres", self.db.clone())
            .add("s3", self.storage.clone())
            .add("rabbitmq", self.rabbit.clone())
    }
}

/// Runs the service on `listener` until `shutdown` fires, then drains and returns.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let grace = config.http.shutdown_grace;
    let ctx = Context::connect(config, &shutdown)?;
    let routes = axum::Router::new();
    platform::http::serve_service(listener, "/video", routes, ctx.readiness(), shutdown, grace)
        .await?;
    ctx.rabbit.close().await;
    Ok(())
}
