//! Likes: one row per (user, video) and an exact counter on the video, both changed in one
//! transaction. The counter update takes the video's row lock, so concurrent likes
//! serialise on it and the count always equals the rows; liking twice or unliking what
//! was never liked changes nothing (the insert/delete affects no row, so neither does the
//! counter). A like or unlike that changed something puts its interaction event (for the
//! ranker) in the outbox in the same transaction, so it is published exactly when it
//! counted.

use std::collections::HashMap;

use async_graphql::{
    Context, ID, Object, Result,
    connection::{Connection, Edge},
    dataloader::Loader,
};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use events::interaction::{Action, ViewerKey};

use crate::{
    catalogue::{self, Video, store},
    context::{AppContext, count_query, viewer},
    cursor::{Cursor, Page},
    error::Error,
    interactions, rate_limits,
    users::User,
};

#[derive(Default)]
pub struct LikeMutation;

#[Object]
impl LikeMutation {
    /// Likes a video (idempotent). Returns the video with its new count.
    async fn like_video(&self, ctx: &Context<'_>, video_id: ID) -> Result<Video> {
        Ok(set_like(ctx, &video_id, true).await?)
    }

    /// Takes a like back (idempotent).
    async fn unlike_video(&self, ctx: &Context<'_>, video_id: ID) -> Result<Video> {
        Ok(set_like(ctx, &video_id, false).await?)
    }
}

async fn set_like(ctx: &Context<'_>, video_id: &ID, like: bool) -> Result<Video, Error> {
    let user = viewer(ctx).require()?;
    let video_id = catalogue::parse_id(video_id)?;
    if like {
        rate_limits::admit(ctx, user, rate_limits::Action::Like).await?;
    }
    let app = AppContext::get(ctx);
    let mut tx = app.db.pool().begin().await?;
    let video = store::get_for_update(&mut tx, video_id)
        .await?
        .filter(|v| v.visible_to(Some(user)))
        .ok_or(Error::NotFound("no such video"))?;
    // The like's time, when this call changed something (the ranker's event needs it).
    let changed: Option<OffsetDateTime> = if like {
        sqlx::query_scalar(
            "INSERT INTO likes (user_id, video_id) VALUES ($1, $2) ON CONFLICT DO NOTHING
             RETURNING created_at",
        )
    } else {
        sqlx::query_scalar(
            "DELETE FROM likes WHERE user_id = $1 AND video_id = $2 RETURNING created_at",
        )
    }
    .bind(user)
    .bind(video_id)
    .fetch_optional(&mut *tx)
    .await?;
    let mut video = video;
    if let Some(liked_at) = changed {
        let action = if like {
            Action::Like
        } else {
            Action::Unlike { liked_at }
        };
        let event = interactions::interaction(&video, ViewerKey::user(user), action);
        app.interactions.enqueue(&mut tx, event).await?;
        let delta: i64 = if like { 1 } else { -1 };
        video.likes_count = sqlx::query_scalar(
            "UPDATE videos SET likes_count = likes_count + $2 WHERE id = $1 RETURNING likes_count",
        )
        .bind(video_id)
        .bind(delta)
        .fetch_one(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    if changed.is_some() {
        app.relay.notify();
        app.realtime.stats.touch(video_id);
    }
    Ok(video.into())
}

/// Who liked `video`, newest first.
pub async fn liked_by(
    app: &AppContext,
    video: Uuid,
    page: Page,
) -> Result<Connection<Cursor, User>> {
    count_query("postgres", "liked_by");
    let rows: Vec<(Uuid, OffsetDateTime)> = match page.after {
        None => sqlx::query_as(
            "SELECT user_id, created_at FROM likes WHERE video_id = $1
             ORDER BY created_at DESC, user_id DESC LIMIT $2",
        )
        .bind(video)
        .bind(page.limit()),
        Some(after) => sqlx::query_as(
            "SELECT user_id, created_at FROM likes WHERE video_id = $1
               AND (created_at, user_id) < ($2, $3)
             ORDER BY created_at DESC, user_id DESC LIMIT $4",
        )
        .bind(video)
        .bind(after.at)
        .bind(after.id)
        .bind(page.limit()),
    }
    .fetch_all(app.db.pool())
    .await
    .map_err(Error::from)?;
    let mut rows = rows;
    let has_next = rows.len() > page.first;
    rows.truncate(page.first);
    let ids: Vec<Uuid> = rows.iter().map(|(id, _)| *id).collect();
    let users = app.users.load_many(ids).await?;
    let mut connection = Connection::new(page.after.is_some(), has_next);
    // Accounts deleted since they liked are left out.
    connection
        .edges
        .extend(rows.into_iter().filter_map(|(id, at)| {
            let user = users.get(&id)?.clone();
            Some(Edge::new(Cursor::new(at, id), user))
        }));
    Ok(connection)
}

/// Whether (user, video) is liked, for many pairs at once. Shared by all requests, so
/// concurrent requests share batches too.
pub struct LikeLoader(pub PgPool);

impl Loader<(Uuid, Uuid)> for LikeLoader {
    type Value = ();
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[(Uuid, Uuid)]) -> Result<HashMap<(Uuid, Uuid), ()>, Self::Error> {
        count_query("postgres", "likes");
        let (users, videos): (Vec<Uuid>, Vec<Uuid>) = keys.iter().copied().unzip();
        let liked: Vec<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT l.user_id, l.video_id
             FROM unnest($1::uuid[], $2::uuid[]) AS k(user_id, video_id)
             JOIN likes l ON l.user_id = k.user_id AND l.video_id = k.video_id",
        )
        .bind(&users)
        .bind(&videos)
        .fetch_all(&self.0)
        .await
        .map_err(Error::from)?;
        Ok(liked.into_iter().map(|k| (k, ())).collect())
    }
}
