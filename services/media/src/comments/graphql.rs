//! Comment queries and mutations.

use async_graphql::{Context, ID, Object, Result, connection::Connection};
use events::{
    Envelope,
    interaction::{Action, Interaction, ViewerKey},
    media::CommentAdded,
};
use mongodb::bson::DateTime;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    CommentId,
    rules::{self, ReadFilter},
    store::{CommentDoc, to_time},
};
use crate::{
    catalogue::{VideoRow, parse_id, store as videos},
    context::{AppContext, count_query, viewer},
    cursor::{Cursor, Page},
    error::Error,
    interactions,
    notifications::{self, Kind, NewNotification},
    realtime::ChangeKind,
    users::User,
};

/// At most this many characters in a comment.
pub const MAX_BODY_CHARS: usize = 5000;

pub struct Comment(pub CommentDoc);

#[Object]
impl Comment {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    /// The text; null once deleted.
    async fn body(&self) -> Option<&str> {
        (!self.0.deleted).then_some(self.0.body.as_str())
    }

    /// Deleted comments keep their place in the thread, without text or author.
    async fn deleted(&self) -> bool {
        self.0.deleted
    }

    async fn author(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        if self.0.deleted {
            return Ok(None);
        }
        let Ok(author) = Uuid::parse_str(&self.0.author_id) else {
            return Ok(None);
        };
        AppContext::get(ctx).users.load_one(author).await
    }

    async fn video_id(&self) -> ID {
        ID(self.0.video_id.clone())
    }

    /// The comment this one replies to; null for a top-level comment.
    async fn parent_id(&self) -> Option<ID> {
        self.0.parent_id.clone().map(ID)
    }

    async fn created_at(&self) -> OffsetDateTime {
        to_time(self.0.created_at)
    }

    async fn edited_at(&self) -> Option<OffsetDateTime> {
        self.0.edited_at.map(to_time)
    }

    async fn reply_count(&self) -> i64 {
        self.0.reply_count
    }

    /// Held for the video owner's approval (it contains one of the channel's held
    /// words): only its author and the owner see it until then.
    async fn held(&self) -> bool {
        self.0.held
    }

    /// Replies, oldest first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn replies(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<Cursor, Comment>> {
        let video = Uuid::parse_str(&self.0.video_id).unwrap_or_default();
        let owner = AppContext::get(ctx)
            .videos
            .load_one(video)
            .await?
            .map(|v| v.owner_id)
            .unwrap_or_default();
        replies_of(ctx, self.0.comment_id(), owner, first, after).await
    }
}

fn cursor(c: &Comment) -> Cursor {
    Cursor::new(to_time(c.0.created_at), c.0.comment_id().as_uuid())
}

/// Replies to `parent`, on a video of `owner`'s, as the viewer may see them.
async fn replies_of(
    ctx: &Context<'_>,
    parent: CommentId,
    owner: Uuid,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Connection<Cursor, Comment>> {
    let app = AppContext::get(ctx);
    let page = Page::parse(first, after, app.config.limits.max_page)?;
    let audience = ReadFilter::for_viewer(ctx, owner).await?;
    count_query("mongodb", "replies");
    let docs = app
        .comments
        .replies(
            parent,
            &audience,
            page.after.map(|c| c.id.into()),
            page.limit(),
        )
        .await
        .map_err(Error::from)?;
    Ok(page.connection(docs.into_iter().map(Comment).collect(), cursor))
}

/// The video if the viewer may see it.
async fn visible_video(ctx: &Context<'_>, video: Uuid) -> Result<VideoRow, Error> {
    let app = AppContext::get(ctx);
    count_query("postgres", "video");
    videos::get(app.db.pool(), video)
        .await?
        .filter(|v| v.visible_to(viewer(ctx).id()))
        .ok_or(Error::NotFound("no such video"))
}

#[derive(Default)]
pub struct CommentQuery;

#[Object]
impl CommentQuery {
    /// A video's top-level comments, newest first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn comments(
        &self,
        ctx: &Context<'_>,
        video_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<Cursor, Comment>> {
        let video = parse_id(&video_id)?;
        let app = AppContext::get(ctx);
        let page = Page::parse(first, after, app.config.limits.max_page)?;
        let row = visible_video(ctx, video).await?;
        let audience = ReadFilter::for_viewer(ctx, row.owner_id).await?;
        count_query("mongodb", "comments");
        let docs = app
            .comments
            .top_level(
                video,
                &audience,
                page.after.map(|c| c.id.into()),
                page.limit(),
            )
            .await
            .map_err(Error::from)?;
        Ok(page.connection(docs.into_iter().map(Comment).collect(), cursor))
    }

    /// A comment's replies, oldest first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn replies(
        &self,
        ctx: &Context<'_>,
        comment_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<Cursor, Comment>> {
        let parent = CommentId::parse(&comment_id)?;
        let app = AppContext::get(ctx);
        let comment = app
            .comments
            .get(parent)
            .await
            .map_err(Error::from)?
            .ok_or(Error::NotFound("no such comment"))?;
        let row =
            visible_video(ctx, Uuid::parse_str(&comment.video_id).unwrap_or_default()).await?;
        replies_of(ctx, parent, row.owner_id, first, after).await
    }
}

/// 1–5,000 characters, not only whitespace.
fn check_body(body: &str) -> Result<(), Error> {
    if body.trim().is_empty() || body.chars().count() > MAX_BODY_CHARS {
        return Err(Error::bad_input(format!(
            "a comment must be 1–{MAX_BODY_CHARS} characters"
        )));
    }
    Ok(())
}

#[derive(Default)]
pub struct CommentMutation;

#[Object]
impl CommentMutation {
    /// Comments on a video, or replies to a top-level comment of it (`parentId`).
    async fn add_comment(
        &self,
        ctx: &Context<'_>,
        video_id: ID,
        body: String,
        parent_id: Option<ID>,
    ) -> Result<Comment> {
        let me = viewer(ctx).require()?;
        let video = parse_id(&video_id)?;
        check_body(&body)?;
        crate::rate_limits::admit(ctx, me, crate::rate_limits::Action::Comment).await?;
        let app = AppContext::get(ctx);
        let video_row = visible_video(ctx, video).await?;
        let owner = video_row.owner_id;
        let held = if me == owner {
            false
        } else {
            let (blocked, held_words) = rules::for_commenter(app.db.pool(), owner, me)
                .await
                .map_err(Error::from)?;
            if blocked {
                return Err(Error::Forbidden(
                    "the channel's owner does not allow you to comment on their videos",
                )
                .into());
            }
            rules::is_held(&body, &held_words)
        };
        let parent = match parent_id {
            None => None,
            Some(id) => {
                let id = CommentId::parse(&id)?;
                let parent = app
                    .comments
                    .get(id)
                    .await
                    .map_err(Error::from)?
                    .filter(|p| p.video_id == video.to_string())
                    .ok_or(Error::NotFound("no such comment on this video"))?;
                if parent.parent_id.is_some() {
                    return Err(Error::bad_input("replies go to a top-level comment").into());
                }
                if parent.deleted {
                    return Err(Error::bad_input("that comment was deleted").into());
                }
                Some((id, parent.author_id.parse::<Uuid>().ok()))
            }
        };
        let (parent, parent_author) = match parent {
            Some((id, author)) => (Some(id), author),
            None => (None, None),
        };
        let id = CommentId::mint().to_string();
        let comment = CommentDoc {
            version: Some(id.clone()),
            id,
            video_id: video.to_string(),
            parent_id: parent.map(|p| p.to_string()),
            author_id: me.to_string(),
            body,
            created_at: DateTime::now(),
            edited_at: None,
            deleted: false,
            reply_count: 0,
            author_hidden: false,
            held,
        };
        app.comments.insert(&comment).await.map_err(Error::from)?;
        // A held comment waits for the owner: nothing is counted or announced yet.
        if !held {
            publish_added(app, &comment, &video_row, parent_author).await?;
        }
        Ok(Comment(comment))
    }

    /// Approves a held comment on one of the viewer's videos: it appears for everyone,
    /// live too, as if posted now.
    async fn approve_comment(&self, ctx: &Context<'_>, id: ID) -> Result<Comment> {
        let me = viewer(ctx).require()?;
        let comment_id = CommentId::parse(&id)?;
        let app = AppContext::get(ctx);
        let (comment, video_row) = with_video(app, comment_id).await?;
        let video_row = video_row
            .filter(|v| !comment.deleted && v.deleted_at.is_none())
            .ok_or(Error::NotFound("no such comment"))?;
        if video_row.owner_id != me {
            return Err(Error::Forbidden("only the video's owner approves its comments").into());
        }
        // Read before the approval: between that write (a new version) and its live
        // event there should be nothing (crate::realtime::Realtime::comment_changed).
        let parent_author = match comment.parent() {
            Some(parent) => app
                .comments
                .get(parent)
                .await
                .map_err(Error::from)?
                .and_then(|p| p.author_id.parse::<Uuid>().ok()),
            None => None,
        };
        let Some(approved) = app
            .comments
            .approve(comment_id)
            .await
            .map_err(Error::from)?
        else {
            return Err(Error::bad_input("this comment is not held").into());
        };
        publish_added(app, &approved, &video_row, parent_author).await?;
        Ok(Comment(approved))
    }

    /// Rewrites one's own comment.
    async fn edit_comment(&self, ctx: &Context<'_>, id: ID, body: String) -> Result<Comment> {
        let me = viewer(ctx).require()?;
        let id = CommentId::parse(&id)?;
        check_body(&body)?;
        let app = AppContext::get(ctx);
        let (comment, video_row) = with_video(app, id).await?;
        if comment.deleted {
            return Err(Error::NotFound("no such comment").into());
        }
        if comment.author_id != me.to_string() {
            return Err(Error::Forbidden("only its author may edit a comment").into());
        }
        let video = Uuid::parse_str(&comment.video_id).unwrap_or_default();
        let owner = video_row.as_ref().map(|v| v.owner_id);
        // An edit that brings in a held word holds the comment again.
        let hold = match owner {
            Some(owner) if owner != me && !comment.held => rules::is_held(
                &body,
                &rules::held_words(app.db.pool(), owner)
                    .await
                    .map_err(Error::from)?,
            ),
            _ => false,
        };
        let edited = app
            .comments
            .edit(id, &body, hold)
            .await
            .map_err(Error::from)?
            .ok_or(Error::NotFound("no such comment"))?;
        if hold {
            // Out of sight again: gone from live viewers' threads, and uncounted.
            app.realtime
                .comment_changed(ChangeKind::Deleted, &edited)
                .await;
            if let Some(parent) = comment.parent() {
                app.comments
                    .bump_replies(parent, -1)
                    .await
                    .map_err(Error::from)?;
            }
            bump_video_count(app, video, -1, None, None).await?;
        } else if !edited.held {
            app.realtime
                .comment_changed(ChangeKind::Edited, &edited)
                .await;
        }
        Ok(Comment(edited))
    }

    /// Deletes a comment (its author or the video's owner). Replies stay.
    async fn delete_comment(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let me = viewer(ctx).require()?;
        let comment_id = CommentId::parse(&id)?;
        let app = AppContext::get(ctx);
        let (comment, video_row) = with_video(app, comment_id).await?;
        if comment.author_id != me.to_string() {
            let owner = video_row.as_ref().map(|v| v.owner_id);
            if owner != Some(me) {
                return Err(Error::Forbidden(
                    "only its author or the video's owner may delete a comment",
                )
                .into());
            }
        }
        remove(app, &comment, video_row).await?;
        Ok(id)
    }
}

/// A comment and its video's row (None once the video is gone): what every change to a
/// comment checks its rights against. NOT_FOUND for an unknown comment.
pub(crate) async fn with_video(
    app: &AppContext,
    id: CommentId,
) -> Result<(CommentDoc, Option<VideoRow>), Error> {
    let comment = app
        .comments
        .get(id)
        .await?
        .ok_or(Error::NotFound("no such comment"))?;
    let video = Uuid::parse_str(&comment.video_id).unwrap_or_default();
    let row = videos::get(app.db.pool(), video).await?;
    Ok((comment, row))
}

/// Deletes a comment (its author, the video's owner, or a moderator asked; the caller
/// checked): soft-deleted in MongoDB first, then the live event, then the counters. A
/// comment already deleted changes nothing (`false`), so a retry is safe.
pub(crate) async fn remove(
    app: &AppContext,
    comment: &CommentDoc,
    video_row: Option<VideoRow>,
) -> Result<bool, Error> {
    let Some(deleted) = app.comments.soft_delete(comment.comment_id()).await? else {
        return Ok(false);
    };
    if comment.held {
        // Never counted nor shown to anyone but its author and the owner.
        return Ok(true);
    }
    app.realtime
        .comment_changed(ChangeKind::Deleted, &deleted)
        .await;
    if let Some(parent) = comment.parent() {
        app.comments.bump_replies(parent, -1).await?;
    }
    let video = Uuid::parse_str(&comment.video_id).unwrap_or_default();
    // The ranker takes back the comment's weight, as its author's.
    let author = Uuid::parse_str(&comment.author_id).unwrap_or_default();
    let retraction = video_row.map(|row| {
        let commented_at = to_time(comment.created_at);
        interactions::interaction(
            &row,
            ViewerKey::user(author),
            Action::Uncomment { commented_at },
        )
    });
    bump_video_count(app, video, -1, retraction, None).await?;
    Ok(true)
}

/// A comment everyone may now see (posted, or approved): the live event first (see
/// [`crate::realtime::Realtime::comment_changed`]), then the parent's reply count, the
/// video's counter with the ranker's interaction and the `comment.added` announcement
/// (and its notifications). The comment exists already: a crash before the counters
/// leaves them off by one until the recount sweep.
async fn publish_added(
    app: &AppContext,
    comment: &CommentDoc,
    video_row: &VideoRow,
    parent_author: Option<Uuid>,
) -> Result<(), Error> {
    app.realtime
        .comment_changed(ChangeKind::Added, comment)
        .await;
    let author = Uuid::parse_str(&comment.author_id).unwrap_or_default();
    if let Some(parent) = comment.parent() {
        app.comments.bump_replies(parent, 1).await?;
    }
    let event = interactions::interaction(video_row, ViewerKey::user(author), Action::Comment);
    let announcement = CommentAdded {
        comment_id: comment.id.clone(),
        video_id: video_row.id,
        video_owner_id: video_row.owner_id,
        author_id: author,
        parent_id: comment.parent_id.clone(),
        parent_author_id: parent_author,
        body: comment.body.clone(),
    };
    bump_video_count(app, video_row.id, 1, Some(event), Some(announcement)).await?;
    Ok(())
}

/// Who hears of a new comment: the author of the comment replied to (`COMMENT_REPLY`),
/// and the video's owner (`VIDEO_COMMENT`) unless that reply already told them. Nobody
/// hears of their own comment.
fn comment_notifications(added: &CommentAdded) -> Vec<NewNotification> {
    let about = |recipient, kind| NewNotification {
        actor: Some(added.author_id),
        video: Some(added.video_id),
        comment: Some(added.comment_id.clone()),
        detail: Some(notifications::excerpt(&added.body)),
        ..NewNotification::new(recipient, kind, &added.comment_id)
    };
    let mut out = Vec::new();
    let replied_to = added.parent_author_id.filter(|&a| a != added.author_id);
    if let Some(parent_author) = replied_to {
        out.push(about(parent_author, Kind::CommentReply));
    }
    if added.video_owner_id != added.author_id && replied_to != Some(added.video_owner_id) {
        out.push(about(added.video_owner_id, Kind::VideoComment));
    }
    out
}

/// Moves the video's comment counter and, in the same transaction, puts the comment's
/// interaction event (for the ranker) and its announcement (`comment.added`, for webhooks)
/// in the outbox. Also how an erased account's comments leave the counters
/// (crate::erasure).
pub(crate) async fn bump_video_count(
    app: &AppContext,
    video: Uuid,
    by: i64,
    event: Option<Interaction>,
    announcement: Option<CommentAdded>,
) -> Result<(), Error> {
    let mut tx = app.db.pool().begin().await?;
    sqlx::query("UPDATE videos SET comments_count = comments_count + $2 WHERE id = $1")
        .bind(video)
        .bind(by)
        .execute(&mut *tx)
        .await?;
    if let Some(event) = &event {
        app.interactions.enqueue(&mut tx, event.clone()).await?;
    }
    let mut notified = Vec::new();
    if let Some(announcement) = &announcement {
        events::outbox::enqueue(&mut tx, &app.events, &Envelope::new(announcement.clone())).await?;
        for notification in comment_notifications(announcement) {
            notified.extend(notifications::store::notify(&mut tx, &notification).await?);
        }
    }
    tx.commit().await?;
    // videoStats reads the counters from PostgreSQL: told once they committed.
    app.realtime.stats.touch(video);
    if event.is_some() || announcement.is_some() {
        app.relay.notify();
    }
    notifications::announce(app, &notified).await;
    Ok(())
}
