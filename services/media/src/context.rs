//! What every part of the service shares: the [`Context`] (stores, loaders, caches, the
//! real-time hub), built once at start and cloned cheaply into each task, and the two
//! things resolvers take from a request, the context and the [`viewer`].
//!
//! Feature modules import their resolver helpers from here, never from the schema: the
//! schema merges the features, so a feature that imported it would import every other
//! feature with it.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use async_graphql::{Context as GqlContext, dataloader::DataLoader};
use events::{Publisher, outbox::Relay};
use platform::{Readiness, Shutdown, postgres::Postgres};

use crate::{
    Config,
    catalogue::{self, FeedPages},
    channels::{FollowLoader, SubscriberCountLoader},
    comments::{rules::BlockLoader, store::Comments},
    interactions::Interactions,
    likes::LikeLoader,
    playlists, realtime, recommend, search, trending,
    users::directory::{Directory, UserLoader},
    viewer::{Staff, Viewer},
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Everything a resolver may need, cloned cheaply into each task. The DataLoaders are
/// shared by all requests (none caches), so concurrent requests also share batches.
#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
    pub db: Postgres,
    pub mongo: mongodb::Database,
    pub redis: platform::redis::Redis,
    pub rabbit: Arc<events::Rabbit>,
    /// Where media's events go and what its queues bind (`QUEUE_PREFIX`).
    pub events: events::Namespace,
    pub relay: Relay,
    pub comments: Comments,
    pub directory: Directory,
    pub users: Arc<DataLoader<UserLoader>>,
    pub likes: Arc<DataLoader<LikeLoader>>,
    pub subscriber_counts: Arc<DataLoader<SubscriberCountLoader>>,
    pub follows: Arc<DataLoader<FollowLoader>>,
    /// Whom each viewer blocks (crate::comments::rules).
    pub blocks: Arc<DataLoader<BlockLoader>>,
    pub videos: Arc<DataLoader<catalogue::VideoLoader>>,
    /// `Video.inPlaylists` (crate::playlists).
    pub holding_playlists: Arc<DataLoader<playlists::HoldingLoader>>,
    pub feed_cache: FeedPages,
    pub search_cache: search::SearchPages,
    /// This replica's search index and suggestions (search::replica).
    pub search: search::SearchIndex,
    pub realtime: realtime::Realtime,
    /// `trendingChanged`'s shared readers, one per window with subscribers.
    pub trending_boards: trending::TrendingBoards,
    pub interactions: Interactions,
    pub recommender: recommend::Client,
    /// Abuse limits (crate::rate_limits).
    pub limiter: platform::rate_limit::Limiter,
    /// Wakes this replica's notification fan-out (crate::notifications::fanout).
    pub fanout_wake: crate::notifications::FanoutWake,
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
            shutdown,
        );
        let directory = Directory::new(
            redis.clone(),
            rpc::client::balanced_channel(&config.auth_grpc_url).context("AUTH_GRPC_URL")?,
            config.auth_timeout,
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
            events: config.namespace(),
            realtime,
            trending_boards: trending::TrendingBoards::default(),
            users: Arc::new(loader(UserLoader(directory.clone()), delay)),
            likes: Arc::new(loader(LikeLoader(pool.clone()), delay)),
            subscriber_counts: Arc::new(loader(SubscriberCountLoader(pool.clone()), delay)),
            follows: Arc::new(loader(FollowLoader(pool.clone()), delay)),
            blocks: Arc::new(loader(BlockLoader(pool.clone()), delay)),
            holding_playlists: Arc::new(loader(playlists::HoldingLoader(pool.clone()), delay)),
            videos: Arc::new(loader(catalogue::VideoLoader(pool), delay)),
            comments: Comments::new(&mongo),
            feed_cache: FeedPages::new(config.feed_cache),
            search_cache: search::SearchPages::new(config.search_cache),
            search: search::SearchIndex::default(),
            interactions: Interactions::new(
                rabbit.clone(),
                &config.queue_prefix,
                config.interaction_buffer,
                config.interaction_batch,
                config.interaction_pack,
            ),
            directory,
            recommender: recommend::Client::new(
                rpc::client::balanced_channel(&config.recommender_url)
                    .context("RECOMMENDER_URL")?,
                config.recommender_timeout,
            ),
            limiter: platform::rate_limit::Limiter::new(redis.clone(), &config.redis_prefix),
            fanout_wake: Default::default(),
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
            .add("search", self.search.clone())
    }
}

/// A DataLoader that batches what resolvers ask for within `delay` (`DATALOADER_DELAY_MILLIS`),
/// without caching (values change under it; each request sees fresh state).
fn loader<T>(inner: T, delay: Duration) -> DataLoader<T> {
    DataLoader::new(inner, tokio::spawn)
        .delay(delay)
        .max_batch_size(500)
}

/// What resolvers reach through `AppContext::get(ctx)`: the service's [`Context`].
pub type AppContext = Context;

impl Context {
    /// The service context from inside a resolver.
    pub fn get<'a>(ctx: &GqlContext<'a>) -> &'a Context {
        ctx.data_unchecked::<Context>()
    }
}

/// The viewer of the current request (anonymous when the request carried no identity).
pub fn viewer(ctx: &GqlContext<'_>) -> Viewer {
    ctx.data_opt::<Viewer>().copied().unwrap_or(Viewer(None))
}

/// The viewer's staff roles (none for most viewers).
pub fn staff(ctx: &GqlContext<'_>) -> Staff {
    ctx.data_opt::<Staff>().copied().unwrap_or_default()
}

/// Counts a store round trip (`media_store_queries_total{store, query}`): tests assert
/// that a page costs a bounded number of them, whatever its size.
pub fn count_query(store: &'static str, query: &'static str) {
    metrics::counter!("media_store_queries_total", "store" => store, "query" => query).increment(1);
}
