//! Playlists in PostgreSQL. Every change to a playlist's items locks its row first
//! (`SELECT … FOR UPDATE`), so concurrent adds, removals and moves on one playlist run one
//! after the other and always leave positions 0..n-1 without gaps or duplicates; changes
//! to different playlists do not wait for each other.

use sqlx::{PgPool, Postgres, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    catalogue::{
        VideoRow,
        store::{COLUMNS, qualified},
    },
    cursor::Page,
};

pub const PLAYLIST_COLUMNS: &str = "id, owner_id, kind, title, description, visibility, \
     item_count, created_at, updated_at";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PlaylistRow {
    pub id: Uuid,
    pub owner_id: Uuid,
    /// `custom` or `watch_later`.
    pub kind: String,
    pub title: String,
    pub description: String,
    /// `public`, `unlisted` or `private`.
    pub visibility: String,
    pub item_count: i32,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl PlaylistRow {
    pub fn is_watch_later(&self) -> bool {
        self.kind == "watch_later"
    }

    /// Private playlists are their owner's alone; unlisted ones anyone with the id sees.
    pub fn visible_to(&self, viewer: Option<Uuid>) -> bool {
        self.visibility != "private" || viewer == Some(self.owner_id)
    }
}

/// One item as a viewer sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ItemRow {
    pub position: i32,
    pub added_at: OffsetDateTime,
    #[sqlx(flatten)]
    pub video: VideoRow,
}

pub async fn get(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<PlaylistRow>> {
    let sql = format!("SELECT {PLAYLIST_COLUMNS} FROM playlists WHERE id = $1");
    sqlx::query_as(&sql).bind(id).fetch_optional(pool).await
}

/// The playlist, locked until `tx` ends (see the module docs).
pub async fn lock(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
) -> sqlx::Result<Option<PlaylistRow>> {
    let sql = format!("SELECT {PLAYLIST_COLUMNS} FROM playlists WHERE id = $1 FOR UPDATE");
    sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
}

pub async fn create(
    pool: &PgPool,
    owner: Uuid,
    title: &str,
    description: &str,
    visibility: &str,
) -> sqlx::Result<PlaylistRow> {
    let sql = format!(
        "INSERT INTO playlists (id, owner_id, kind, title, description, visibility)
         VALUES ($1, $2, 'custom', $3, $4, $5) RETURNING {PLAYLIST_COLUMNS}"
    );
    sqlx::query_as(&sql)
        .bind(Uuid::now_v7())
        .bind(owner)
        .bind(title)
        .bind(description)
        .bind(visibility)
        .fetch_one(pool)
        .await
}

/// The owner's "Watch later", made on first use.
pub async fn watch_later(pool: &PgPool, owner: Uuid) -> sqlx::Result<PlaylistRow> {
    sqlx::query(
        "INSERT INTO playlists (id, owner_id, kind, title, visibility)
         VALUES ($1, $2, 'watch_later', 'Watch later', 'private')
         ON CONFLICT (owner_id) WHERE kind = 'watch_later' DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(owner)
    .execute(pool)
    .await?;
    find_watch_later(pool, owner)
        .await?
        .ok_or(sqlx::Error::RowNotFound)
}

pub async fn find_watch_later(pool: &PgPool, owner: Uuid) -> sqlx::Result<Option<PlaylistRow>> {
    let sql = format!(
        "SELECT {PLAYLIST_COLUMNS} FROM playlists WHERE owner_id = $1 AND kind = 'watch_later'"
    );
    sqlx::query_as(&sql).bind(owner).fetch_optional(pool).await
}

/// Sets what is given; returns the playlist as it is now.
pub async fn update(
    pool: &PgPool,
    id: Uuid,
    title: Option<&str>,
    description: Option<&str>,
    visibility: Option<&str>,
) -> sqlx::Result<PlaylistRow> {
    let sql = format!(
        "UPDATE playlists SET title = coalesce($2, title),
             description = coalesce($3, description),
             visibility = coalesce($4, visibility), updated_at = now()
         WHERE id = $1 RETURNING {PLAYLIST_COLUMNS}"
    );
    sqlx::query_as(&sql)
        .bind(id)
        .bind(title)
        .bind(description)
        .bind(visibility)
        .fetch_one(pool)
        .await
}

pub async fn delete(pool: &PgPool, id: Uuid) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM playlists WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Whether the playlist holds the video, and where.
pub async fn position_of(
    tx: &mut Transaction<'_, Postgres>,
    playlist: Uuid,
    video: Uuid,
) -> sqlx::Result<Option<i32>> {
    sqlx::query_scalar(
        "SELECT position FROM playlist_items WHERE playlist_id = $1 AND video_id = $2",
    )
    .bind(playlist)
    .bind(video)
    .fetch_optional(&mut **tx)
    .await
}

/// Inserts `video` at `position` (0..=item_count), shifting the rest down. The playlist
/// must be locked and must not hold the video.
pub async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    playlist: Uuid,
    video: Uuid,
    position: i32,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE playlist_items SET position = position + 1
         WHERE playlist_id = $1 AND position >= $2",
    )
    .bind(playlist)
    .bind(position)
    .execute(&mut **tx)
    .await?;
    sqlx::query("INSERT INTO playlist_items (playlist_id, video_id, position) VALUES ($1, $2, $3)")
        .bind(playlist)
        .bind(video)
        .bind(position)
        .execute(&mut **tx)
        .await?;
    touch(tx, playlist, 1).await
}

/// Removes the item at `position`, closing the gap. The playlist must be locked.
pub async fn remove(
    tx: &mut Transaction<'_, Postgres>,
    playlist: Uuid,
    video: Uuid,
    position: i32,
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM playlist_items WHERE playlist_id = $1 AND video_id = $2")
        .bind(playlist)
        .bind(video)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "UPDATE playlist_items SET position = position - 1
         WHERE playlist_id = $1 AND position > $2",
    )
    .bind(playlist)
    .bind(position)
    .execute(&mut **tx)
    .await?;
    touch(tx, playlist, -1).await
}

/// Moves the item at `from` to `to` (both within 0..item_count), shifting those between.
/// The playlist must be locked.
pub async fn move_item(
    tx: &mut Transaction<'_, Postgres>,
    playlist: Uuid,
    video: Uuid,
    from: i32,
    to: i32,
) -> sqlx::Result<()> {
    // Down the list: those between move up one; up the list: they move down one.
    let (shift, low, high) = if from < to {
        (-1, from + 1, to)
    } else {
        (1, to, from - 1)
    };
    sqlx::query(
        "UPDATE playlist_items SET position = position + $2
         WHERE playlist_id = $1 AND position BETWEEN $3 AND $4",
    )
    .bind(playlist)
    .bind(shift)
    .bind(low)
    .bind(high)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE playlist_items SET position = $3 WHERE playlist_id = $1 AND video_id = $2")
        .bind(playlist)
        .bind(video)
        .bind(to)
        .execute(&mut **tx)
        .await?;
    touch(tx, playlist, 0).await
}

async fn touch(tx: &mut Transaction<'_, Postgres>, playlist: Uuid, items: i32) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE playlists SET item_count = item_count + $2, updated_at = now() WHERE id = $1",
    )
    .bind(playlist)
    .bind(items)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A page of items in order, without the videos `viewer` may not see (private, not ready
/// or deleted, unless they are the video's owner): skipped, positions kept. The cursor's
/// `score` is the last position seen.
pub async fn items(
    pool: &PgPool,
    playlist: Uuid,
    viewer: Option<Uuid>,
    page: Page,
) -> sqlx::Result<Vec<ItemRow>> {
    let after = page.after.and_then(|c| c.score).map_or(-1, |p| p as i32);
    let columns = qualified(COLUMNS, "v");
    let sql = format!(
        "SELECT i.position, i.added_at, {columns}
         FROM playlist_items i JOIN videos v ON v.id = i.video_id
         WHERE i.playlist_id = $1 AND i.position > $2 AND v.deleted_at IS NULL
           AND (v.owner_id = $3 OR (v.status = 'ready' AND v.visibility <> 'private'
                                    AND v.hidden_at IS NULL AND v.owner_banned_at IS NULL))
         ORDER BY i.position LIMIT $4"
    );
    sqlx::query_as(&sql)
        .bind(playlist)
        .bind(after)
        .bind(viewer)
        .bind(page.limit())
        .fetch_all(pool)
        .await
}

/// `owner`'s playlists, newest first; all of them for the owner, else only public ones.
pub async fn of_owner(
    pool: &PgPool,
    owner: Uuid,
    everything: bool,
    page: Page,
) -> sqlx::Result<Vec<PlaylistRow>> {
    let (at, id) = page
        .after
        .map_or((None, None), |c| (Some(c.at), Some(c.id)));
    let sql = format!(
        "SELECT {PLAYLIST_COLUMNS} FROM playlists
         WHERE owner_id = $1 AND ($2 OR visibility = 'public')
           AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4))
         ORDER BY created_at DESC, id DESC LIMIT $5"
    );
    sqlx::query_as(&sql)
        .bind(owner)
        .bind(everything)
        .bind(at)
        .bind(id)
        .bind(page.limit())
        .fetch_all(pool)
        .await
}

/// The playlists holding each video, of each (owner, video) pair in `keys`: the owner's
/// playlists that hold it, newest first, for many pairs in one query.
pub async fn holding(
    pool: &PgPool,
    keys: &[(Uuid, Uuid)],
) -> sqlx::Result<Vec<((Uuid, Uuid), PlaylistRow)>> {
    #[derive(sqlx::FromRow)]
    struct Held {
        key_owner: Uuid,
        key_video: Uuid,
        #[sqlx(flatten)]
        playlist: PlaylistRow,
    }
    let (owners, videos): (Vec<Uuid>, Vec<Uuid>) = keys.iter().copied().unzip();
    let columns = qualified(PLAYLIST_COLUMNS, "p");
    let sql = format!(
        "SELECT k.owner_id AS key_owner, k.video_id AS key_video, {columns}
         FROM unnest($1::uuid[], $2::uuid[]) AS k(owner_id, video_id)
         JOIN playlist_items i ON i.video_id = k.video_id
         JOIN playlists p ON p.id = i.playlist_id AND p.owner_id = k.owner_id
         ORDER BY p.created_at DESC, p.id DESC"
    );
    let rows: Vec<Held> = sqlx::query_as(&sql)
        .bind(&owners)
        .bind(&videos)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| ((r.key_owner, r.key_video), r.playlist))
        .collect())
}
