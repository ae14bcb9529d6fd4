//! Moving each sorted set's landmark forward before its increments outgrow f64.
//!
//! Every `REBASE_CHECK_SECS` the landmarks are listed; a set whose `t0` is more than
//! `REBASE_AFTER_HALF_LIVES` half-lives old is rebased to now by one atomic script
//! (crate::store): every score times `exp(-λ (now - t0))`, members that decayed below
//! `TRENDING_PRUNE_BELOW` removed, the new `t0` stored. A batch computed against the old
//! landmark is refused by the ingest script and recomputed, so increments and rebases
//! never mix. Sets are rebased one at a time, so Redis is never blocked for long.

use std::sync::Arc;

use platform::{
    Shutdown,
    background::{FirstTick, every},
};
use time::OffsetDateTime;

use crate::{
    ingest::Ingestor,
    scoring::{self, format_f64},
};

pub fn spawn(ingestor: Arc<Ingestor>, shutdown: &Shutdown) {
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        let interval = ingestor.ingest.rebase_check;
        every(interval, FirstTick::AfterInterval, &shutdown, || async {
            match rebase_due(&ingestor).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sets = n, "rebased"),
                Err(e) => tracing::warn!(error = %e, "rebase: will retry"),
            }
        })
        .await;
    });
}

/// Rebases every set that is due; returns how many were.
pub async fn rebase_due(ingestor: &Ingestor) -> Result<usize, crate::Error> {
    let store = &ingestor.store;
    let scoring = &ingestor.scoring;
    let now = scoring::event_time(OffsetDateTime::now_utc());
    let now_text = format_f64(now);
    let mut rebased = 0;
    for (window, key, t0_text) in store.all_landmarks().await? {
        let Ok(t0) = t0_text.parse::<f64>() else {
            continue;
        };
        let half_life = scoring.half_lives.of(window);
        if (now - t0) / half_life <= ingestor.ingest.rebase_after_half_lives {
            continue;
        }
        let factor = scoring::rebase_factor(t0, now, scoring.lambda(window));
        if store
            .rebase(
                window,
                &key,
                &t0_text,
                &now_text,
                factor,
                ingestor.ingest.prune_below,
            )
            .await?
        {
            ingestor.landmarks.set(&key, &now_text);
            rebased += 1;
            metrics::counter!("ranker_rebases_total").increment(1);
        }
    }
    Ok(rebased)
}
