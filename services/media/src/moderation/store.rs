//! Reports, decisions and the audit log in PostgreSQL (migrations/0010_moderation.sql).

use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::cursor::Page;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReportRow {
    pub id: Uuid,
    pub reporter_id: Uuid,
    pub target_kind: String,
    pub target_id: String,
    pub reason: String,
    pub details: String,
    pub state: String,
    pub created_at: OffsetDateTime,
    pub closed_at: Option<OffsetDateTime>,
}

const REPORT: &str =
    "id, reporter_id, target_kind, target_id, reason, details, state, created_at, closed_at";

/// Files a report, or returns the reporter's open report on the same target unchanged
/// (one open report per reporter and target; the partial unique index decides races).
pub async fn file_report(
    pool: &PgPool,
    reporter: Uuid,
    target_kind: &str,
    target_id: &str,
    reason: &str,
    details: &str,
) -> sqlx::Result<ReportRow> {
    let inserted: Option<ReportRow> = sqlx::query_as(&format!(
        "INSERT INTO reports (id, reporter_id, target_kind, target_id, reason, details)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (reporter_id, target_kind, target_id) WHERE state = 'open' DO NOTHING
         RETURNING {REPORT}"
    ))
    .bind(Uuid::now_v7())
    .bind(reporter)
    .bind(target_kind)
    .bind(target_id)
    .bind(reason)
    .bind(details)
    .fetch_optional(pool)
    .await?;
    match inserted {
        Some(row) => Ok(row),
        None => {
            sqlx::query_as(&format!(
                "SELECT {REPORT} FROM reports
                 WHERE reporter_id = $1 AND target_kind = $2 AND target_id = $3 AND state = 'open'"
            ))
            .bind(reporter)
            .bind(target_kind)
            .bind(target_id)
            .fetch_one(pool)
            .await
        }
    }
}

/// The queue: reports in `state`, oldest first, optionally of one kind of target and one
/// reason.
pub async fn queue(
    pool: &PgPool,
    state: &str,
    target_kind: Option<&str>,
    reason: Option<&str>,
    page: Page,
) -> sqlx::Result<Vec<ReportRow>> {
    sqlx::query_as(&format!(
        "SELECT {REPORT} FROM reports
         WHERE state = $1 AND ($2::text IS NULL OR target_kind = $2)
           AND ($3::text IS NULL OR reason = $3) AND ($4::uuid IS NULL OR id > $4)
         ORDER BY id LIMIT $5"
    ))
    .bind(state)
    .bind(target_kind)
    .bind(reason)
    .bind(page.after.map(|c| c.id))
    .bind(page.limit())
    .fetch_all(pool)
    .await
}

pub async fn report(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<ReportRow>> {
    sqlx::query_as(&format!(
        "SELECT {REPORT} FROM reports WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Closes every open report on a target as `state` (a decision answers them all).
pub async fn close_reports_on(
    conn: &mut PgConnection,
    target_kind: &str,
    target_id: &str,
    state: &str,
    by: Uuid,
) -> sqlx::Result<u64> {
    let closed = sqlx::query(
        "UPDATE reports SET state = $3, closed_at = now(), closed_by = $4
         WHERE target_kind = $1 AND target_id = $2 AND state = 'open'",
    )
    .bind(target_kind)
    .bind(target_id)
    .bind(state)
    .bind(by)
    .execute(conn)
    .await?;
    Ok(closed.rows_affected())
}

/// Closes one open report; `false` if it is not open (or does not exist).
pub async fn close_report(
    conn: &mut PgConnection,
    id: Uuid,
    state: &str,
    by: Uuid,
) -> sqlx::Result<bool> {
    let closed = sqlx::query(
        "UPDATE reports SET state = $2, closed_at = now(), closed_by = $3
         WHERE id = $1 AND state = 'open'",
    )
    .bind(id)
    .bind(state)
    .bind(by)
    .execute(conn)
    .await?;
    Ok(closed.rows_affected() == 1)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LogRow {
    pub id: Uuid,
    pub at: OffsetDateTime,
    pub moderator_id: Uuid,
    pub action: String,
    pub target_kind: String,
    pub target_id: String,
    pub reason: String,
    pub report_id: Option<Uuid>,
}

/// What a moderator did, for the log.
pub struct Entry<'a> {
    pub moderator: Uuid,
    pub action: &'a str,
    pub target_kind: &'a str,
    pub target_id: &'a str,
    pub reason: &'a str,
    pub report: Option<Uuid>,
}

const LOG: &str = "id, at, moderator_id, action, target_kind, target_id, reason, report_id";

/// Appends to the audit log (in the decision's transaction: the log has every decision
/// that took effect, and only those).
pub async fn log(conn: &mut PgConnection, entry: &Entry<'_>) -> sqlx::Result<LogRow> {
    sqlx::query_as(&format!(
        "INSERT INTO moderation_log (id, moderator_id, action, target_kind, target_id, reason, report_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {LOG}"
    ))
    .bind(Uuid::now_v7())
    .bind(entry.moderator)
    .bind(entry.action)
    .bind(entry.target_kind)
    .bind(entry.target_id)
    .bind(entry.reason)
    .bind(entry.report)
    .fetch_one(conn)
    .await
}

/// The audit log, newest first.
pub async fn log_page(pool: &PgPool, page: Page) -> sqlx::Result<Vec<LogRow>> {
    sqlx::query_as(&format!(
        "SELECT {LOG} FROM moderation_log WHERE ($1::uuid IS NULL OR id < $1)
         ORDER BY id DESC LIMIT $2"
    ))
    .bind(page.after.map(|c| c.id))
    .bind(page.limit())
    .fetch_all(pool)
    .await
}

/// What [`set_hidden`] changed.
#[derive(sqlx::FromRow)]
pub struct HiddenChange {
    pub owner_id: Uuid,
    /// The decision's revision.
    pub revision: i64,
    /// Whether the video was hidden before the decision.
    pub was_hidden: bool,
}

/// Hides (or unhides) a video; what changed, or `None` when there is no such video (or it
/// is deleted).
pub async fn set_hidden(
    conn: &mut PgConnection,
    video: Uuid,
    hidden: Option<&str>,
) -> sqlx::Result<Option<HiddenChange>> {
    sqlx::query_as(
        "WITH before AS (
             SELECT id, hidden_at FROM videos WHERE id = $1 AND deleted_at IS NULL FOR UPDATE
         )
         UPDATE videos v SET hidden_at = CASE WHEN $2::text IS NULL THEN NULL ELSE now() END,
                hidden_reason = $2, moderation_revision = v.moderation_revision + 1
         FROM before WHERE v.id = before.id
         RETURNING v.owner_id, v.moderation_revision AS revision,
                   before.hidden_at IS NOT NULL AS was_hidden",
    )
    .bind(video)
    .bind(hidden)
    .fetch_optional(conn)
    .await
}

/// Bans (or unbans) a user: the user's row and each of their videos' `owner_banned_at`.
/// Returns the decision's revision and the user's videos.
pub async fn set_banned(
    conn: &mut PgConnection,
    user: Uuid,
    banned: Option<&str>,
) -> sqlx::Result<(i64, Vec<Uuid>)> {
    // The catalogue consumer holds this lock (shared) while it writes a video of the
    // owner's (crate::erasure::lock_owner_shared): a video announced during the ban is
    // either updated below or, inserted after, marked by the insert trigger.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))")
        .bind(user)
        .execute(&mut *conn)
        .await?;
    let revision: i64 = sqlx::query_scalar(
        "INSERT INTO user_moderation (user_id, banned_at, reason, revision)
         VALUES ($1, CASE WHEN $2::text IS NULL THEN NULL ELSE now() END, $2, 1)
         ON CONFLICT (user_id) DO UPDATE
             SET banned_at = EXCLUDED.banned_at, reason = EXCLUDED.reason,
                 revision = user_moderation.revision + 1
         RETURNING revision",
    )
    .bind(user)
    .bind(banned)
    .fetch_one(&mut *conn)
    .await?;
    let videos: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE videos SET owner_banned_at = CASE WHEN $2 THEN now() ELSE NULL END
         WHERE owner_id = $1 AND deleted_at IS NULL RETURNING id",
    )
    .bind(user)
    .bind(banned.is_some())
    .fetch_all(conn)
    .await?;
    Ok((revision, videos))
}
