//! The media service: the catalogue and its GraphQL API (feed, search, likes, comments,
//! channel subscriptions). This crate is the whole service; `main.rs` only reads the
//! configuration and waits for a signal, so tests run the real thing in-process on a
//! random port.
//!
//! Features, one folder each: [`catalogue`] (videos from video.* events, feed, owner
//! edits), [`search`], [`likes`], [`channels`] (subscriptions), [`comments`], [`users`]
//! (profiles from auth, cached), [`interactions`] (views, shares, watch time → the
//! ranker), [`trending`] (the ranker's lists), [`recommend`] (related videos and the
//! personal feed, from the recommender), [`realtime`] (GraphQL subscriptions over
//! WebSocket, fanned out across replicas). [`schema`] merges them; [`routes`] serves them.

pub mod catalogue;
pub mod channels;
pub mod comments;
pub mod config;
pub mod cursor;
pub mod error;
pub mod interactions;
pub mod likes;
pub mod page_cache;
pub mod realtime;
pub mod recommend;
pub mod routes;
pub mod schema;
pub mod search;
pub mod trending;
pub mod users;
pub mod viewer;

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use async_graphql::dataloader::DataLoader;
use events::{Publisher, outbox::Relay};
use platform::{
    Readiness, Shutdown,
    background::{Backoff, until_ready},
    postgres::Postgres,
};
use tokio::net::TcpListener;

pub use config::Config;

use crate::{
    catalogue::FeedPages,
    channels::{FollowLoader, SubscriberCountLoader},
    comments::store::Comments,
    interactions::Interactions,
    likes::LikeLoader,
    users::directory::{Directory, UserLoader},
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Everything a resolver may need, cloned cheaply into each task. The DataLoaders are
/// shared by all requests (none caches), so concurrent requests also share batches.
#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
    pub db: Postgres,
    pub mongo: mongodb::Database,
    pub redis: platform::redis::ConnectionManager,
    pub rabbit: Arc<events::Rabbit>,
    pub relay: Relay,
    pub comments: Comments,
    pub directory: Directory,
    pub users: Arc<DataLoader<UserLoader>>,
    pub likes: Arc<DataLoader<LikeLoader>>,
    pub subscriber_counts: Arc<DataLoader<SubscriberCountLoader>>,
    pub follows: Arc<DataLoader<FollowLoader>>,
    pub videos: Arc<DataLoader<catalogue::VideoLoader>>,
    pub feed_cache: FeedPages,
    pub search_cache: search::SearchPages,
    pub realtime: realtime::Realtime,
    /// `trendingChanged`'s shared readers, one per window with subscribers.
    pub trending_boards: trending::TrendingBoards,
    pub interactions: Interactions,
    pub recommender: recommend::Client,
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
        let relay = Relay::spawn(
            db.pool().clone(),
            Arc::new(Publisher::new(rabbit.clone())),
            shutdown.triggered(),
        );
        let directory = Directory::new(
            redis.clone(),
            &config.auth_url,
            &config.redis_prefix,
            config.user_cache_ttl,
        );
        let pool = db.pool().clone();
        let realtime = realtime::Realtime::start(
            config.realtime.clone(),
            &config.redis_url,
            &config.redis_prefix,
            redis.clone(),
            pool.clone(),
            realtime::tokens::TokenAuth::new(
                &config.auth_url,
                redis.clone(),
                &config.redis_prefix,
                &config.realtime.jwt,
            ),
            shutdown,
        )
        .context("REDIS_URL")?;
        let delay = config.loader_delay;
        Ok(Self {
            realtime,
            trending_boards: trending::TrendingBoards::default(),
            users: Arc::new(loader(UserLoader(directory.clone()), delay)),
            likes: Arc::new(loader(LikeLoader(pool.clone()), delay)),
            subscriber_counts: Arc::new(loader(SubscriberCountLoader(pool.clone()), delay)),
            follows: Arc::new(loader(FollowLoader(pool.clone()), delay)),
            videos: Arc::new(loader(catalogue::VideoLoader(pool), delay)),
            comments: Comments::new(&mongo),
            feed_cache: FeedPages::new(config.feed_cache),
            search_cache: search::SearchPages::new(config.search_cache),
            interactions: Interactions::new(
                rabbit.clone(),
                &config.queue_prefix,
                config.interaction_buffer,
                config.interaction_batch,
                config.interaction_pack,
            ),
            directory,
            recommender: recommend::Client::new(
                &config.recommender_url,
                config.recommender_timeout,
            ),
            config: Arc::new(config),
            db,
            mongo,
            redis,
            rabbit,
            relay,
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

/// A DataLoader that batches what resolvers ask for within `delay` (`DATALOADER_DELAY_MILLIS`),
/// without caching (values change under it; each request sees fresh state).
fn loader<T>(inner: T, delay: Duration) -> DataLoader<T> {
    DataLoader::new(inner, tokio::spawn)
        .delay(delay)
        .max_batch_size(500)
}

/// Creates the MongoDB indexes, retrying until MongoDB answers (start-up never waits).
fn ensure_indexes(comments: Comments, shutdown: &Shutdown) {
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        let ensure = || comments.ensure_indexes();
        until_ready("comment indexes", Backoff::STORE, &shutdown, ensure).await;
    });
}

/// Runs the service on `listener` until `shutdown` fires, then drains and returns.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let ctx = Context::connect(config, &shutdown).await?;
    serve(ctx, listener, shutdown).await
}

/// [`run`] with a context made beforehand (tests keep a handle on it, e.g. its hub).
pub async fn serve(ctx: Context, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let grace = ctx.config.http.shutdown_grace;
    let limits = ctx.config.limits;
    let recount_every = ctx.config.comment_recount_interval;
    // Open WebSocket connections show as 0 before the first client (realtime::metrics).
    platform::metrics::register_websocket_connections();
    ensure_indexes(ctx.comments.clone(), &shutdown);
    catalogue::events::spawn(&ctx, shutdown.triggered());
    users::events::spawn(&ctx, ctx.directory.clone(), shutdown.triggered());
    comments::recount::spawn(ctx.clone(), recount_every, &shutdown);
    interactions::counters::spawn(&ctx, shutdown.triggered());

    realtime::progress::spawn(&ctx, shutdown.triggered());

    let schema = schema::build(Some(ctx.clone()), limits);
    let routes = routes::router(schema.clone(), limits.max_body_bytes)
        .merge(realtime::protocol::router(schema, ctx.realtime.clone()));
    platform::http::serve_service(listener, "/media", routes, ctx.readiness(), shutdown, grace)
        .await?;
    ctx.rabbit.close().await;
    Ok(())
}
