//! An erased account's comments: each becomes a deleted comment without author or text,
//! in its place in the thread (a top-level comment keeps its `_id`, so its replies, by
//! other people, still hang under it and are still listed; it shows as deleted, as any
//! deleted comment does).
//!
//! One comment at a time, then its live `commentEvents` update and its counters, exactly
//! as `deleteComment` moves them: the parent's `reply_count` for a reply, and the video's
//! `comments_count` with a retraction for the ranker. A comment anonymised is no longer the
//! author's (its `author_id` is cleared in the same update), so a redelivery after a crash
//! never counts it twice; a crash between a comment and its counters leaves a counter off
//! by one, which the recount sweep repairs (crate::comments).

use events::interaction::{Action, ViewerKey};
use uuid::Uuid;

use crate::{
    Context,
    catalogue::store as videos,
    comments::{graphql::bump_video_count, store::to_time},
    error::Error,
    interactions,
    realtime::ChangeKind,
};

/// Anonymises every comment of `user`; returns how many live ones it anonymised.
pub async fn anonymise(ctx: &Context, user: Uuid) -> anyhow::Result<u64> {
    let mut total = 0;
    while let Some(comment) = ctx.comments.anonymise_next(user).await? {
        total += 1;
        ctx.realtime
            .comment_changed(ChangeKind::Deleted, &comment)
            .await;
        if let Some(parent) = comment.parent() {
            ctx.comments.bump_replies(parent, -1).await?;
        }
        let video = Uuid::parse_str(&comment.video_id).unwrap_or_default();
        let retraction = videos::get(ctx.db.pool(), video).await?.map(|row| {
            let commented_at = to_time(comment.created_at);
            let action = Action::Uncomment { commented_at };
            interactions::interaction(&row, ViewerKey::user(user), action)
        });
        bump_video_count(ctx, video, -1, retraction, None)
            .await
            .map_err(|e| match e {
                Error::Internal(cause) => cause,
                other => anyhow::anyhow!(other.message()),
            })?;
    }
    // Comments the author had deleted themselves still name them: not any more.
    ctx.comments.forget_author(user).await?;
    Ok(total)
}
