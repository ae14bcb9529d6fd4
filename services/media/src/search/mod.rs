//! Search: full-text search over the listed videos, and completions while typing.
//!
//! * [`index`]: each replica's in-memory full-text index (tantivy), its relevance rule and
//!   typo tolerance; [`syntax`]: the web-search syntax users type (`"exact phrase"`, `or`,
//!   `-exclude`); [`suggest`]: completions of titles, tags and channel names;
//!   [`replica`]: how both follow the catalogue (within ~0.1 s of a commit).
//! * The index finds and orders; the page's rows are then read from PostgreSQL by primary
//!   key (batched with concurrent searches' pages) and the listing rule is applied again
//!   to them, so nothing unlisted is ever shown.
//! * Filters (all given tags, category, publication dates, duration) combine with the
//!   words. Orders: relevance (then newest), date, and views or likes — those two order
//!   the [`SORT_CANDIDATES`] most relevant matches by the live counters in PostgreSQL
//!   (the index does not hold counters, which change all the time).
//! * Popular searches repeat: a result page is shared by everyone asking the same search
//!   for `SEARCH_CACHE_MILLIS` (1 s; see crate::page_cache), or until the index changes.

pub mod index;
pub mod replica;
pub mod suggest;
pub mod syntax;

use async_graphql::{
    Context, Enum, ID, Object, Result, SimpleObject, connection::Connection, dataloader::DataLoader,
};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

pub use replica::SearchIndex;

use self::index::{Filters, Key, Order, Request};
use crate::{
    catalogue::{Video, VideoLoader, VideoRow, graphql::normalise_tags, store},
    context::{AppContext, count_query},
    cursor::{Cursor, Page},
    error::Error,
    page_cache::PageCache,
};

/// Search result pages by everything that selects them.
pub type SearchPages = PageCache<SearchKey, Video>;

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SearchKey {
    query: String,
    filters: Filters,
    sort: SearchSort,
    /// The `after` cursor as sent.
    after: Option<String>,
    first: usize,
    /// The index state the page was read from (SearchIndex::generation).
    generation: u64,
}

/// Longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// Longest suggestion prefix accepted, in characters.
pub const MAX_PREFIX_CHARS: usize = 100;
/// Most suggestions returned at once.
pub const MAX_SUGGESTIONS: i32 = 20;
/// Ordering by views or likes considers this many of the most relevant matches.
pub const SORT_CANDIDATES: usize = 5_000;

/// How search results are ordered.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum SearchSort {
    /// Most relevant first (title words count most, then tags, then the description),
    /// then newest.
    #[default]
    Relevance,
    /// Newest first.
    Date,
    /// Most viewed first (among the most relevant matches).
    Views,
    /// Most liked first (among the most relevant matches).
    Likes,
}

/// Video length ranges, as video sites name them.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum DurationFilter {
    /// Under 4 minutes.
    Short,
    /// 4 to 20 minutes.
    Medium,
    /// Over 20 minutes.
    Long,
}

impl DurationFilter {
    /// (at least, less than) in seconds.
    fn seconds(self) -> (Option<u64>, Option<u64>) {
        match self {
            Self::Short => (None, Some(240)),
            Self::Medium => (Some(240), Some(1_200)),
            Self::Long => (Some(1_200), None),
        }
    }
}

/// What a suggestion completes to.
#[derive(Enum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum SuggestionKind {
    Title,
    Tag,
    Channel,
}

/// One completion of what the user is typing.
#[derive(SimpleObject)]
pub struct SearchSuggestion {
    /// The completed text (search for it, or open the channel).
    pub text: String,
    pub kind: SuggestionKind,
    /// The channel's owner, for `CHANNEL` suggestions.
    pub channel_id: Option<ID>,
}

#[derive(Default)]
pub struct SearchQuery;

#[Object]
impl SearchQuery {
    /// Listed videos matching `query` (web-search syntax: words, `"exact phrase"`, `or`,
    /// `-exclude`) and every filter given. At least a query or one filter. `sort`:
    /// RELEVANCE when not given.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn search(
        &self,
        ctx: &Context<'_>,
        query: Option<String>,
        tags: Option<Vec<String>>,
        category: Option<String>,
        published_after: Option<OffsetDateTime>,
        published_before: Option<OffsetDateTime>,
        duration: Option<DurationFilter>,
        sort: Option<SearchSort>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<Cursor, Video>> {
        let app = AppContext::get(ctx);
        let sort = sort.unwrap_or_default();
        let cursor = after.clone();
        let page = Page::parse(first, after, app.config.limits.max_page)?;
        let query = query.unwrap_or_default();
        if query.chars().count() > MAX_QUERY_CHARS {
            return Err(Error::bad_input(format!(
                "a search query is at most {MAX_QUERY_CHARS} characters"
            ))
            .into());
        }
        let micros = |t: OffsetDateTime| (t.unix_timestamp_nanos() / 1_000) as i64;
        let filters = Filters {
            tags: normalise_tags(tags.unwrap_or_default())?,
            category: category
                .map(|c| c.trim().to_lowercase())
                .filter(|c| !c.is_empty()),
            published_after: published_after.map(micros),
            published_before: published_before.map(micros),
            duration: duration.map(DurationFilter::seconds),
        };
        if let (Some(from), Some(to)) = (filters.published_after, filters.published_before)
            && from >= to
        {
            return Err(
                Error::bad_input("`publishedAfter` must be before `publishedBefore`").into(),
            );
        }
        if query.trim().is_empty() && filters.is_empty() {
            return Err(Error::bad_input("give a query or a filter").into());
        }
        let Some(engine) = app.search.engine() else {
            return Err(Error::Unavailable("search is starting; retry in a moment").into());
        };
        let key = SearchKey {
            query,
            filters,
            sort,
            after: cursor,
            first: page.first,
            generation: app.search.generation(),
        };
        let pool = app.db.pool();
        let videos = app
            .search_cache
            .get_or_load(key.clone(), async {
                let mut request = Request {
                    text: &key.query,
                    filters: &key.filters,
                    order: Order::Relevance,
                    after: None,
                    limit: SORT_CANDIDATES,
                };
                let column = match sort {
                    SearchSort::Views => "views_count",
                    SearchSort::Likes => "likes_count",
                    SearchSort::Relevance | SearchSort::Date => {
                        request.order = if sort == SearchSort::Date {
                            Order::Date
                        } else {
                            Order::Relevance
                        };
                        request.after = page.after.map(|c| Key {
                            score: c.score.unwrap_or(0.0) as f32,
                            published: c.at_micros(),
                            id: c.id,
                        });
                        request.limit = page.limit() as usize;
                        let keys = engine.search(&request).map_err(index_error)?;
                        return page_rows(&app.videos, &keys, sort == SearchSort::Relevance).await;
                    }
                };
                let keys = engine.search(&request).map_err(index_error)?;
                let ids: Vec<Uuid> = keys.iter().map(|k| k.id).collect();
                Ok(by_counter(pool, &ids, column, page).await?)
            })
            .await?;
        let videos = videos.iter().cloned().collect();
        Ok(page.connection(videos, |v| Cursor {
            score: v.rank,
            ..v.row.feed_cursor()
        }))
    }

    /// Completions of `prefix` (1 to 100 characters): titles, tags and channel names of
    /// listed videos, best first; typo-tolerant from 4 characters on. `first`: 1 to 20
    /// (10).
    async fn search_suggestions(
        &self,
        ctx: &Context<'_>,
        prefix: String,
        first: Option<i32>,
    ) -> Result<Vec<SearchSuggestion>> {
        let app = AppContext::get(ctx);
        let first = first.unwrap_or(10);
        if !(1..=MAX_SUGGESTIONS).contains(&first) {
            return Err(Error::bad_input(format!(
                "`first` must be between 1 and {MAX_SUGGESTIONS}"
            ))
            .into());
        }
        if prefix.chars().count() > MAX_PREFIX_CHARS {
            return Err(Error::bad_input(format!(
                "a prefix is at most {MAX_PREFIX_CHARS} characters"
            ))
            .into());
        }
        if !prefix.chars().any(char::is_alphanumeric) {
            return Err(Error::bad_input("give at least one letter or digit").into());
        }
        let suggestions = app.search.suggestions();
        let found = app.search.with_listed(|listed| {
            suggestions
                .complete(&prefix, first as usize, |entry| {
                    entry.kind != suggest::Kind::Title
                        || entry.videos.iter().any(|v| listed.contains(v))
                })
                .into_iter()
                .map(|entry| SearchSuggestion {
                    text: entry.text.clone(),
                    kind: match entry.kind {
                        suggest::Kind::Title => SuggestionKind::Title,
                        suggest::Kind::Tag => SuggestionKind::Tag,
                        suggest::Kind::Channel => SuggestionKind::Channel,
                    },
                    channel_id: entry.channel.map(|id| ID(id.to_string())),
                })
                .collect()
        });
        Ok(found)
    }
}

fn index_error(error: tantivy::TantivyError) -> Error {
    Error::Internal(anyhow::Error::new(error).context("search index"))
}

/// The rows of a page the index ordered, in its order; a video unlisted since the index
/// last heard of it is left out ([`VideoRow::listed`], the listing rule applied again to
/// the fresh row). Read through the shared video loader, so the pages of concurrent
/// searches come from one PostgreSQL query rather than one each.
async fn page_rows(
    videos: &DataLoader<VideoLoader>,
    keys: &[Key],
    ranked: bool,
) -> Result<Vec<Video>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut rows = videos.load_many(keys.iter().map(|k| k.id)).await?;
    Ok(keys
        .iter()
        .filter_map(|k| {
            Some(Video {
                row: rows.remove(&k.id).filter(VideoRow::listed)?,
                rank: ranked.then_some(f64::from(k.score)),
            })
        })
        .collect())
}

#[derive(sqlx::FromRow)]
struct Counted {
    #[sqlx(flatten)]
    row: VideoRow,
    rank: f64,
}

/// A page of `ids` ordered by a counter (`views_count` or `likes_count`), then newest.
async fn by_counter(
    pool: &PgPool,
    ids: &[Uuid],
    column: &'static str,
    page: Page,
) -> Result<Vec<Video>, Error> {
    let columns = store::COLUMNS;
    let listed = store::LISTED;
    let at = "coalesce(published_at, created_at)";
    let inner = format!(
        "SELECT {columns}, {column}::float8 AS rank, {column} AS counter, {at} AS at
         FROM videos WHERE id = ANY($1) AND {listed}"
    );
    let order = "ORDER BY counter DESC, at DESC, id DESC";
    count_query("postgres", "search_by_counter");
    let rows: Vec<Counted> = match page.after {
        None => {
            let sql = format!("SELECT * FROM ({inner}) s {order} LIMIT $2");
            sqlx::query_as(&sql)
                .bind(ids)
                .bind(page.limit())
                .fetch_all(pool)
                .await?
        }
        Some(after) => {
            let sql = format!(
                "SELECT * FROM ({inner}) s WHERE (counter, at, id) < ($3, $4, $5) {order} LIMIT $2"
            );
            sqlx::query_as(&sql)
                .bind(ids)
                .bind(page.limit())
                .bind(after.score.unwrap_or(0.0) as i64)
                .bind(after.at)
                .bind(after.id)
                .fetch_all(pool)
                .await?
        }
    };
    Ok(rows
        .into_iter()
        .map(|r| Video {
            row: r.row,
            rank: Some(r.rank),
        })
        .collect())
}
