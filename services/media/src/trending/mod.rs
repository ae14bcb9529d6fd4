//! Trending: the ranker's sorted sets (events::trending::trending_key), read from Redis
//! and hydrated from the catalogue.
//!
//! The sets rank every video that was interacted with; what may be listed (ready, public,
//! not deleted) is decided here, at read time, so a video made private or deleted drops
//! out at once. Members are read a page ahead of `limit`, and further pages only when
//! unlisted videos thinned a page out.
//!
//! A channel has no set of its own: its ranking is the global set's, restricted to its
//! videos (the same increments under the same decay, so the same order), read by scoring
//! the channel's videos from the catalogue with one ZMSCORE. The ranker thus writes two
//! scopes per event instead of three, and the scope it dropped was the costliest: many
//! small sets, one ZINCRBY per video and window in each.

use async_graphql::{Context, Enum, ID, Object, Result};
use events::trending::{Scope, trending_key};
use uuid::Uuid;

pub mod live;

pub use live::{TrendingBoards, TrendingSubscription};

use crate::{
    catalogue::{Video, VideoRow, store},
    context::{AppContext, count_query},
    error::Error,
};

/// Pages read from a sorted set before giving up on filling `limit`.
const MAX_PAGES: usize = 4;
/// `channelTrending` ranks a channel's most recently published videos, up to this many
/// (one ZMSCORE of that many members, a few milliseconds); older ones of a larger channel
/// are not considered.
const CHANNEL_CANDIDATES: i64 = 10_000;

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[graphql(remote = "::events::trending::Window")]
pub enum TrendingWindow {
    /// Scores halve every `HALF_LIFE_HOUR_SECS` (1 hour by default).
    Hour,
    /// Scores halve every `HALF_LIFE_DAY_SECS` (1 day).
    Day,
    /// Scores halve every `HALF_LIFE_WEEK_SECS` (1 week).
    Week,
}

/// The top `limit` listed videos of a trending set, best first.
pub async fn top(app: &AppContext, key: &str, limit: usize) -> Result<Vec<Video>, Error> {
    let rows = top_rows(app, key, limit).await?;
    Ok(rows.into_iter().map(Video::from).collect())
}

/// [`top`], as catalogue rows.
pub async fn top_rows(app: &AppContext, key: &str, limit: usize) -> Result<Vec<VideoRow>, Error> {
    let mut out: Vec<VideoRow> = Vec::with_capacity(limit);
    let page = limit + limit / 2 + 10;
    let mut redis = app.redis.clone();
    for n in 0..MAX_PAGES {
        let start = n * page;
        count_query("redis", "trending");
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(key)
            .arg(start)
            .arg(start + page - 1)
            .arg("REV")
            .query_async(&mut redis)
            .await?;
        let ids: Vec<Uuid> = ids.iter().filter_map(|s| Uuid::parse_str(s).ok()).collect();
        if ids.is_empty() {
            break;
        }
        let rows = listed(app, &ids).await?;
        let fetched = ids.len();
        for id in ids {
            if out.len() == limit {
                return Ok(out);
            }
            if let Some(row) = rows.iter().find(|r| r.id == id) {
                out.push(row.clone());
            }
        }
        if out.len() == limit || fetched < page {
            break;
        }
    }
    Ok(out)
}

/// The listed videos among `ids` (any order).
async fn listed(app: &AppContext, ids: &[Uuid]) -> Result<Vec<VideoRow>, Error> {
    count_query("postgres", "trending_videos");
    let sql = format!(
        "SELECT {} FROM videos WHERE id = ANY($1) AND {}",
        store::COLUMNS,
        store::LISTED
    );
    Ok(sqlx::query_as(&sql)
        .bind(ids)
        .fetch_all(app.db.pool())
        .await?)
}

pub(crate) fn check_limit(app: &AppContext, limit: i32) -> Result<usize, Error> {
    let max = app.config.limits.max_page;
    if limit < 1 || limit as usize > max {
        return Err(Error::bad_input(format!("limit must be 1–{max}")));
    }
    Ok(limit as usize)
}

/// The key of `window`'s set in `scope`.
pub fn key(app: &AppContext, window: TrendingWindow, scope: &Scope) -> String {
    trending_key(&app.config.redis_prefix, window.into(), scope)
}

#[derive(Default)]
pub struct TrendingQuery;

#[Object]
impl TrendingQuery {
    /// The most popular listed videos now: views, likes, comments, shares and watch time,
    /// each counting less as it ages (halving every half-life of `window`). With
    /// `category`, only that category's videos.
    #[graphql(complexity = "limit.max(0) as usize * child_complexity")]
    async fn trending(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "TrendingWindow::Day")] window: TrendingWindow,
        category: Option<String>,
        #[graphql(default = 20)] limit: i32,
    ) -> Result<Vec<Video>> {
        let app = AppContext::get(ctx);
        let limit = check_limit(app, limit)?;
        let scope = match category {
            Some(c) if c.is_empty() => return Err(Error::bad_input("category is empty").into()),
            Some(c) => Scope::Category(c),
            None => Scope::Global,
        };
        Ok(top(app, &key(app, window, &scope), limit).await?)
    }

    /// One channel's (uploader's) videos, most popular now first.
    #[graphql(complexity = "limit.max(0) as usize * child_complexity")]
    async fn channel_trending(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        #[graphql(default_with = "TrendingWindow::Day")] window: TrendingWindow,
        #[graphql(default = 20)] limit: i32,
    ) -> Result<Vec<Video>> {
        let app = AppContext::get(ctx);
        let limit = check_limit(app, limit)?;
        let user =
            Uuid::parse_str(user_id.as_str()).map_err(|_| Error::bad_input("not a user id"))?;
        Ok(channel_top(app, window, user, limit).await?)
    }
}

/// The top `limit` listed videos of `owner`'s channel in `window`, best first: its listed
/// videos scored in the global set (ties ordered as ZRANGE REV orders them, by member,
/// descending).
async fn channel_top(
    app: &AppContext,
    window: TrendingWindow,
    owner: Uuid,
    limit: usize,
) -> Result<Vec<Video>, Error> {
    count_query("postgres", "channel_videos");
    let sql = format!(
        "SELECT id FROM videos WHERE owner_id = $1 AND {} \
         ORDER BY published_at DESC, id DESC LIMIT $2",
        store::LISTED
    );
    let ids: Vec<Uuid> = sqlx::query_scalar(&sql)
        .bind(owner)
        .bind(CHANNEL_CANDIDATES)
        .fetch_all(app.db.pool())
        .await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let members: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    count_query("redis", "trending");
    let mut redis = app.redis.clone();
    let scores: Vec<Option<f64>> = redis::cmd("ZMSCORE")
        .arg(key(app, window, &Scope::Global))
        .arg(&members)
        .query_async(&mut redis)
        .await?;
    // A UUID orders as its lowercase hyphenated text does, so ties break as in the set.
    let mut ranked: Vec<(f64, Uuid)> = (scores.into_iter().zip(ids))
        .filter_map(|(score, id)| Some((score?, id)))
        .collect();
    if ranked.is_empty() {
        return Ok(Vec::new());
    }
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| b.1.cmp(&a.1)));
    ranked.truncate(limit);
    let top: Vec<Uuid> = ranked.iter().map(|(_, id)| *id).collect();
    // Listed a moment ago; re-read so the rows are complete and still listed.
    let rows = listed(app, &top).await?;
    Ok(top
        .iter()
        .filter_map(|id| rows.iter().find(|r| r.id == *id).cloned())
        .map(Video::from)
        .collect())
}
