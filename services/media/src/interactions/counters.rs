//! View and watch-time counters of the catalogue, from the ranker's `counters` reports.
//!
//! The ranker decides which views count (dedupe per viewer per 30 minutes) and reports
//! the accepted ones per video, each report under a stable event id. A report is applied
//! in one transaction together with its id in `processed_events`, so a re-published
//! report changes nothing.

use events::{
    consumer::{self, Outcome},
    interaction::{ViewCounters, counters_routing_key},
    topology::INTERACTIONS,
};
use sqlx::PgPool;
use uuid::Uuid;

use crate::Context;

/// Consumes media's `media.counters` queue until shutdown.
pub fn spawn(ctx: &Context, shutdown: &platform::Shutdown) {
    let spec = ctx.config.queue("media.counters").bind(
        INTERACTIONS,
        &counters_routing_key(&ctx.config.queue_prefix),
    );
    let pool = ctx.db.pool().clone();
    let stats = ctx.realtime.stats.clone();
    consumer::spawn(ctx.rabbit.clone(), spec, 32, shutdown, move |delivery| {
        let pool = pool.clone();
        let stats = stats.clone();
        async move {
            let envelope = match consumer::decode::<ViewCounters>(&delivery.data) {
                Ok(envelope) => envelope,
                Err(e) => {
                    tracing::error!(error = %e, "undecodable counters report");
                    return Outcome::Reject;
                }
            };
            match apply(&pool, envelope.id, &envelope.data).await {
                Ok(()) => {
                    // `videoStats` subscribers see the new view counts.
                    for video in envelope.data.videos.iter().filter(|v| v.views > 0) {
                        stats.touch(video.video_id);
                    }
                    Outcome::Ack
                }
                Err(e) => {
                    tracing::warn!(error = %e, "counters report not applied; will retry");
                    Outcome::Retry
                }
            }
        }
    });
}

/// Applies one report once.
pub async fn apply(pool: &PgPool, id: Uuid, report: &ViewCounters) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    let first_time =
        sqlx::query("INSERT INTO processed_events (id) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
    if first_time {
        let ids: Vec<Uuid> = report.videos.iter().map(|v| v.video_id).collect();
        let views: Vec<i64> = report.videos.iter().map(|v| v.views).collect();
        let watch: Vec<i64> = report.videos.iter().map(|v| v.watch_seconds).collect();
        // In id order, so concurrent reports lock rows in the same order.
        sqlx::query(
            "UPDATE videos v SET views_count = v.views_count + c.views,
                                 watch_seconds = v.watch_seconds + c.watch
             FROM (SELECT * FROM unnest($1::uuid[], $2::int8[], $3::int8[]) AS c(id, views, watch)
                   ORDER BY id) c
             WHERE v.id = c.id",
        )
        .bind(&ids)
        .bind(&views)
        .bind(&watch)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}
