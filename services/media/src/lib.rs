//! The media service: the catalogue and its GraphQL API (feed, search, likes, comments,
//! channel subscriptions). This crate is the whole service; `main.rs` only reads the
//! configuration and waits for a signal, so tests run the real thing in-process on a
//! random port.
//!
//! Features, one folder each: [`catalogue`] (videos from video.* events, feed, owner
//! edits), [`search`] (full-text search and suggestions, an index per replica), [`likes`], [`channels`] (subscriptions), [`comments`], [`playlists`],
//! [`notifications`], [`history`] (watch history and resume), [`moderation`] (reports,
//! the moderators' queue and decisions, the audit log), [`users`]
//! (profiles from auth, cached), [`erasure`] (what a deleted account leaves behind is
//! removed), [`interactions`] (views, shares, watch time → the
//! ranker), [`trending`] (the ranker's lists), [`recommend`] (related videos and the
//! personal feed, from the recommender), [`realtime`] (GraphQL subscriptions over
//! WebSocket, fanned out across replicas). [`context`] is what they all share (stores,
//! loaders, caches, and the resolvers' accessors); [`schema`] merges them; [`routes`]
//! serves them.

pub mod catalogue;
pub mod channels;
pub mod comments;
pub mod config;
pub mod context;
pub mod cursor;
pub mod erasure;
pub mod error;
pub mod history;
pub mod interactions;
pub mod likes;
pub mod moderation;
pub mod notifications;
pub mod page_cache;
pub mod playlists;
pub mod rate_limits;
pub mod realtime;
pub mod recommend;
pub mod retention;
pub mod routes;
pub mod schema;
pub mod search;
pub mod trending;
pub mod users;
pub mod viewer;

use platform::{
    Shutdown,
    background::{Backoff, until_ready},
};
use tokio::net::TcpListener;

pub use config::Config;
pub use context::Context;

use crate::comments::store::Comments;

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
    catalogue::events::spawn(&ctx, &shutdown);
    search::replica::spawn(
        ctx.search.clone(),
        ctx.db.clone(),
        ctx.config.postgres.url.clone(),
        ctx.directory.clone(),
        &shutdown,
    );
    users::events::spawn(&ctx, ctx.directory.clone(), &shutdown);
    erasure::spawn(&ctx, &shutdown);
    comments::recount::spawn(ctx.clone(), recount_every, &shutdown);
    let prunes = retention::prunes(
        ctx.config.processed_events_retention,
        ctx.config.notification_retention,
    );
    platform::retention::spawn(ctx.db.clone(), prunes, ctx.config.prune, &shutdown);
    interactions::counters::spawn(&ctx, &shutdown);
    notifications::fanout::spawn(&ctx, &shutdown);
    notifications::events::spawn(&ctx, &shutdown);
    moderation::events::spawn(&ctx, &shutdown);

    realtime::progress::spawn(&ctx, &shutdown);

    let schema = schema::build(Some(ctx.clone()), limits);
    let routes = routes::router(
        schema.clone(),
        limits.max_body_bytes,
        ctx.config.trusted_proxies.clone(),
    )
    .merge(realtime::protocol::router(schema, ctx.realtime.clone()));
    platform::http::serve_service(listener, "/media", routes, ctx.readiness(), shutdown, grace)
        .await?;
    ctx.rabbit.close().await;
    Ok(())
}
