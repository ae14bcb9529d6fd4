//! Tables stay bounded: rows a service no longer needs (expired tokens, old dedupe ids)
//! are deleted on a schedule, once their retention has passed.
//!
//! Invariants every [`Prune`] keeps:
//!
//! * **Bounded batches.** Each statement deletes at most `PRUNE_BATCH_SIZE` rows, chosen
//!   by `ctid` in a sub-select (`DELETE … WHERE ctid IN (SELECT ctid … LIMIT n)`), and
//!   commits on its own: a backlog of millions becomes many short transactions, so no
//!   lock is held long and writers of the same table are never stalled behind a prune.
//!   A row updated between the sub-select and the delete has a new `ctid` and survives.
//! * **Indexed.** The sub-select's predicate is an age column with an index (each
//!   service's migrations), so finding a batch does not scan the table.
//! * **Safe on every replica at once.** Two replicas pruning together delete disjoint or
//!   identical rows; either way only rows past their retention go.
//! * **Never in the way of shutdown for long.** Shutdown is noticed between batches.

use std::time::Duration;

use sqlx::PgPool;

use crate::{
    Shutdown,
    background::{FirstTick, every},
    config::{self, ConfigError, var},
    postgres::Postgres,
};

/// How often and how much the pruning of a service runs.
#[derive(Debug, Clone, Copy)]
pub struct PruneConfig {
    /// `PRUNE_INTERVAL_SECS`: pause between two rounds (the first runs at start).
    pub interval: Duration,
    /// `PRUNE_BATCH_SIZE`: most rows one statement deletes.
    pub batch: i64,
}

impl Default for PruneConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(3600),
            batch: 1000,
        }
    }
}

impl PruneConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let batch: i64 = var("PRUNE_BATCH_SIZE", "1000")?;
        if batch < 1 {
            return Err(ConfigError {
                name: "PRUNE_BATCH_SIZE".into(),
                value: batch.to_string(),
                reason: "must be at least 1".into(),
            });
        }
        Ok(Self {
            interval: config::secs("PRUNE_INTERVAL_SECS", "3600")?,
            batch,
        })
    }
}

/// One kind of row to prune.
#[derive(Debug, Clone)]
pub struct Prune {
    /// For logs: what goes ("expired refresh tokens").
    pub what: &'static str,
    /// `DELETE FROM t WHERE ctid IN (SELECT ctid FROM t WHERE <age column> < now() -
    /// $1 * interval '1 second' LIMIT $2)`: `$1` is `retention` in seconds, `$2` the batch.
    pub sql: &'static str,
    /// How long a row is kept after it stopped being needed.
    pub retention: Duration,
}

impl Prune {
    /// Deletes every row past its retention, a batch at a time, until a batch comes back
    /// short or shutdown is triggered. Returns how many rows went.
    pub async fn run(
        &self,
        pool: &PgPool,
        batch: i64,
        shutdown: &Shutdown,
    ) -> Result<u64, sqlx::Error> {
        let mut total = 0;
        loop {
            let deleted = sqlx::query(self.sql)
                .bind(self.retention.as_secs_f64())
                .bind(batch)
                .execute(pool)
                .await?
                .rows_affected();
            total += deleted;
            if deleted < batch as u64 || shutdown.is_triggered() {
                return Ok(total);
            }
        }
    }
}

/// Runs `prunes` against `db` once it is migrated, then every `config.interval`, until
/// shutdown. Failures (the database is down) are logged and retried next round.
pub fn spawn(db: Postgres, prunes: Vec<Prune>, config: PruneConfig, shutdown: &Shutdown) {
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        // Quietly: the database's own set-up task reports why it is not ready yet.
        let stop = shutdown.triggered();
        tokio::pin!(stop);
        while db.migrated().is_err() {
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
        let pool = db.pool().clone();
        every(config.interval, FirstTick::Now, &shutdown, || async {
            for prune in &prunes {
                match prune.run(&pool, config.batch, &shutdown).await {
                    Ok(0) => {}
                    Ok(rows) => tracing::info!(rows, what = prune.what, "pruned"),
                    Err(error) => {
                        tracing::warn!(%error, what = prune.what, "prune failed; next round retries")
                    }
                }
            }
        })
        .await;
    });
}
