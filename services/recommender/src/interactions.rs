//! Interactions → users' signals (see [`crate::taste`]).
//!
//! The `recommender.interactions` queue is bound to every interaction under
//! `QUEUE_PREFIX`. Only signed-in viewers (`user:{uuid}`) have a taste; anonymous
//! sessions are skipped. A batch is applied in one stamped transaction (each event once,
//! by id; crate::changes) and acknowledged with one ack; every replica's follower then
//! applies the new signals to its memory (crate::follow).
//!
//! A new score is the stored one plus the event's weight, so the stored one is read in
//! the transaction, not from memory: another replica may have changed it a moment ago
//! and this replica's follower not have seen it yet. The write lock every stamped
//! transaction takes makes the read-modify-write safe across replicas.

use std::collections::HashMap;

#[cfg(test)]
use events::interaction::ViewerKey;
use events::{
    consumer::{self, BatchOutcome},
    interaction::Interaction,
    pack,
};
use lapin::message::Delivery;
use sqlx::PgPool;
use time::OffsetDateTime;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::{
    Context, changes,
    config::TasteConfig,
    taste::{self, Score},
};

pub fn spawn(ctx: &Context, shutdown: &platform::Shutdown) {
    let pool = ctx.db.pool().clone();
    let taste = ctx.config.taste;
    let wake = ctx.follow_wake.clone();
    consumer::spawn_batched(
        ctx.rabbit.clone(),
        ctx.config.interactions_queue(),
        ctx.config.batching(),
        shutdown,
        move |batch| {
            let (pool, wake) = (pool.clone(), wake.clone());
            async move { handle(&pool, &wake, &taste, batch).await }
        },
    );
}

/// The user behind a viewer key as sent, if it is a signed-in one (decoded events carry
/// a parsed key: [`ViewerKey::user_id`]).
#[cfg(test)]
fn user_of(viewer: &str) -> Option<Uuid> {
    viewer.parse::<ViewerKey>().ok()?.user_id()
}

async fn handle(
    pool: &PgPool,
    wake: &Notify,
    config: &TasteConfig,
    batch: Vec<Delivery>,
) -> BatchOutcome {
    // Media publishes interactions in packs (events::pack).
    let unpacked = pack::unpack::<Interaction>(&batch);
    let (reject, decoded) = (unpacked.reject, unpacked.events);
    let lambda = taste::lambda(config);
    let outcome = async {
        let changes::Stamped { mut tx, stamp } = changes::begin(pool).await?;
        // The stored signals of every (user, video) the batch touches.
        let keys: Vec<(Uuid, Uuid)> = decoded
            .iter()
            .filter_map(|e| Some((e.data.viewer.user_id()?, e.data.video_id)))
            .collect();
        let (users, videos): (Vec<Uuid>, Vec<Uuid>) = keys.into_iter().unzip();
        let stored: Vec<(Uuid, Uuid, f64, OffsetDateTime, bool)> = sqlx::query_as(
            "SELECT s.user_id, s.video_id, s.score, s.score_at, s.watched
             FROM user_signals s
             JOIN unnest($1::uuid[], $2::uuid[]) AS k(user_id, video_id)
               ON s.user_id = k.user_id AND s.video_id = k.video_id",
        )
        .bind(&users)
        .bind(&videos)
        .fetch_all(&mut *tx)
        .await?;
        let stored: HashMap<(Uuid, Uuid), (Score, bool)> = stored
            .into_iter()
            .map(|(user, video, value, at, watched)| {
                let score = Score {
                    value,
                    at: taste::unix(at),
                };
                ((user, video), (score, watched))
            })
            .collect();
        // The batch's new signals, starting from what is stored.
        let mut updated: HashMap<(Uuid, Uuid), (Score, bool)> = HashMap::new();
        for envelope in &decoded {
            let Some(user) = envelope.data.viewer.user_id() else {
                continue;
            };
            let Some(effect) = taste::effect(&envelope.data.action, envelope.occurred_at, config)
            else {
                continue;
            };
            let inserted =
                sqlx::query("INSERT INTO processed_events (id) VALUES ($1) ON CONFLICT DO NOTHING")
                    .bind(envelope.id)
                    .execute(&mut *tx)
                    .await?;
            if inserted.rows_affected() == 0 {
                continue; // already applied
            }
            let key = (user, envelope.data.video_id);
            let (score, watched) = updated
                .get(&key)
                .copied()
                .or_else(|| stored.get(&key).copied())
                .unwrap_or_default();
            let score = if effect.weight != 0.0 {
                score.add(effect.weight, effect.at, lambda)
            } else {
                score
            };
            updated.insert(key, (score, watched || effect.watched));
        }
        for ((user, video), (score, watched)) in &updated {
            sqlx::query(
                "INSERT INTO user_signals (user_id, video_id, score, score_at, watched, change_seq)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (user_id, video_id) DO UPDATE SET
                     score = EXCLUDED.score, score_at = EXCLUDED.score_at,
                     watched = user_signals.watched OR EXCLUDED.watched,
                     change_seq = EXCLUDED.change_seq",
            )
            .bind(user)
            .bind(video)
            .bind(score.value)
            .bind(to_time(score.at))
            .bind(watched)
            .bind(stamp)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>(updated)
    }
    .await;
    match outcome {
        Ok(updated) => {
            if !updated.is_empty() {
                wake.notify_one();
            }
            metrics::counter!("recommender_interactions_total").increment(batch.len() as u64);
            BatchOutcome::Ack { reject }
        }
        Err(e) => {
            tracing::warn!(error = %e, "interactions not applied; will retry");
            BatchOutcome::Retry
        }
    }
}

/// Unix seconds back to a timestamp (microsecond precision, as PostgreSQL stores it).
pub fn to_time(unix: f64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos((unix * 1e6).round() as i128 * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_signed_in_viewers_have_a_taste() {
        let id = Uuid::now_v7();
        assert_eq!(user_of(&format!("user:{id}")), Some(id));
        assert_eq!(user_of("session:abcdefgh"), None);
        assert_eq!(user_of("user:nope"), None);
    }

    #[test]
    fn times_round_trip_to_the_microsecond() {
        let t = 1_790_000_000.123_456;
        assert!((taste::unix(to_time(t)) - t).abs() < 1e-6);
    }
}
