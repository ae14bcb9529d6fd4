//! Catalogue queries and the owner's edits.

use async_graphql::{
    Context, ID, InputObject, Object, Result, SimpleObject, connection::Connection,
};
use events::{
    Envelope, outbox,
    video::{VideoDeleted, VideoMetadata, VideoUpdated},
};
use uuid::Uuid;

use super::{Video, Visibility, parse_id, store};
use crate::{
    context::{AppContext, count_query, viewer},
    cursor::{Cursor, Page},
    error::Error,
    users::{User, videos_of},
};

#[derive(Default)]
pub struct CatalogueQuery;

#[Object]
impl CatalogueQuery {
    /// Published videos, newest first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn feed(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<Cursor, Video>> {
        let app = AppContext::get(ctx);
        let cache_key = after.clone();
        let page = Page::parse(first, after, app.config.limits.max_page)?;
        let rows = app
            .feed_cache
            .get_or_load((cache_key, page.first), async {
                count_query("postgres", "feed");
                store::feed(app.db.pool(), page).await
            })
            .await
            .map_err(Error::from)?;
        let videos = rows.iter().cloned().map(Video::from).collect();
        Ok(page.connection(videos, |v| v.row.feed_cursor()))
    }

    /// The newest videos of the channels the viewer subscribes to.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn subscription_feed(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<Cursor, Video>> {
        let me = viewer(ctx).require()?;
        let app = AppContext::get(ctx);
        let page = Page::parse(first, after, app.config.limits.max_page)?;
        count_query("postgres", "subscription_feed");
        let rows = store::subscription_feed(app.db.pool(), me, page)
            .await
            .map_err(Error::from)?;
        Ok(
            page.connection(rows.into_iter().map(Video::from).collect(), |v| {
                v.row.feed_cursor()
            }),
        )
    }

    /// One video: null when it does not exist or the viewer may not see it.
    async fn video(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Video>> {
        let id = parse_id(&id)?;
        let app = AppContext::get(ctx);
        count_query("postgres", "video");
        let row = store::get(app.db.pool(), id).await.map_err(Error::from)?;
        Ok(row
            .filter(|v| v.visible_to(viewer(ctx).id()))
            .map(Video::from))
    }

    /// A user's videos, newest first (every state when it is the viewer's own).
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn videos_by_user(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<Cursor, Video>> {
        let owner =
            Uuid::parse_str(user_id.as_str()).map_err(|_| Error::bad_input("not a user id"))?;
        videos_of(ctx, owner, first, after).await
    }

    /// A user (a channel) by id, for anyone: their public profile and subscriber count.
    /// Null when there is no such account (never created, or deleted).
    async fn user(&self, ctx: &Context<'_>, id: ID) -> Result<Option<User>> {
        let id = Uuid::parse_str(id.as_str()).map_err(|_| Error::bad_input("not a user id"))?;
        AppContext::get(ctx).users.load_one(id).await
    }

    /// The signed-in viewer.
    async fn me(&self, ctx: &Context<'_>) -> Result<User> {
        let me = viewer(ctx).require()?;
        let app = AppContext::get(ctx);
        Ok(app
            .users
            .load_one(me)
            .await?
            .ok_or(Error::NotFound("your account no longer exists"))?)
    }

    /// The viewer's creator dashboard.
    async fn dashboard(&self, ctx: &Context<'_>) -> Result<Dashboard> {
        let me = viewer(ctx).require()?;
        let app = AppContext::get(ctx);
        count_query("postgres", "dashboard");
        let totals: (i64, i64, i64, i64, i64) = sqlx::query_as(
            "SELECT count(*), coalesce(sum(views_count), 0)::bigint, coalesce(sum(likes_count), 0)::bigint,
                    coalesce(sum(comments_count), 0)::bigint, coalesce(sum(watch_seconds), 0)::bigint
             FROM videos WHERE owner_id = $1 AND deleted_at IS NULL",
        )
        .bind(me)
        .fetch_one(app.db.pool())
        .await
        .map_err(Error::from)?;
        Ok(Dashboard {
            owner: me,
            subscriber_count: app.subscriber_counts.load_one(me).await?.unwrap_or(0),
            totals: Totals {
                videos: totals.0,
                views: totals.1,
                likes: totals.2,
                comments: totals.3,
                watch_time_seconds: totals.4,
            },
        })
    }
}

/// A creator's view of their channel.
pub struct Dashboard {
    owner: Uuid,
    subscriber_count: i64,
    totals: Totals,
}

#[derive(SimpleObject)]
pub struct Totals {
    videos: i64,
    views: i64,
    likes: i64,
    comments: i64,
    watch_time_seconds: i64,
}

#[Object]
impl Dashboard {
    async fn subscriber_count(&self) -> i64 {
        self.subscriber_count
    }

    async fn totals(&self) -> &Totals {
        &self.totals
    }

    /// Every video of the creator in every state, newest first, each with its status and
    /// counters (views, likes, comments, watch time).
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn videos(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<Cursor, Video>> {
        videos_of(ctx, self.owner, first, after).await
    }
}

/// An edit of a video's metadata; absent fields stay as they are.
#[derive(InputObject, Debug, Default)]
pub struct VideoInput {
    /// 1–200 characters.
    pub title: Option<String>,
    /// At most 5,000 characters.
    pub description: Option<String>,
    /// At most 20 tags of 1–40 letters, digits, `-` or `_`; stored lower-case.
    pub tags: Option<Vec<String>>,
    /// At most 50 characters; empty clears it.
    pub category: Option<String>,
    pub visibility: Option<Visibility>,
}

#[derive(Default)]
pub struct CatalogueMutation;

#[Object]
impl CatalogueMutation {
    /// Edits a video's metadata (owner only).
    async fn update_video(&self, ctx: &Context<'_>, id: ID, input: VideoInput) -> Result<Video> {
        let me = viewer(ctx).require()?;
        let id = parse_id(&id)?;
        let app = AppContext::get(ctx);
        let mut tx = app.db.pool().begin().await.map_err(Error::from)?;
        let row = owned(
            store::get_for_update(&mut tx, id)
                .await
                .map_err(Error::from)?,
            me,
        )?;
        let metadata = apply_edit(&row, input)?;
        let updated: super::VideoRow = sqlx::query_as(&format!(
            "UPDATE videos SET title = $2, description = $3, tags = $4, category = $5,
                 visibility = $6, has_metadata = true
             WHERE id = $1 RETURNING {}",
            store::COLUMNS
        ))
        .bind(id)
        .bind(&metadata.title)
        .bind(&metadata.description)
        .bind(&metadata.tags)
        .bind(&metadata.category)
        .bind(metadata.visibility)
        .fetch_one(&mut *tx)
        .await
        .map_err(Error::from)?;
        let event = VideoUpdated {
            video_id: id,
            owner_id: me,
            metadata,
        };
        outbox::enqueue(&mut tx, &app.events, &Envelope::new(event))
            .await
            .map_err(Error::from)?;
        // Made public once ready: its channel's subscribers hear of it now (once each).
        let public = ::events::video::Visibility::Public;
        let became_public = updated.visibility == public && row.visibility != public;
        let fanout = became_public
            && super::events::fan_out_if_listed(&mut tx, id)
                .await
                .map_err(Error::from)?;
        tx.commit().await.map_err(Error::from)?;
        app.relay.notify();
        if fanout {
            app.fanout_wake.wake();
        }
        if updated.visibility != row.visibility {
            // Live subscribers who may no longer see it are ended, on every replica.
            app.realtime.access_changed(id).await;
        }
        Ok(updated.into())
    }

    /// Deletes a video (owner only): it disappears from every list at once, and
    /// `video.deleted` tells the video service to remove its files.
    async fn delete_video(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let me = viewer(ctx).require()?;
        let video_id = parse_id(&id)?;
        let app = AppContext::get(ctx);
        let mut tx = app.db.pool().begin().await.map_err(Error::from)?;
        owned(
            store::get_for_update(&mut tx, video_id)
                .await
                .map_err(Error::from)?,
            me,
        )?;
        sqlx::query("UPDATE videos SET deleted_at = now() WHERE id = $1")
            .bind(video_id)
            .execute(&mut *tx)
            .await
            .map_err(Error::from)?;
        let event = VideoDeleted {
            video_id,
            owner_id: me,
        };
        outbox::enqueue(&mut tx, &app.events, &Envelope::new(event))
            .await
            .map_err(Error::from)?;
        tx.commit().await.map_err(Error::from)?;
        app.relay.notify();
        // Its live subscribers (the owner's too) are ended, on every replica.
        app.realtime.access_changed(video_id).await;
        Ok(id)
    }
}

/// The video if `me` owns it: NOT_FOUND when it does not exist (or is deleted, or is
/// someone else's private video), FORBIDDEN when it is someone else's.
fn owned(row: Option<super::VideoRow>, me: Uuid) -> Result<super::VideoRow, Error> {
    let row = row
        .filter(|v| v.deleted_at.is_none())
        .ok_or(Error::NotFound("no such video"))?;
    if row.owner_id == me {
        Ok(row)
    } else if row.visible_to(Some(me)) {
        Err(Error::Forbidden("only the owner may change this video"))
    } else {
        Err(Error::NotFound("no such video"))
    }
}

/// Validates an edit against the current row; returns the complete new metadata.
fn apply_edit(row: &super::VideoRow, input: VideoInput) -> Result<VideoMetadata, Error> {
    let title = match input.title {
        Some(t) => {
            let t = t.trim().to_owned();
            let n = t.chars().count();
            if !(1..=200).contains(&n) {
                return Err(Error::bad_input("title must be 1–200 characters"));
            }
            t
        }
        None => row.title.clone(),
    };
    let description = match input.description {
        Some(d) if d.chars().count() > 5000 => {
            return Err(Error::bad_input(
                "description must be at most 5,000 characters",
            ));
        }
        Some(d) => d,
        None => row.description.clone(),
    };
    let tags = match input.tags {
        Some(tags) => normalise_tags(tags)?,
        None => row.tags.clone(),
    };
    let category = match input.category {
        Some(c) if c.trim().is_empty() => None,
        Some(c) if c.chars().count() > 50 => {
            return Err(Error::bad_input("category must be at most 50 characters"));
        }
        Some(c) => Some(c.trim().to_lowercase()),
        None => row.category.clone(),
    };
    let visibility = match input.visibility {
        Some(v) => v.into(),
        None => row.visibility,
    };
    Ok(VideoMetadata {
        title,
        description,
        tags,
        category,
        visibility,
    })
}

/// Tags: at most 20, each 1–40 letters, digits, `-` or `_`, lower-cased, duplicates removed.
pub fn normalise_tags(tags: Vec<String>) -> Result<Vec<String>, Error> {
    if tags.len() > 20 {
        return Err(Error::bad_input("at most 20 tags"));
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        let tag = tag.trim().to_lowercase();
        let valid = (1..=40).contains(&tag.chars().count())
            && tag
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(Error::bad_input(format!(
                "invalid tag {tag:?}: use 1–40 letters, digits, - or _"
            )));
        }
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_lower_cased_deduplicated_and_checked() {
        assert_eq!(
            normalise_tags(vec!["Rust".into(), "rust".into(), " web-dev ".into()]).unwrap(),
            vec!["rust", "web-dev"]
        );
        assert!(normalise_tags(vec!["no spaces".into()]).is_err());
        assert!(normalise_tags(vec!["".into()]).is_err());
        assert!(normalise_tags(vec!["x".repeat(41)]).is_err());
        assert!(normalise_tags((0..21).map(|i| i.to_string()).collect()).is_err());
    }
}
