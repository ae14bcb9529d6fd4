//! Search: PostgreSQL full-text search over the listed videos.
//!
//! * The document is weighted: title (A), tags (B), description (C); a trigger keeps it
//!   (migrations/0002_catalogue.sql).
//! * The query uses web-search syntax (`"exact phrase"`, `or`, `-exclude`) through
//!   `websearch_to_tsquery`, which accepts any string without error.
//! * Typos: each query word that is not in the vocabulary of titles and tags is replaced
//!   by its nearest vocabulary word by trigram similarity (pg_trgm, GiST index), when one
//!   is similar enough. "progrmming" finds "programming".
//! * Filters (all given tags, category) combine with the query.
//! * Order: relevance (`ts_rank`), then recency; the cursor carries all three keys.
//! * Popular searches repeat: a result page is shared by everyone asking the same search
//!   for `SEARCH_CACHE_MILLIS` (1 s; see crate::page_cache), typo correction included.

use std::collections::HashMap;

use async_graphql::{Context, Object, Result, connection::Connection};
use sqlx::PgPool;

use crate::{
    catalogue::{Video, VideoRow, graphql::normalise_tags, store},
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
    tags: Option<Vec<String>>,
    category: Option<String>,
    /// The `after` cursor as sent.
    after: Option<String>,
    first: usize,
}

/// Longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// Query words looked up for typos, at most.
const MAX_WORDS: usize = 8;

#[derive(Default)]
pub struct SearchQuery;

#[Object]
impl SearchQuery {
    /// Listed videos matching `query` (web-search syntax), all of `tags` and `category`;
    /// most relevant first, then newest.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn search(
        &self,
        ctx: &Context<'_>,
        query: Option<String>,
        tags: Option<Vec<String>>,
        category: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<Cursor, Video>> {
        let app = AppContext::get(ctx);
        let cursor = after.clone();
        let page = Page::parse(first, after, app.config.limits.max_page)?;
        let query = query.unwrap_or_default();
        if query.chars().count() > MAX_QUERY_CHARS {
            return Err(Error::bad_input(format!(
                "a search query is at most {MAX_QUERY_CHARS} characters"
            ))
            .into());
        }
        let tags = normalise_tags(tags.unwrap_or_default())?;
        let category = category
            .map(|c| c.trim().to_lowercase())
            .filter(|c| !c.is_empty());
        if query.trim().is_empty() && tags.is_empty() && category.is_none() {
            return Err(Error::bad_input("give a query, tags or a category").into());
        }
        let filters = Filters {
            tags: (!tags.is_empty()).then_some(tags),
            category,
        };
        let key = SearchKey {
            query,
            tags: filters.tags.clone(),
            category: filters.category.clone(),
            after: cursor,
            first: page.first,
        };
        let pool = app.db.pool();
        let videos = app
            .search_cache
            .get_or_load(key.clone(), async {
                let query = correct_typos(pool, &key.query).await?;
                count_query("postgres", "search");
                search(pool, &query, &filters, page).await
            })
            .await?;
        let videos = videos.iter().cloned().collect();
        Ok(page.connection(videos, |v| Cursor {
            score: v.rank,
            ..v.row.feed_cursor()
        }))
    }
}

struct Filters {
    tags: Option<Vec<String>>,
    category: Option<String>,
}

/// The words of a query that typo correction looks at: runs of letters and digits, 4 to 40
/// long (shorter ones are mostly stop words and operators, and too short to correct).
fn words(query: &str) -> Vec<String> {
    let mut words: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| (4..=40).contains(&w.chars().count()))
        .map(str::to_lowercase)
        .collect();
    words.dedup();
    words.truncate(MAX_WORDS);
    words
}

/// Replaces the words of `query` found in `fixes` (case-insensitively), keeping every
/// other character (quotes, operators) as it was.
fn apply_fixes(query: &str, fixes: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(query.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        match fixes.get(&word.to_lowercase()) {
            Some(fix) => out.push_str(fix),
            None => out.push_str(word),
        }
        word.clear();
    };
    for c in query.chars() {
        if c.is_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// The query with unknown words replaced by their nearest known word (when one is close).
async fn correct_typos(pool: &PgPool, query: &str) -> Result<String, Error> {
    let words = words(query);
    if words.is_empty() {
        return Ok(query.to_owned());
    }
    count_query("postgres", "typo_fixes");
    let fixes: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT t.word,
                (SELECT w.word FROM search_words w WHERE w.word % t.word
                 ORDER BY w.word <-> t.word LIMIT 1)
         FROM unnest($1::text[]) AS t(word)
         WHERE NOT EXISTS (SELECT 1 FROM search_words w WHERE w.word = t.word)",
    )
    .bind(&words)
    .fetch_all(pool)
    .await?;
    let fixes: HashMap<String, String> = fixes
        .into_iter()
        .filter_map(|(word, fix)| Some((word, fix?)))
        .collect();
    Ok(if fixes.is_empty() {
        query.to_owned()
    } else {
        apply_fixes(query, &fixes)
    })
}

#[derive(sqlx::FromRow)]
struct Ranked {
    #[sqlx(flatten)]
    row: VideoRow,
    rank: f64,
}

async fn search(
    pool: &PgPool,
    query: &str,
    filters: &Filters,
    page: Page,
) -> Result<Vec<Video>, Error> {
    let columns = store::COLUMNS;
    let listed = store::LISTED;
    // Without a query, everything that passes the filters ranks 0: newest first.
    let (matches, rank) = if query.trim().is_empty() {
        ("true", "0::float8")
    } else {
        (
            "search @@ websearch_to_tsquery('english', $1)",
            "ts_rank(search, websearch_to_tsquery('english', $1))::float8",
        )
    };
    let inner = format!(
        "SELECT {columns}, {rank} AS rank FROM videos
         WHERE {listed} AND {matches}
           AND ($2::text[] IS NULL OR tags @> $2)
           AND ($3::text IS NULL OR category = $3)"
    );
    let order = "ORDER BY rank DESC, published_at DESC, id DESC";
    let rows: Vec<Ranked> = match page.after {
        None => {
            let sql = format!("SELECT * FROM ({inner}) s {order} LIMIT $4");
            sqlx::query_as(&sql)
                .bind(query)
                .bind(&filters.tags)
                .bind(&filters.category)
                .bind(page.limit())
                .fetch_all(pool)
                .await?
        }
        Some(after) => {
            let sql = format!(
                "SELECT * FROM ({inner}) s WHERE (rank, published_at, id) < ($5, $6, $7)
                 {order} LIMIT $4"
            );
            sqlx::query_as(&sql)
                .bind(query)
                .bind(&filters.tags)
                .bind(&filters.category)
                .bind(page.limit())
                .bind(after.score.unwrap_or(0.0))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lowercased_alphanumeric_runs() {
        assert_eq!(
            words("\"Rust progrmming\" -go OR a"),
            vec!["rust", "progrmming"]
        );
        assert!(words("a b c !!").is_empty());
    }

    #[test]
    fn fixes_replace_words_and_keep_syntax() {
        let fixes = HashMap::from([("progrmming".to_string(), "programming".to_string())]);
        assert_eq!(
            apply_fixes("\"Progrmming in rust\" -java", &fixes),
            "\"programming in rust\" -java"
        );
    }
}
