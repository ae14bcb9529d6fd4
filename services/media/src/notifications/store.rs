//! Notification rows in PostgreSQL (migrations/0009): writing one inside the caller's
//! transaction, reading a recipient's pages and unread count, marking read, settings.
//!
//! Every write goes through [`notify`] (one recipient) or the fan-out's batch insert
//! (crate::notifications::fanout), and both skip a recipient who turned the kind off and
//! a `(recipient, dedupe_key)` already present: a notification exists at most once,
//! whatever is redelivered or retried.
//!
//! A reader's notifications are their own rows merged with the posts of the large
//! channels they follow ([`POSTS`], fan-in on read, migrations/0012), each side read
//! newest first from its own index and limited before the merge.

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

/// The reader's (`$1`) new-video posts from large channels, shaped as notification rows
/// (`n`): posts of the channels they follow, made after they followed, unless they turned
/// new videos off. Read up to their mark. [`POSTS`] also leaves out what
/// `not_own_row!` does.
macro_rules! posts_of_followed {
    () => {
        "SELECT p.id, $1::uuid AS recipient_id, 'new_video'::text AS kind,
           NULL::uuid AS actor_id, p.video_id, NULL::text AS comment_id,
           NULL::text AS detail, p.created_at,
           CASE WHEN (p.created_at, p.id) <= (m.upto_at, m.upto_id) THEN m.read_at END AS read_at
       FROM follows f
       JOIN notification_posts p ON p.channel_id = f.channel_id AND p.created_at > f.created_at
       LEFT JOIN notification_marks m ON m.user_id = $1
       WHERE f.follower_id = $1
         AND NOT EXISTS (SELECT 1 FROM notification_settings s
                         WHERE s.user_id = f.follower_id AND s.kind = 'new_video'
                           AND s.delivery = 'off')"
    };
}

/// Whether a post (`n`) has not already reached the reader as a row of their own (a
/// channel that crossed the threshold between two listings of one video).
macro_rules! not_own_row {
    () => {
        "NOT EXISTS (SELECT 1 FROM notifications o
                     WHERE o.recipient_id = $1 AND o.dedupe_key = 'new_video:' || n.video_id)"
    };
}

/// The reader's (`$1`) posts: `posts_of_followed!` but those that reached them as rows.
const POSTS: &str = concat!(
    "SELECT * FROM (",
    posts_of_followed!(),
    ") n WHERE ",
    not_own_row!()
);

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
    let after = "($2::timestamptz IS NULL OR (n.created_at, n.id) < ($2, $3))";
    // The posts side is sorted before its probes (own row, still visible) run, and the
    // probes run only on the rows the limit reaches (`OFFSET 0` keeps the planner from
    // moving them below the sort): a reader of many large channels has hundreds of posts,
    // of which a page needs a few more than its length.
    let sql = format!(
        "SELECT * FROM (
             (SELECT {COLUMNS} FROM notifications n
              WHERE n.recipient_id = $1 {unread} AND {after} AND {STILL_VISIBLE}
              ORDER BY n.created_at DESC, n.id DESC LIMIT $4)
             UNION ALL
             (SELECT {COLUMNS} FROM (
                  SELECT * FROM ({posts}) n
                  WHERE true {unread} AND {after}
                  ORDER BY n.created_at DESC, n.id DESC
                  OFFSET 0) n
              WHERE {not_own_row} AND {STILL_VISIBLE}
              ORDER BY n.created_at DESC, n.id DESC LIMIT $4)
         ) n
         ORDER BY n.created_at DESC, n.id DESC
         LIMIT $4",
        posts = posts_of_followed!(),
        not_own_row = not_own_row!(),
    );
    sqlx::query_as(&sql)
        .bind(recipient)
        .bind(page.after.map(|c| c.at))
        .bind(page.after.map(|c| c.id))
        .bind(page.limit())
        .fetch_all(pool)
        .await
}

/// Unread notifications of `recipient`, at most [`UNREAD_CAP`].
pub async fn unread_count(pool: &PgPool, recipient: Uuid) -> sqlx::Result<i64> {
    let sql = format!(
        "SELECT count(*) FROM (
             (SELECT 1 FROM notifications n
              WHERE n.recipient_id = $1 AND n.read_at IS NULL AND {STILL_VISIBLE} LIMIT $2)
             UNION ALL
             (SELECT 1 FROM ({POSTS}) n WHERE n.read_at IS NULL AND {STILL_VISIBLE} LIMIT $2)
         ) unread"
    );
    let count: i64 = sqlx::query_scalar(&sql)
        .bind(recipient)
        .bind(UNREAD_CAP)
        .fetch_one(pool)
        .await?;
    Ok(count.min(UNREAD_CAP))
}

/// The recipient's notification `id`, if it is theirs.
pub async fn get(
    pool: &PgPool,
    recipient: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<NotificationRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM notifications n WHERE n.id = $2 AND n.recipient_id = $1
         UNION ALL
         SELECT {COLUMNS} FROM ({POSTS}) n WHERE n.id = $2
         LIMIT 1"
    );
    sqlx::query_as(&sql)
        .bind(recipient)
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Marks read every unread notification of `recipient` up to `upto` (its position in the
/// newest-first order) and returns how many. Rows that arrive later stay unread, even if
/// their time is earlier (a batch committing late): only rows present now are marked.
/// Posts are marked by moving the recipient's mark forward (never back); a post is
/// visible from its commit, a moment after its time, so one committing in that moment
/// behind a mark counts as read.
pub async fn mark_read(pool: &PgPool, recipient: Uuid, upto: &Cursor) -> sqlx::Result<u64> {
    let mut tx = pool.begin().await?;
    let own = sqlx::query(
        "UPDATE notifications SET read_at = now()
         WHERE recipient_id = $1 AND read_at IS NULL AND (created_at, id) <= ($2, $3)",
    )
    .bind(recipient)
    .bind(upto.at)
    .bind(upto.id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    // The posts newly read are counted before the mark moves, holding the mark's row
    // lock so a concurrent call counts after this one (a first mark covers nothing).
    sqlx::query(
        "INSERT INTO notification_marks (user_id, upto_at, upto_id)
         VALUES ($1, '-infinity', '00000000-0000-0000-0000-000000000000')
         ON CONFLICT (user_id) DO UPDATE SET user_id = EXCLUDED.user_id",
    )
    .bind(recipient)
    .execute(&mut *tx)
    .await?;
    let posts: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM ({POSTS}) n
         WHERE n.read_at IS NULL AND (n.created_at, n.id) <= ($2, $3)"
    ))
    .bind(recipient)
    .bind(upto.at)
    .bind(upto.id)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE notification_marks SET upto_at = $2, upto_id = $3, read_at = now()
         WHERE user_id = $1 AND (upto_at, upto_id) < ($2, $3)",
    )
    .bind(recipient)
    .bind(upto.at)
    .bind(upto.id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(own + posts as u64)
}

/// The channels `user` follows whose new videos are posts (more than `fan_in_above`
/// subscribers now, or posts already), unless they turned new videos off; at most 200
/// (the live topics one `notificationAdded` listens to).
pub async fn followed_large_channels(
    pool: &PgPool,
    user: Uuid,
    fan_in_above: i64,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar(
        "SELECT f.channel_id FROM follows f
         LEFT JOIN channels c ON c.id = f.channel_id
         WHERE f.follower_id = $1
           AND (c.subscriber_count > $2
                OR EXISTS (SELECT 1 FROM notification_posts p WHERE p.channel_id = f.channel_id))
           AND NOT EXISTS (SELECT 1 FROM notification_settings s
                           WHERE s.user_id = $1 AND s.kind = $3 AND s.delivery = 'off')
         LIMIT 200",
    )
    .bind(user)
    .bind(fan_in_above)
    .bind(Kind::NewVideo.as_str())
    .fetch_all(pool)
    .await
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
