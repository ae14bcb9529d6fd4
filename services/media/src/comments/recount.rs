//! The comment-counter repair sweep.
//!
//! Every `COMMENT_RECOUNT_INTERVAL_SECS`, walk all videos in id order, 500 at a time, count
//! their live comments in MongoDB with one aggregation per batch, and correct the counters
//! that differ. The correction is conditional on the counter still holding the value read
//! before counting, so a comment added during the sweep is not overwritten by a stale
//! count; the few left off by such races are fixed by the next sweep.

use std::time::Duration;

use platform::{
    Shutdown,
    background::{FirstTick, every},
};
use uuid::Uuid;

use crate::Context;

const BATCH: i64 = 500;

pub fn spawn(ctx: Context, interval: Duration, shutdown: &Shutdown) {
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        every(interval, FirstTick::AfterInterval, &shutdown, || async {
            match sweep(&ctx).await {
                Ok(0) => {}
                Ok(fixed) => tracing::info!(fixed, "comment counters repaired"),
                Err(e) => tracing::warn!(error = %e, "comment recount failed; next sweep retries"),
            }
        })
        .await;
    });
}

/// One pass over every video; returns how many counters it corrected.
pub async fn sweep(ctx: &Context) -> anyhow::Result<u64> {
    let pool = ctx.db.pool();
    let mut after = Uuid::nil();
    let mut fixed = 0;
    loop {
        let batch: Vec<(Uuid, i64)> = sqlx::query_as(
            "SELECT id, comments_count FROM videos WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(BATCH)
        .fetch_all(pool)
        .await?;
        let Some(last) = batch.last() else {
            metrics::counter!("media_comment_counters_repaired_total").increment(fixed);
            return Ok(fixed);
        };
        after = last.0;
        let ids: Vec<Uuid> = batch.iter().map(|(id, _)| *id).collect();
        let truth = ctx.comments.live_counts(&ids).await?;
        for (id, counted) in batch {
            let real = truth.get(&id).copied().unwrap_or(0);
            if real != counted {
                let done = sqlx::query(
                    "UPDATE videos SET comments_count = $2 WHERE id = $1 AND comments_count = $3",
                )
                .bind(id)
                .bind(real)
                .bind(counted)
                .execute(pool)
                .await?;
                fixed += done.rows_affected();
            }
        }
    }
}
