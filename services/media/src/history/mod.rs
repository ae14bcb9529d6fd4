//! Watch history and resume: where each signed-in viewer is in each video they watched.
//!
//! * `recordView` puts the video at the top of the viewer's history; `recordWatchTime`
//!   with `position` also remembers where they are. A position past
//!   [`FINISHED_FRACTION`] of the video, or within [`END_SECONDS`] of the end of one of
//!   at least [`CREDITS_FROM`] (the credits), counts as finished:
//!   the video leaves `continueWatching`, and `recommended` leaves it out. Watching a
//!   finished video again from earlier on makes it unfinished again.
//! * `history` and `continueWatching` list newest first, leaving out what the viewer may
//!   no longer see (made private by its owner, deleted); the rows stay, so a video made
//!   public again comes back.
//! * `removeFromHistory`, `clearHistory`, and `setHistoryPaused` (while paused nothing is
//!   recorded; views and watch time still count for the video).
//!
//! One row per (viewer, video), updated in place: a player reporting every few seconds
//! costs one upsert each, and the history's size is the number of videos watched.

use async_graphql::{Context, ID, Object, Result, connection::Connection};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    catalogue::{Video, VideoRow, parse_id},
    context::{AppContext, count_query, viewer},
    cursor::{Cursor, Page},
    error::Error,
};

/// Past this fraction of the duration a video is finished...
pub const FINISHED_FRACTION: f64 = 0.95;
/// ...and so it is within this many seconds of its end (credits)...
pub const END_SECONDS: f64 = 10.0;
/// ...for a video at least this long (in a short clip, 10 s is most of it).
pub const CREDITS_FROM: f64 = 120.0;
/// The largest position accepted (a week), for videos whose duration is not known yet.
pub const MAX_POSITION: f64 = 7.0 * 24.0 * 3600.0;

/// Checks a reported position (seconds from the start).
pub fn check_position(position: f64) -> Result<f64, Error> {
    if position.is_finite() && (0.0..=MAX_POSITION).contains(&position) {
        Ok(position)
    } else {
        Err(Error::bad_input(format!(
            "position must be 0–{MAX_POSITION} seconds"
        )))
    }
}

/// Whether `position` is the end of a video lasting `duration` seconds.
fn finished(position: f64, duration: f64) -> bool {
    position >= duration * FINISHED_FRACTION
        || (duration >= CREDITS_FROM && duration - position <= END_SECONDS)
}

/// Records that `user` watched `video`, at `position` if given (else the position kept
/// is unchanged). Nothing is recorded while the user's history is paused.
pub async fn record(
    pool: &PgPool,
    user: Uuid,
    video: &VideoRow,
    position: Option<f64>,
) -> sqlx::Result<()> {
    let duration = video.duration_seconds.filter(|d| *d > 0.0);
    let position = position.map(|p| duration.map_or(p, |d| p.min(d)));
    let finished = match (position, duration) {
        (Some(p), Some(d)) => finished(p, d),
        _ => false,
    };
    sqlx::query(
        "INSERT INTO watch_history (user_id, video_id, position_seconds, finished)
         SELECT $1, $2, COALESCE($3, 0), $4
         WHERE NOT EXISTS (SELECT 1 FROM history_paused WHERE user_id = $1)
         ON CONFLICT (user_id, video_id) DO UPDATE SET
             watched_at = clock_timestamp(),
             position_seconds = COALESCE($3, watch_history.position_seconds),
             finished = CASE WHEN $3 IS NULL THEN watch_history.finished ELSE $4 END",
    )
    .bind(user)
    .bind(video.id)
    .bind(position)
    .bind(finished)
    .execute(pool)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct EntryRow {
    video_id: Uuid,
    position_seconds: f64,
    finished: bool,
    watched_at: OffsetDateTime,
}

/// A video in the viewer's history.
pub struct HistoryEntry {
    row: EntryRow,
    video: Video,
}

#[Object]
impl HistoryEntry {
    async fn video(&self) -> &Video {
        &self.video
    }

    /// Where the viewer was, in seconds from the start: resume from here.
    async fn position(&self) -> f64 {
        self.row.position_seconds
    }

    /// Watched to the end.
    async fn finished(&self) -> bool {
        self.row.finished
    }

    async fn watched_at(&self) -> OffsetDateTime {
        self.row.watched_at
    }
}

/// A page of `user`'s history (only unfinished, started videos when `unfinished`),
/// videos they may still see, newest first.
async fn entries(
    app: &AppContext,
    user: Uuid,
    unfinished: bool,
    page: Page,
) -> Result<Connection<Cursor, HistoryEntry>> {
    let only = if unfinished {
        "AND NOT h.finished AND h.position_seconds > 0"
    } else {
        ""
    };
    count_query("postgres", "watch_history");
    let rows: Vec<EntryRow> = sqlx::query_as(&format!(
        "SELECT h.video_id, h.position_seconds, h.finished, h.watched_at
         FROM watch_history h
         WHERE h.user_id = $1 {only}
           AND ($2::timestamptz IS NULL OR (h.watched_at, h.video_id) < ($2, $3))
           AND EXISTS (SELECT 1 FROM videos v WHERE v.id = h.video_id AND v.deleted_at IS NULL
                       AND (v.owner_id = $1 OR (v.status = 'ready' AND v.visibility <> 'private'
                                                AND v.hidden_at IS NULL AND v.owner_banned_at IS NULL)))
         ORDER BY h.watched_at DESC, h.video_id DESC
         LIMIT $4"
    ))
    .bind(user)
    .bind(page.after.map(|c| c.at))
    .bind(page.after.map(|c| c.id))
    .bind(page.limit())
    .fetch_all(app.db.pool())
    .await
    .map_err(Error::from)?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.video_id).collect();
    let mut videos = app.videos.load_many(ids).await?;
    let items = rows
        .into_iter()
        .filter_map(|row| {
            let video = videos.remove(&row.video_id)?;
            Some(HistoryEntry {
                video: video.into(),
                row,
            })
        })
        .collect();
    Ok(page.connection(items, |e: &HistoryEntry| {
        Cursor::new(e.row.watched_at, e.row.video_id)
    }))
}

#[derive(Default)]
pub struct HistoryQuery;

#[Object]
impl HistoryQuery {
    /// What the viewer watched, most recent first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn history(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<Cursor, HistoryEntry>> {
        let me = viewer(ctx).require()?;
        let app = AppContext::get(ctx);
        let page = Page::parse(first, after, app.config.limits.max_page)?;
        entries(app, me, false, page).await
    }

    /// Videos the viewer started and did not finish, most recent first, with where they
    /// stopped.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn continue_watching(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<Cursor, HistoryEntry>> {
        let me = viewer(ctx).require()?;
        let app = AppContext::get(ctx);
        let page = Page::parse(first, after, app.config.limits.max_page)?;
        entries(app, me, true, page).await
    }

    /// Whether the viewer paused their history.
    async fn history_paused(&self, ctx: &Context<'_>) -> Result<bool> {
        let me = viewer(ctx).require()?;
        let app = AppContext::get(ctx);
        let paused: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM history_paused WHERE user_id = $1)")
                .bind(me)
                .fetch_one(app.db.pool())
                .await
                .map_err(Error::from)?;
        Ok(paused)
    }
}

#[derive(Default)]
pub struct HistoryMutation;

#[Object]
impl HistoryMutation {
    /// Removes one video from the viewer's history; false if it was not there.
    async fn remove_from_history(&self, ctx: &Context<'_>, video_id: ID) -> Result<bool> {
        let me = viewer(ctx).require()?;
        let video = parse_id(&video_id)?;
        let app = AppContext::get(ctx);
        let removed = sqlx::query("DELETE FROM watch_history WHERE user_id = $1 AND video_id = $2")
            .bind(me)
            .bind(video)
            .execute(app.db.pool())
            .await
            .map_err(Error::from)?
            .rows_affected();
        Ok(removed == 1)
    }

    /// Empties the viewer's history; returns how many videos it held.
    async fn clear_history(&self, ctx: &Context<'_>) -> Result<i64> {
        let me = viewer(ctx).require()?;
        let app = AppContext::get(ctx);
        let removed = sqlx::query("DELETE FROM watch_history WHERE user_id = $1")
            .bind(me)
            .execute(app.db.pool())
            .await
            .map_err(Error::from)?
            .rows_affected();
        Ok(removed as i64)
    }

    /// Pauses (nothing is recorded until resumed) or resumes the viewer's history.
    /// Returns whether it is paused.
    async fn set_history_paused(&self, ctx: &Context<'_>, paused: bool) -> Result<bool> {
        let me = viewer(ctx).require()?;
        let app = AppContext::get(ctx);
        if paused {
            sqlx::query("INSERT INTO history_paused (user_id) VALUES ($1) ON CONFLICT DO NOTHING")
        } else {
            sqlx::query("DELETE FROM history_paused WHERE user_id = $1")
        }
        .bind(me)
        .execute(app.db.pool())
        .await
        .map_err(Error::from)?;
        Ok(paused)
    }
}

#[cfg(test)]
mod tests {
    use super::finished;

    #[test]
    fn the_end_is_the_last_twentieth_or_the_credits_of_a_long_video() {
        // A 10-minute film: the credits count as the end, 60 % does not.
        assert!(finished(591.0, 600.0));
        assert!(!finished(360.0, 600.0));
        // A 12-second clip: only its last twentieth.
        assert!(!finished(4.0, 12.5));
        assert!(finished(12.0, 12.5));
        assert!(finished(95.0, 100.0) && !finished(94.0, 100.0));
    }
}
