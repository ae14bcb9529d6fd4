//! Users as media shows them. Profiles belong to auth; media keeps a Redis copy
//! ([`directory`]) filled in batches from auth's gRPC user directory and evicted by
//! `user.updated|deleted` events ([`events`]). Resolvers reach it through a DataLoader, so a
//! page of 100 videos with their owners costs one cache round trip, not 100.

pub mod directory;
pub mod events;

use async_graphql::{Context, ID, Object, Result, connection::Connection};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    catalogue::{Video, store},
    context::{AppContext, viewer},
    cursor::{Cursor, Page},
};

/// A public profile, as auth's user directory (gRPC) gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub display_name: Option<String>,
    pub bio: String,
    pub avatar_url: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Staff roles (`moderator`, `admin`), for moderation decisions; not shown. No serde
    /// default: a profile cached before roles were kept is of an older shape, refetched.
    pub roles: Vec<String>,
}

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }

    async fn username(&self) -> &str {
        &self.username
    }

    /// The display name, or the username when none is set.
    async fn display_name(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.username)
    }

    async fn bio(&self) -> &str {
        &self.bio
    }

    async fn avatar_url(&self) -> Option<&str> {
        self.avatar_url.as_deref()
    }

    async fn created_at(&self) -> OffsetDateTime {
        self.created_at
    }

    /// How many users subscribe to this channel.
    async fn subscriber_count(&self, ctx: &Context<'_>) -> Result<i64> {
        let app = AppContext::get(ctx);
        Ok(app.subscriber_counts.load_one(self.id).await?.unwrap_or(0))
    }

    /// Whether the viewer subscribes to this channel (false when signed out).
    async fn viewer_is_subscribed(&self, ctx: &Context<'_>) -> Result<bool> {
        let Some(me) = viewer(ctx).id() else {
            return Ok(false);
        };
        let app = AppContext::get(ctx);
        Ok(app.follows.load_one((me, self.id)).await?.is_some())
    }

    /// Their playlists, newest first: all of them ("Watch later" included) when it is the
    /// viewer, else the public ones.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn playlists(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<Cursor, crate::playlists::Playlist>> {
        crate::playlists::of_owner(ctx, self.id, first, after).await
    }

    /// Their videos, newest first (all of them, in every state, when it is the viewer).
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn videos(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<Cursor, Video>> {
        videos_of(ctx, self.id, first, after).await
    }
}

/// A user's videos; shared by `User.videos` and `videosByUser`.
pub async fn videos_of(
    ctx: &Context<'_>,
    owner: Uuid,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Connection<Cursor, Video>> {
    let app = AppContext::get(ctx);
    let page = Page::parse(first, after, app.config.limits.max_page)?;
    let everything = viewer(ctx).is(owner);
    let rows = store::by_owner(app.db.pool(), owner, everything, page)
        .await
        .map_err(crate::error::Error::from)?;
    Ok(
        page.connection(rows.into_iter().map(Video::from).collect(), |v| {
            v.row.created_cursor()
        }),
    )
}
