//! What channel owners and viewers decide about comments:
//!
//! * **Held words** (`setHeldWords`, `heldWords`): a channel owner's list of words and
//!   phrases. A comment by anyone else on the owner's videos containing one (whole words,
//!   any case) is *held*: stored, but seen only by its author and the owner, not counted,
//!   not announced, not streamed live, until the owner approves it (`approveComment`;
//!   then it appears as if posted at that moment, live included) or deletes it. An edit
//!   that brings a held word in holds the comment again.
//! * **Channel blocks** (`blockFromChannel`, `unblockFromChannel`, `channelBlocks`): a
//!   blocked user cannot comment on the owner's videos (FORBIDDEN).
//! * **User blocks** (`blockUser`, `unblockUser`, `blockedUsers`): anyone hides another
//!   user's comments from themselves, in lists and live.
//!
//! How lists apply them: [`ReadFilter`], one per list a viewer reads (the viewer, whether
//! they own the video, whom they block), turned into the MongoDB filter by the store.

use std::collections::HashMap;

use async_graphql::{Context, ID, Object, Result, dataloader::Loader};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    context::{AppContext, count_query, viewer},
    error::Error,
    users::User,
};

/// At most this many held words per channel, and blocks per user.
const MAX_HELD_WORDS: usize = 200;
const MAX_BLOCKS: i64 = 10_000;
/// A held word or phrase: 1 to this many characters.
const MAX_WORD_CHARS: usize = 50;

/// Lower-case words separated by single spaces, with a space at each end: a held phrase
/// occurs in a comment exactly when its normal form occurs in the comment's.
fn normal_form(text: &str) -> String {
    let mut out = String::from(" ");
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        out.push_str(&word.to_lowercase());
        out.push(' ');
    }
    out
}

/// Whether `body` contains any of the held words (stored in normal form, trimmed).
pub fn is_held(body: &str, held_words: &[String]) -> bool {
    if held_words.is_empty() {
        return false;
    }
    let body = normal_form(body);
    held_words
        .iter()
        .any(|word| body.contains(&format!(" {word} ")))
}

/// The channel's held words, in normal form.
pub async fn held_words(pool: &PgPool, channel: Uuid) -> sqlx::Result<Vec<String>> {
    count_query("postgres", "held_words");
    sqlx::query_scalar("SELECT word FROM held_words WHERE channel_id = $1 ORDER BY word")
        .bind(channel)
        .fetch_all(pool)
        .await
}

/// What a channel's rules say to `user` about to comment there, in one round trip:
/// whether the owner blocked them, and the owner's held words.
pub async fn for_commenter(
    pool: &PgPool,
    channel: Uuid,
    user: Uuid,
) -> sqlx::Result<(bool, Vec<String>)> {
    count_query("postgres", "comment_rules");
    sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM channel_blocks WHERE channel_id = $1 AND user_id = $2),
                ARRAY(SELECT word FROM held_words WHERE channel_id = $1)",
    )
    .bind(channel)
    .bind(user)
    .fetch_one(pool)
    .await
}

/// Which comments one list shows to one viewer.
#[derive(Debug, Clone, Default)]
pub struct ReadFilter {
    pub viewer: Option<Uuid>,
    /// The viewer owns the video: they see its held comments.
    pub owner: bool,
    /// Authors the viewer blocked (ids as stored).
    pub blocked: Vec<String>,
}

impl ReadFilter {
    /// The filter for the current viewer on a video of `owner`'s.
    pub async fn for_viewer(ctx: &Context<'_>, owner: Uuid) -> Result<Self> {
        let viewer = viewer(ctx).id();
        let blocked = match viewer {
            Some(me) => AppContext::get(ctx)
                .blocks
                .load_one(me)
                .await?
                .unwrap_or_default(),
            None => Vec::new(),
        };
        Ok(Self {
            viewer,
            owner: viewer == Some(owner),
            blocked,
        })
    }
}

/// Whom each viewer blocks, batched (a page of comments asks once per viewer).
pub struct BlockLoader(pub PgPool);

impl Loader<Uuid> for BlockLoader {
    type Value = Vec<String>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Vec<String>>, Self::Error> {
        count_query("postgres", "user_blocks");
        let rows: Vec<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT blocker_id, blocked_id FROM user_blocks WHERE blocker_id = ANY($1)",
        )
        .bind(keys)
        .fetch_all(&self.0)
        .await
        .map_err(Error::from)?;
        let mut out: HashMap<Uuid, Vec<String>> = HashMap::new();
        for (blocker, blocked) in rows {
            out.entry(blocker).or_default().push(blocked.to_string());
        }
        Ok(out)
    }
}

fn parse_user(id: &ID) -> Result<Uuid, Error> {
    Uuid::parse_str(id.as_str()).map_err(|_| Error::bad_input("not a user id"))
}

async fn users(ctx: &Context<'_>, ids: Vec<Uuid>) -> Result<Vec<User>> {
    let app = AppContext::get(ctx);
    let mut found = app.users.load_many(ids.iter().copied()).await?;
    Ok(ids.into_iter().filter_map(|id| found.remove(&id)).collect())
}

#[derive(Default)]
pub struct CommentRulesQuery;

#[Object]
impl CommentRulesQuery {
    /// The viewer's held words: comments on their videos containing one wait for their
    /// approval.
    async fn held_words(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        let me = viewer(ctx).require()?;
        Ok(held_words(AppContext::get(ctx).db.pool(), me)
            .await
            .map_err(Error::from)?)
    }

    /// Users the viewer blocked from commenting on their videos.
    async fn channel_blocks(&self, ctx: &Context<'_>) -> Result<Vec<User>> {
        let me = viewer(ctx).require()?;
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT user_id FROM channel_blocks WHERE channel_id = $1 ORDER BY created_at DESC",
        )
        .bind(me)
        .fetch_all(AppContext::get(ctx).db.pool())
        .await
        .map_err(Error::from)?;
        users(ctx, ids).await
    }

    /// Users whose comments the viewer does not see.
    async fn blocked_users(&self, ctx: &Context<'_>) -> Result<Vec<User>> {
        let me = viewer(ctx).require()?;
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT blocked_id FROM user_blocks WHERE blocker_id = $1 ORDER BY created_at DESC",
        )
        .bind(me)
        .fetch_all(AppContext::get(ctx).db.pool())
        .await
        .map_err(Error::from)?;
        users(ctx, ids).await
    }
}

#[derive(Default)]
pub struct CommentRulesMutation;

#[Object]
impl CommentRulesMutation {
    /// Replaces the viewer's held words (up to 200 words or phrases of 1–50 characters;
    /// matched as whole words, in any case). Returns them as stored.
    async fn set_held_words(&self, ctx: &Context<'_>, words: Vec<String>) -> Result<Vec<String>> {
        let me = viewer(ctx).require()?;
        let mut normal: Vec<String> = Vec::with_capacity(words.len());
        for word in &words {
            let form = normal_form(word).trim().to_owned();
            if form.is_empty() || word.chars().count() > MAX_WORD_CHARS {
                return Err(Error::bad_input(format!(
                    "held words: 1 to {MAX_WORD_CHARS} characters, with a letter or digit"
                ))
                .into());
            }
            normal.push(form);
        }
        normal.sort();
        normal.dedup();
        if normal.len() > MAX_HELD_WORDS {
            return Err(Error::bad_input(format!("at most {MAX_HELD_WORDS} held words")).into());
        }
        let app = AppContext::get(ctx);
        let mut tx = app.db.pool().begin().await.map_err(Error::from)?;
        sqlx::query("DELETE FROM held_words WHERE channel_id = $1")
            .bind(me)
            .execute(&mut *tx)
            .await
            .map_err(Error::from)?;
        sqlx::query("INSERT INTO held_words (channel_id, word) SELECT $1, unnest($2::text[])")
            .bind(me)
            .bind(&normal)
            .execute(&mut *tx)
            .await
            .map_err(Error::from)?;
        tx.commit().await.map_err(Error::from)?;
        Ok(normal)
    }

    /// Stops a user from commenting on the viewer's videos (idempotent).
    async fn block_from_channel(&self, ctx: &Context<'_>, user_id: ID) -> Result<bool> {
        let me = viewer(ctx).require()?;
        let user = parse_user(&user_id)?;
        block(ctx, "channel_blocks", "channel_id", "user_id", me, user).await
    }

    /// Lets a blocked user comment on the viewer's videos again (idempotent).
    async fn unblock_from_channel(&self, ctx: &Context<'_>, user_id: ID) -> Result<bool> {
        let me = viewer(ctx).require()?;
        let user = parse_user(&user_id)?;
        unblock(ctx, "channel_blocks", "channel_id", "user_id", me, user).await
    }

    /// Hides a user's comments from the viewer (idempotent).
    async fn block_user(&self, ctx: &Context<'_>, user_id: ID) -> Result<bool> {
        let me = viewer(ctx).require()?;
        let user = parse_user(&user_id)?;
        block(ctx, "user_blocks", "blocker_id", "blocked_id", me, user).await
    }

    /// Shows a blocked user's comments to the viewer again (idempotent).
    async fn unblock_user(&self, ctx: &Context<'_>, user_id: ID) -> Result<bool> {
        let me = viewer(ctx).require()?;
        let user = parse_user(&user_id)?;
        unblock(ctx, "user_blocks", "blocker_id", "blocked_id", me, user).await
    }
}

/// Adds (`by`, `user`) to a block table: `true`. The user must exist, not be `by`, and
/// `by` may block at most [`MAX_BLOCKS`] users in it.
async fn block(
    ctx: &Context<'_>,
    table: &str,
    by_column: &str,
    user_column: &str,
    by: Uuid,
    user: Uuid,
) -> Result<bool> {
    if by == user {
        return Err(Error::bad_input("you cannot block yourself").into());
    }
    let app = AppContext::get(ctx);
    if app.users.load_one(user).await?.is_none() {
        return Err(Error::NotFound("no such user").into());
    }
    let blocks: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {table} WHERE {by_column} = $1"
    ))
    .bind(by)
    .fetch_one(app.db.pool())
    .await
    .map_err(Error::from)?;
    if blocks >= MAX_BLOCKS {
        return Err(Error::bad_input(format!("at most {MAX_BLOCKS} blocked users")).into());
    }
    sqlx::query(&format!(
        "INSERT INTO {table} ({by_column}, {user_column}) VALUES ($1, $2) ON CONFLICT DO NOTHING"
    ))
    .bind(by)
    .bind(user)
    .execute(app.db.pool())
    .await
    .map_err(Error::from)?;
    Ok(true)
}

async fn unblock(
    ctx: &Context<'_>,
    table: &str,
    by_column: &str,
    user_column: &str,
    by: Uuid,
    user: Uuid,
) -> Result<bool> {
    sqlx::query(&format!(
        "DELETE FROM {table} WHERE {by_column} = $1 AND {user_column} = $2"
    ))
    .bind(by)
    .bind(user)
    .execute(AppContext::get(ctx).db.pool())
    .await
    .map_err(Error::from)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_words_match_whole_words_and_phrases_in_any_case() {
        let held = vec!["spoiler".to_owned(), "buy now".to_owned()];
        assert!(is_held("Huge SPOILER ahead", &held));
        assert!(is_held("spoiler!", &held));
        assert!(is_held("just buy   NOW, friends", &held));
        assert!(!is_held("no spoilers here", &held));
        assert!(!is_held("buy it now", &held));
        assert!(!is_held("anything", &[]));
        assert_eq!(normal_form("  Buy, NOW "), " buy now ");
    }
}
