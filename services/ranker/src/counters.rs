//! Accepted views and watch time → the catalogue's counters (owned by media).
//!
//! The ingest script adds each accepted view and watch time to a pending hash in the same
//! atomic step as its scores. Every `COUNTER_FLUSH_MILLIS` this task takes the pending
//! hash under a report id (atomically renamed aside), publishes it as one
//! `ViewCounters` event with that id and publisher confirms, and only then forgets it. A
//! crash in between re-publishes the same report under the same id, which media applies
//! once (it records event ids), so every accepted view is counted exactly once.

use std::{collections::BTreeMap, sync::Arc};

use events::{
    Envelope, Event, Publisher,
    interaction::{VideoCounts, ViewCounters, counters_routing_key},
};
use platform::{
    Shutdown,
    background::{FirstTick, every},
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::store::Store;

pub fn spawn(
    store: Store,
    publisher: Arc<Publisher>,
    queue_prefix: String,
    interval: std::time::Duration,
    shutdown: &Shutdown,
) {
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        every(interval, FirstTick::AfterInterval, &shutdown, || async {
            if let Err(e) = flush(&store, &publisher, &queue_prefix).await {
                tracing::warn!(error = %e, "view counters: will retry");
            }
        })
        .await;
    });
}

/// Publishes the pending counters, if any.
pub async fn flush(
    store: &Store,
    publisher: &Publisher,
    queue_prefix: &str,
) -> Result<(), crate::Error> {
    let Some((id, fields)) = store.take_counters(&Uuid::now_v7().to_string()).await? else {
        return Ok(());
    };
    let mut videos: BTreeMap<Uuid, VideoCounts> = BTreeMap::new();
    for (field, value) in fields {
        let Some((kind, video)) = field.split_once(':') else {
            continue;
        };
        let Ok(video_id) = Uuid::parse_str(video) else {
            continue;
        };
        let entry = videos.entry(video_id).or_insert(VideoCounts {
            video_id,
            views: 0,
            watch_seconds: 0,
        });
        match kind {
            "v" => entry.views += value,
            "w" => entry.watch_seconds += value,
            _ => {}
        }
    }
    let envelope = Envelope {
        id: Uuid::parse_str(&id).unwrap_or_else(|_| Uuid::now_v7()),
        kind: ViewCounters::TYPE.to_owned(),
        version: ViewCounters::VERSION,
        occurred_at: OffsetDateTime::now_utc(),
        data: ViewCounters {
            videos: videos.into_values().collect(),
        },
    };
    let payload = serde_json::to_vec(&envelope).map_err(events::Error::from)?;
    publisher
        .publish_raw(
            ViewCounters::EXCHANGE,
            &counters_routing_key(queue_prefix),
            &id,
            &payload,
        )
        .await?;
    store.done_counters(&id).await?;
    Ok(())
}
