//! Notification rows in PostgreSQL (migrations/0009): writing one inside the caller's
//! transaction, reading a recipient's pages and unread count, marking read, settings.
//!
//! Every write goes through [`notify`] (one recipient) or the fan-out's batch insert
//! (crate::notifications::fanout), and both skip a recipient who turned the kind off and
//! a `(recipient, dedupe_key)` already present: a notification exists at most once,
//! whatever is redelivered or retried.

use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use super::Kind;
use crate::cursor::{Cursor, Page};

/// At most this many unread are counted (`unreadNotificationCount` says "999+" beyond),
/// so the count costs the same for a user with a million unread.
pub const UNREAD_CAP: i64 = 1_000;

/// Columns of [`NotificationRow`], in the order `sqlx::FromRow` reads them by name.
pub(super) const COLUMNS: &str = "n.id, n.recipient_id, n.kind, n.actor_id, n.video_id, n.comment_id, \
                       n.detail, n.created_at, n.read_at";

/// Whether a notification's video (if it has one) may still be seen by its recipient: a
/// notification about a video made private or deleted since is left out of the list and
/// the count alike. (The recipient's own videos are always theirs to see.)
const STILL_VISIBLE: &str = "(n.video_id IS NULL OR EXISTS (
        SELECT 1 FROM videos v WHERE v.id = n.video_id AND v.deleted_at IS NULL
          AND (v.owner_id = n.recipient_id
               OR (v.status = 'ready' AND v.visibility <> 'private'
                   AND v.hidden_at IS NULL AND v.owner_banned_at IS NULL))))";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct NotificationRow {
    pub id: Uuid,
    pub recipient_id: Uuid,
    pub kind: String,
    pub actor_id: Option<Uuid>,
    pub video_id: Option<Uuid>,
    pub comment_id: Option<String>,
    pub detail: Option<String>,
    pub created_at: OffsetDateTime,
    pub read_at: Option<OffsetDateTime>,
}

/// A notification to write for one recipient.
#[derive(Debug, Clone)]
pub struct NewNotification {
    pub recipient: Uuid,
    pub kind: Kind,
    /// What makes it unique for the recipient, e.g. the video or comment id.
    pub subject: String,
    pub actor: Option<Uuid>,
    pub video: Option<Uuid>,
    pub comment: Option<String>,
    pub detail: Option<String>,
}

impl NewNotification {
    pub fn new(recipient: Uuid, kind: Kind, subject: impl ToString) -> Self {
        Self {
            recipient,
            kind,
            subject: subject.to_string(),
            actor: None,
            video: None,
            comment: None,
            detail: None,
        }
    }

    fn dedupe_key(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.subject)
    }
}

/// Writes `n` in the caller's transaction unless its recipient turned the kind off or
/// already has it. Returns the row written, to announce live once the transaction commits.
pub async fn notify(
    conn: &mut PgConnection,
    n: &NewNotification,
) -> sqlx::Result<Option<NotificationRow>> {
    let sql = format!(
        "INSERT INTO notifications AS n
             (id, recipient_id, kind, dedupe_key, actor_id, video_id, comment_id, detail)
         SELECT $8, $1, $2, $3, $4, $5, $6, $7
         WHERE NOT EXISTS (SELECT 1 FROM notification_settings s
                           WHERE s.user_id = $1 AND s.kind = $2 AND s.delivery = 'off')
         ON CONFLICT ON CONSTRAINT notifications_once DO NOTHING
         RETURNING {COLUMNS}"
    );
    sqlx::query_as(&sql)
        .bind(n.recipient)
        .bind(n.kind.as_str())
        .bind(n.dedupe_key())
        .bind(n.actor)
        .bind(n.video)
        .bind(&n.comment)
        .bind(&n.detail)
        .bind(Uuid::now_v7()) // time-ordered: the primary key grows at its end
        .fetch_optional(conn)
        .await
}

/// A page of the recipient's notifications, newest first (one more than asked, for
/// `hasNextPage`).
pub async fn page(
    pool: &PgPool,
    recipient: Uuid,
    unread_only: bool,
    page: Page,
) -> sqlx::Result<Vec<NotificationRow>> {
    let unread = if unread_only {
        "AND n.read_at IS NULL"
    } else {
        ""
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM notifications n
         WHERE n.recipient_id = $1 {unread}
           AND ($2::timestamptz IS NULL OR (n.created_at, n.id) < ($2, $3))
           AND {STILL_VISIBLE}
         ORDER BY n.created_at DESC, n.id DESC
         LIMIT $4"
    );
    let after = page.after;
    sqlx::query_as(&sql)
        .bind(recipient)
        .bind(after.map(|c| c.at))
        .bind(after.map(|c| c.id))
        .bind(page.limit())
        .fetch_all(pool)
        .await
}

/// Unread notifications of `recipient`, at most [`UNREAD_CAP`].
pub async fn unread_count(pool: &PgPool, recipient: Uuid) -> sqlx::Result<i64> {
    let sql = format!(
        "SELECT count(*) FROM (
             SELECT 1 FROM notifications n
             WHERE n.recipient_id = $1 AND n.read_at IS NULL AND {STILL_VISIBLE}
             LIMIT $2) unread"
    );
    sqlx::query_scalar(&sql)
        .bind(recipient)
        .bind(UNREAD_CAP)
        .fetch_one(pool)
        .await
}

/// The recipient's notification `id`, if it is theirs.
pub async fn get(
    pool: &PgPool,
    recipient: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<NotificationRow>> {
    let sql = format!("SELECT {COLUMNS} FROM notifications n WHERE n.id = $1");
    let row: Option<NotificationRow> = sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?;
    Ok(row.filter(|r| r.recipient_id == recipient))
}

/// Marks read every unread notification of `recipient` up to `upto` (its position in the
/// newest-first order) and returns how many. Those that arrive later stay unread, even
/// if their time is earlier (a batch committing late): only rows present now are marked.
pub async fn mark_read(pool: &PgPool, recipient: Uuid, upto: &Cursor) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "UPDATE notifications SET read_at = now()
         WHERE recipient_id = $1 AND read_at IS NULL AND (created_at, id) <= ($2, $3)",
    )
    .bind(recipient)
    .bind(upto.at)
    .bind(upto.id)
    .execute(pool)
    .await?
    .rows_affected())
}

/// The kinds `user` turned off.
pub async fn kinds_off(pool: &PgPool, user: Uuid) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT kind FROM notification_settings WHERE user_id = $1 AND delivery = 'off'",
    )
    .bind(user)
    .fetch_all(pool)
    .await
}

/// Sets how `user` gets `kind` (the default, in-app, is stored as no row).
pub async fn set_delivery(pool: &PgPool, user: Uuid, kind: Kind, off: bool) -> sqlx::Result<()> {
    if off {
        sqlx::query(
            "INSERT INTO notification_settings (user_id, kind, delivery) VALUES ($1, $2, 'off')
             ON CONFLICT (user_id, kind) DO UPDATE SET delivery = 'off'",
        )
    } else {
        sqlx::query("DELETE FROM notification_settings WHERE user_id = $1 AND kind = $2")
    }
    .bind(user)
    .bind(kind.as_str())
    .execute(pool)
    .await?;
    Ok(())
}
