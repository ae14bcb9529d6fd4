//! Catalogue queries. Every list is keyset-paginated on an index that serves its order
//! (see migrations/0002_catalogue.sql); queries with and without a cursor are separate
//! statements so each gets a plan that starts at the cursor instead of filtering up to it.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::VideoRow;
use crate::cursor::Page;

pub const COLUMNS: &str = "id, owner_id, title, description, tags, category, visibility, status, \
     failure_reason, duration_seconds, manifest_key, thumbnail_key, posters, storyboard, captions, \
     created_at, published_at, deleted_at, likes_count, comments_count, views_count, \
     watch_seconds, hidden_at, hidden_reason, owner_banned_at";

/// What anyone may list: ready, public, not deleted, and not withheld by moderation
/// (crate::moderation).
pub const LISTED: &str = "status = 'ready' AND visibility = 'public' AND deleted_at IS NULL \
     AND hidden_at IS NULL AND owner_banned_at IS NULL";

pub async fn get(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<VideoRow>> {
    let sql = format!("SELECT {COLUMNS} FROM videos WHERE id = $1");
    sqlx::query_as(&sql).bind(id).fetch_optional(pool).await
}

/// Many videos at once (unknown ids are left out).
pub async fn get_many(pool: &PgPool, ids: &[Uuid]) -> sqlx::Result<Vec<VideoRow>> {
    let sql = format!("SELECT {COLUMNS} FROM videos WHERE id = ANY($1)");
    sqlx::query_as(&sql).bind(ids).fetch_all(pool).await
}

/// Locks the row for an owner's edit.
pub async fn get_for_update(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<VideoRow>> {
    let sql = format!("SELECT {COLUMNS} FROM videos WHERE id = $1 FOR UPDATE");
    sqlx::query_as(&sql).bind(id).fetch_optional(conn).await
}

/// Published videos, newest first.
pub async fn feed(pool: &PgPool, page: Page) -> sqlx::Result<Vec<VideoRow>> {
    let order = "ORDER BY published_at DESC, id DESC";
    match page.after {
        None => {
            let sql = format!("SELECT {COLUMNS} FROM videos WHERE {LISTED} {order} LIMIT $1");
            sqlx::query_as(&sql)
                .bind(page.limit())
                .fetch_all(pool)
                .await
        }
        Some(after) => {
            let sql = format!(
                "SELECT {COLUMNS} FROM videos WHERE {LISTED} AND (published_at, id) < ($1, $2)
                 {order} LIMIT $3"
            );
            sqlx::query_as(&sql)
                .bind(after.at)
                .bind(after.id)
                .bind(page.limit())
                .fetch_all(pool)
                .await
        }
    }
}

/// A column list like [`COLUMNS`] (`a, b, c`) with each column prefixed by a table alias
/// (`v.a, v.b, v.c`), for a query that joins another table.
pub fn qualified(columns: &str, alias: &str) -> String {
    columns
        .split(',')
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Newest published videos of the channels `follower` follows.
pub async fn subscription_feed(
    pool: &PgPool,
    follower: Uuid,
    page: Page,
) -> sqlx::Result<Vec<VideoRow>> {
    let columns = qualified(COLUMNS, "v");
    let from = "FROM follows f JOIN videos v ON v.owner_id = f.channel_id
         WHERE f.follower_id = $1
           AND v.status = 'ready' AND v.visibility = 'public' AND v.deleted_at IS NULL
           AND v.hidden_at IS NULL AND v.owner_banned_at IS NULL";
    let order = "ORDER BY v.published_at DESC, v.id DESC";
    match page.after {
        None => {
            let sql = format!("SELECT {columns} {from} {order} LIMIT $2");
            sqlx::query_as(&sql)
                .bind(follower)
                .bind(page.limit())
                .fetch_all(pool)
                .await
        }
        Some(after) => {
            let sql = format!(
                "SELECT {columns} {from} AND (v.published_at, v.id) < ($3, $4) {order} LIMIT $2"
            );
            sqlx::query_as(&sql)
                .bind(follower)
                .bind(page.limit())
                .bind(after.at)
                .bind(after.id)
                .fetch_all(pool)
                .await
        }
    }
}

/// A user's videos, newest created first: all of them for the owner (`everything`), only
/// the listed ones for anyone else.
pub async fn by_owner(
    pool: &PgPool,
    owner: Uuid,
    everything: bool,
    page: Page,
) -> sqlx::Result<Vec<VideoRow>> {
    let filter = if everything {
        "deleted_at IS NULL"
    } else {
        LISTED
    };
    let order = "ORDER BY created_at DESC, id DESC";
    match page.after {
        None => {
            let sql = format!(
                "SELECT {COLUMNS} FROM videos WHERE owner_id = $1 AND {filter} {order} LIMIT $2"
            );
            sqlx::query_as(&sql)
                .bind(owner)
                .bind(page.limit())
                .fetch_all(pool)
                .await
        }
        Some(after) => {
            let sql = format!(
                "SELECT {COLUMNS} FROM videos WHERE owner_id = $1 AND {filter}
                   AND (created_at, id) < ($3, $4) {order} LIMIT $2"
            );
            sqlx::query_as(&sql)
                .bind(owner)
                .bind(page.limit())
                .bind(after.at)
                .bind(after.id)
                .fetch_all(pool)
                .await
        }
    }
}
