//! The GraphQL schema: the feature modules' queries, mutations and subscriptions merged,
//! with the limits every request is held to. Nothing imports this but the service's
//! wiring (routes, the WebSocket transport, the SDL export): what resolvers need from a
//! request is in [`crate::context`].

use async_graphql::{
    MergedObject, MergedSubscription, Schema,
    extensions::apollo_persisted_queries::{ApolloPersistedQueries, LruCacheStorage},
};

use crate::{
    Context,
    catalogue::graphql::{CatalogueMutation, CatalogueQuery},
    channels::ChannelMutation,
    comments::{
        CommentMutation, CommentQuery,
        rules::{CommentRulesMutation, CommentRulesQuery},
    },
    config::Limits,
    history::{HistoryMutation, HistoryQuery},
    interactions::InteractionMutation,
    likes::LikeMutation,
    moderation::{ModerationMutation, ModerationQuery},
    notifications::{NotificationMutation, NotificationQuery, NotificationSubscription},
    playlists::{PlaylistMutation, PlaylistQuery},
    realtime::RealtimeSubscription,
    recommend::RecommendQuery,
    search::SearchQuery,
    trending::{TrendingQuery, TrendingSubscription},
};

#[derive(MergedObject, Default)]
pub struct Query(
    CatalogueQuery,
    SearchQuery,
    CommentQuery,
    TrendingQuery,
    RecommendQuery,
    PlaylistQuery,
    NotificationQuery,
    HistoryQuery,
    ModerationQuery,
    CommentRulesQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    CatalogueMutation,
    LikeMutation,
    ChannelMutation,
    CommentMutation,
    InteractionMutation,
    PlaylistMutation,
    NotificationMutation,
    HistoryMutation,
    ModerationMutation,
    CommentRulesMutation,
);

/// Live updates, over graphql-transport-ws at `/media/graphql/ws` (see `realtime`).
#[derive(MergedSubscription, Default)]
pub struct Subscription(
    RealtimeSubscription,
    TrendingSubscription,
    NotificationSubscription,
);

pub type KinoSchema = Schema<Query, Mutation, Subscription>;

/// The schema with its limits; `ctx` is absent only when exporting the SDL.
pub fn build(ctx: Option<Context>, limits: Limits) -> KinoSchema {
    let mut builder = Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .limit_depth(limits.max_depth)
    .limit_complexity(limits.max_complexity)
    .limit_recursive_depth(32)
    .limit_directives(16)
    // Parsed documents of persisted queries are kept per replica; a client whose
    // hash is unknown here resends the query once (the APQ protocol).
    .extension(ApolloPersistedQueries::new(LruCacheStorage::new(1024)));
    if let Some(ctx) = ctx {
        builder = builder.data(ctx);
    }
    builder.finish()
}

/// The SDL clients build against (checked in as `schema.graphql`).
pub fn sdl() -> String {
    build(
        None,
        Limits {
            max_depth: 1,
            max_complexity: 1,
            max_page: 1,
            max_body_bytes: 1,
        },
    )
    .sdl()
}
