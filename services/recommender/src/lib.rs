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
//! * [`api`]: `Related` and `Recommended`, the gRPC service;
//! * [`changes`], [`follow`]: every write is stamped, and every replica's memory follows
//!   the stamps, so replicas agree whichever of them took an event;
//! * [`snapshot`]: the index kept in S3, so a start does not rebuild the graph.
//!
//! PostgreSQL (`recommend`) holds the vectors and signals; at start the index is read
//! from the newest snapshot (or built from PostgreSQL when there is none), the tastes
//! from PostgreSQL, and both catch up to the newest change before the consumers start.
//! Until then `/readyz` says `index: loading`, the gRPC health service NOT_SERVING, and
//! the API UNAVAILABLE.

pub mod api;
pub mod changes;
pub mod config;
pub mod embed;
pub mod follow;
pub mod index;
pub mod interactions;
pub mod retention;
pub mod snapshot;
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

/// What queries read: the index and the tastes, loaded at start and kept up to date by
/// the follower.
pub struct Serving {
    pub index: Index,
    pub tastes: Tastes,
    /// The snapshot the index was restored from (None: built from PostgreSQL).
    pub snapshot: Option<Uuid>,
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
    /// Wakes this replica's follower when this replica committed a change.
    pub follow_wake: Arc<Notify>,
    /// Where index snapshots are kept; None when they are off.
    pub snapshots: Option<snapshot::Store>,
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
        let snapshots = config.snapshots.as_ref().map(|s| snapshot::Store {
            bucket: platform::s3::Bucket {
                client: platform::s3::client(&s.s3),
                name: s.s3.bucket.clone(),
            },
            prefix: s.prefix.trim_end_matches('/').to_owned(),
        });
        if let Some(store) = &snapshots {
            store.bucket.ensure_in_background(shutdown);
        }
        Ok(Self {
            config: Arc::new(config),
            db,
            rabbit,
            model: Arc::new(model),
            serving: Arc::new(OnceLock::new()),
            embed_wake: Arc::new(Notify::new()),
            follow_wake: Arc::new(Notify::new()),
            snapshots,
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

/// Loads the index and tastes (retrying until PostgreSQL answers) and catches them up,
/// then starts the follower, the consumers and the embedding worker.
async fn start(ctx: Context, shutdown: Shutdown) {
    let backoff = Backoff::fixed(Duration::from_secs(1));
    let started = std::time::Instant::now();
    let Some((serving, cursor, restored)) =
        until_ready("the index", backoff, &shutdown, || load(&ctx)).await
    else {
        return;
    };
    tracing::info!(
        vectors = serving.index.len(),
        from = if restored.is_some() {
            "snapshot"
        } else {
            "postgres"
        },
        secs = started.elapsed().as_secs_f64(),
        "index loaded"
    );
    metrics::gauge!("recommender_index_vectors").set(serving.index.len() as f64);
    metrics::gauge!("recommender_index_dead_slots").set(serving.index.dead_slots() as f64);
    metrics::gauge!("recommender_index_load_seconds").set(started.elapsed().as_secs_f64());
    let _ = ctx.serving.set(serving.clone());
    let snapshots = match (&ctx.snapshots, ctx.config.snapshots.as_ref()) {
        (Some(store), Some(config)) => match snapshot::database_id(ctx.db.pool()).await {
            Ok(database) => Some(snapshot::Snapshots::new(
                store.clone(),
                config.interval,
                database,
                &ctx.model,
                restored,
            )),
            Err(e) => {
                tracing::warn!(error = %e, "no index snapshots: the database id is unreadable");
                None
            }
        },
        _ => None,
    };
    follow::spawn(
        ctx.db.pool().clone(),
        serving.clone(),
        cursor,
        ctx.follow_wake.clone(),
        ctx.config.follow_interval,
        snapshots,
        &shutdown,
    );
    videos::spawn(&ctx, &shutdown);
    interactions::spawn(&ctx, &shutdown);
    videos::embedder(
        ctx.db.pool().clone(),
        ctx.model.clone(),
        ctx.embed_wake.clone(),
        ctx.follow_wake.clone(),
        ctx.config.model.batch_size,
        &shutdown,
    );
}

/// Reads the index (from the newest snapshot, else from every vector in PostgreSQL) and
/// every signal, and catches both up to the newest change. Vectors made by another model
/// (name or version) are first marked for re-embedding. Returns what to serve, the
/// follower's cursor, and the snapshot cursor the index came from (None: built).
async fn load(
    ctx: &Context,
) -> anyhow::Result<(Arc<Serving>, follow::Cursor, Option<(i64, Uuid)>)> {
    use platform::health::Check as _;
    ctx.db.check().await.map_err(anyhow::Error::msg)?;
    let pool = ctx.db.pool();
    let mut reset = changes::begin(pool).await?;
    sqlx::query(
        "UPDATE videos SET embedded_version = NULL, embedding = NULL, change_seq = $3
         WHERE embedding IS NOT NULL AND (model, model_version) IS DISTINCT FROM ($1, $2)",
    )
    .bind(&ctx.model.name)
    .bind(&ctx.model.version)
    .bind(reset.stamp)
    .execute(&mut *reset.tx)
    .await?;
    reset.tx.commit().await?;

    let config = ctx.config.index;
    let mut restored = None;
    if let Some(store) = &ctx.snapshots {
        let database = snapshot::database_id(pool).await?;
        match snapshot::restore(store, database, config, &ctx.model).await {
            Ok(found) => restored = found,
            // S3 down or a damaged snapshot: slower, but the truth is in PostgreSQL.
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "index snapshot unusable; building")
            }
        }
    }
    let (index, videos_cursor, snapshot) = match restored {
        Some((index, manifest)) => (index, manifest.cursor, Some(manifest.id)),
        None => {
            let (rows, cursor) = follow::load_vectors(pool).await?;
            let index = tokio::task::spawn_blocking(move || Index::build(config, rows)).await?;
            (index, cursor, None)
        }
    };
    let tastes = Tastes::new(&ctx.config.taste);
    let signals_cursor = follow::load_tastes(pool, &tastes).await?;
    let serving = Arc::new(Serving {
        index,
        tastes,
        snapshot,
    });
    let mut cursor = follow::Cursor {
        videos: videos_cursor,
        signals: signals_cursor,
    };
    let caught_up = follow::catch_up(pool, &serving, &mut cursor).await?;
    tracing::debug!(rows = caught_up, "caught up since the snapshot");
    let from = snapshot.map(|_| videos_cursor);
    Ok((serving, cursor, from))
}
