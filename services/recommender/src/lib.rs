//! The recommender: sentence embeddings of every video, an in-memory nearest-neighbour
//! index over them, and users' tastes, serving "more like this" and personal feeds to
//! media over gRPC (`kino.recommender.v1`, on `GRPC_BIND_ADDR`).
//!
//! * [`embed`]: all-MiniLM-L6-v2 on the CPU with candle (384 dimensions, mean pooling,
//!   unit length);
//! * [`index`]: the HNSW graph and which of its vectors may be listed;
//! * [`taste`]: decayed per-user signals and the taste vector they make;
//! * [`videos`]: the `recommender.videos` consumer and the embedding worker;
//! * [`interactions`]: the `recommender.interactions` consumer;
//! * [`api`]: `Related` and `Recommended`, the gRPC service.
//!
//! PostgreSQL (`recommend`) holds the vectors and signals; at start they are loaded into
//! memory ([`Serving`]) before the consumers start, so no event is applied to a half-built
//! index. Until then `/readyz` says `index: loading`, the gRPC health service
//! NOT_SERVING, and the API UNAVAILABLE.

pub mod api;
pub mod config;
pub mod embed;
pub mod index;
pub mod interactions;
pub mod retention;
pub mod taste;
pub mod videos;

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use anyhow::Context as _;
use platform::{
    Readiness, Shutdown,
    background::{Backoff, until_ready},
    postgres::Postgres,
};
use tokio::{net::TcpListener, sync::Notify};
use uuid::Uuid;

pub use config::Config;

use crate::{embed::Model, index::Index, taste::Tastes};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// What queries read: the index and the tastes, built at start.
pub struct Serving {
    pub index: Index,
    pub tastes: Tastes,
}

#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
    pub db: Postgres,
    pub rabbit: Arc<events::Rabbit>,
    pub model: Arc<Model>,
    /// Set once loaded.
    pub serving: Arc<OnceLock<Arc<Serving>>>,
    /// Wakes the embedding worker when a text changed.
    pub embed_wake: Arc<Notify>,
}

impl Context {
    /// Loads the model (a bad `RECOMMENDER_MODEL_DIR` fails here, at start) and connects
    /// lazily to the stores.
    pub async fn connect(config: Config, shutdown: &Shutdown) -> anyhow::Result<Self> {
        let db = Postgres::start(&config.postgres, &MIGRATOR, shutdown).context("DATABASE_URL")?;
        let rabbit = events::Rabbit::new(&config.amqp_url, "kino-recommender");
        let model_config = config.model.clone();
        let model = tokio::task::spawn_blocking(move || {
            Model::load(
                &model_config.dir,
                &model_config.name,
                model_config.max_tokens,
            )
        })
        .await??;
        tracing::info!(model = %model.name, version = %model.version, "model loaded");
        Ok(Self {
            config: Arc::new(config),
            db,
            rabbit,
            model: Arc::new(model),
            serving: Arc::new(OnceLock::new()),
            embed_wake: Arc::new(Notify::new()),
        })
    }

    pub fn readiness(&self) -> Readiness {
        let serving = self.serving.clone();
        Readiness::new()
            .add("postgres", self.db.clone())
            .add("rabbitmq", self.rabbit.clone())
            .with("index", move || {
                let loaded = serving.get().is_some();
                async move {
                    if loaded {
                        Ok(())
                    } else {
                        Err("loading".to_owned())
                    }
                }
            })
    }
}

/// The two ports the recommender listens on.
pub struct Listeners {
    /// Probes and metrics (`/healthz`, `/readyz`, `/metrics`).
    pub http: TcpListener,
    /// The gRPC API (and the gRPC health service).
    pub grpc: TcpListener,
}

impl Listeners {
    /// Binds `BIND_ADDR` and `GRPC_BIND_ADDR`.
    pub async fn bind(config: &Config) -> anyhow::Result<Self> {
        Ok(Self {
            http: TcpListener::bind(config.http.bind)
                .await
                .with_context(|| format!("BIND_ADDR {}", config.http.bind))?,
            grpc: TcpListener::bind(config.grpc.bind)
                .await
                .with_context(|| format!("GRPC_BIND_ADDR {}", config.grpc.bind))?,
        })
    }
}

/// Runs the service until `shutdown` fires, then drains and returns.
pub async fn run(config: Config, listeners: Listeners, shutdown: Shutdown) -> anyhow::Result<()> {
    let ctx = Context::connect(config, &shutdown).await?;
    serve(ctx, listeners, shutdown).await
}

/// [`run`] with a context made beforehand.
pub async fn serve(ctx: Context, listeners: Listeners, shutdown: Shutdown) -> anyhow::Result<()> {
    let grace = ctx.config.http.shutdown_grace;
    tokio::spawn(start(ctx.clone(), shutdown.clone()));
    let prunes = retention::prunes(ctx.config.processed_events_retention);
    platform::retention::spawn(ctx.db.clone(), prunes, ctx.config.prune, &shutdown);
    let grpc = tokio::spawn(rpc::server::serve(
        listeners.grpc,
        rpc::server::Services::new(api::Api::server(ctx.clone())),
        ctx.readiness(),
        shutdown.clone(),
    ));
    // Only the ops endpoints on HTTP.
    let served = platform::http::serve_service(
        listeners.http,
        "/recommender",
        axum::Router::new(),
        ctx.readiness(),
        shutdown.clone(),
        grace,
    )
    .await;
    if served.is_err() {
        shutdown.trigger();
    }
    grpc.await??;
    served?;
    ctx.rabbit.close().await;
    Ok(())
}

/// Loads the index and tastes from PostgreSQL (retrying until it answers), then starts
/// the consumers and the embedding worker.
async fn start(ctx: Context, shutdown: Shutdown) {
    let backoff = Backoff::fixed(Duration::from_secs(1));
    let Some(serving) = until_ready("the index", backoff, &shutdown, || load(&ctx)).await else {
        return;
    };
    let serving = Arc::new(serving);
    tracing::info!(vectors = serving.index.len(), "index loaded");
    metrics::gauge!("recommender_index_vectors").set(serving.index.len() as f64);
    metrics::gauge!("recommender_index_dead_slots").set(0.0);
    let _ = ctx.serving.set(serving.clone());
    videos::spawn(&ctx, serving.clone(), &shutdown);
    interactions::spawn(&ctx, serving.clone(), &shutdown);
    videos::embedder(
        ctx.db.pool().clone(),
        ctx.model.clone(),
        serving,
        ctx.embed_wake.clone(),
        ctx.config.model.batch_size,
        &shutdown,
    );
}

/// Reads every current vector and signal. Vectors made by another model (name or
/// version) are marked for re-embedding instead of loaded.
async fn load(ctx: &Context) -> anyhow::Result<Serving> {
    use platform::health::Check as _;
    ctx.db.check().await.map_err(anyhow::Error::msg)?;
    let pool = ctx.db.pool();
    sqlx::query(
        "UPDATE videos SET embedded_version = NULL, embedding = NULL
         WHERE embedding IS NOT NULL AND (model, model_version) IS DISTINCT FROM ($1, $2)",
    )
    .bind(&ctx.model.name)
    .bind(&ctx.model.version)
    .execute(pool)
    .await?;
    let rows: Vec<(Uuid, Vec<f32>, bool)> = sqlx::query_as(
        "SELECT id, embedding, visibility = 'public' AND ready FROM videos
         WHERE embedding IS NOT NULL AND NOT deleted",
    )
    .fetch_all(pool)
    .await?;
    let config = ctx.config.index;
    let index = tokio::task::spawn_blocking(move || Index::build(config, rows)).await?;

    let tastes = Tastes::new(&ctx.config.taste);
    let signals: Vec<(Uuid, Uuid, f64, time::OffsetDateTime, bool)> =
        sqlx::query_as("SELECT user_id, video_id, score, score_at, watched FROM user_signals")
            .fetch_all(pool)
            .await?;
    for (user, video, value, at, watched) in signals {
        let score = taste::Score {
            value,
            at: taste::unix(at),
        };
        tastes.set(user, video, score, watched);
    }
    Ok(Serving { index, tastes })
}
