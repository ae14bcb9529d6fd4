//! Interactions → trending sorted sets, a batch at a time.
//!
//! A batch (up to `RANKER_BATCH_SIZE` deliveries) is decoded, each event's increments are
//! computed for every window × scope it belongs to against that sorted set's landmark, and
//! the whole batch goes to Redis as one atomic script (crate::store): duplicate ids and
//! repeated views are dropped there, inside the same atomic step that adds the scores.
//! Only then is the batch acknowledged, with one `multiple` ack.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Instant,
};

use events::{
    Envelope,
    consumer::{self, BatchOutcome},
    interaction::{Action, Interaction, Scope, Window, trending_key},
};
use lapin::message::Delivery;
use time::OffsetDateTime;

use crate::{
    Context,
    config::{Ingest, Scoring},
    scoring::{self, format_f64},
    store::{Applied, Prepared, Store},
};

/// How many times a batch is recomputed when landmarks moved under it (a rebase between
/// reading them and applying) before it is retried later.
const STALE_ATTEMPTS: usize = 5;
/// The landmark cache is dropped when it grows past this (it refills from Redis).
const LANDMARK_CACHE_MAX: usize = 200_000;

/// Landmarks (`t0`, as stored) of the sorted sets, shared with the rebaser.
#[derive(Clone, Default)]
pub struct Landmarks(Arc<Mutex<HashMap<String, String>>>);

impl Landmarks {
    pub fn set(&self, key: &str, t0: &str) {
        self.0.lock().unwrap().insert(key.to_owned(), t0.to_owned());
    }

    fn forget(&self, keys: &[String]) {
        let mut map = self.0.lock().unwrap();
        for key in keys {
            map.remove(key);
        }
    }

    /// The cached landmarks of `keys`; None where unknown.
    fn get(&self, keys: &[String]) -> Vec<Option<String>> {
        let map = self.0.lock().unwrap();
        keys.iter().map(|k| map.get(k).cloned()).collect()
    }

    fn fill(&self, pairs: impl IntoIterator<Item = (String, String)>) {
        let mut map = self.0.lock().unwrap();
        if map.len() > LANDMARK_CACHE_MAX {
            map.clear();
        }
        map.extend(pairs);
    }
}

pub struct Ingestor {
    pub store: Store,
    pub scoring: Scoring,
    pub ingest: Ingest,
    pub landmarks: Landmarks,
}

/// One decoded event and where it counts.
struct Decoded {
    id: String,
    event: Interaction,
    /// (window, key) per sorted set it adds to.
    targets: Vec<(Window, String)>,
    points: f64,
    at: f64,
}

pub fn spawn(
    ctx: &Context,
    ingestor: Arc<Ingestor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let spec = ctx.config.queue("ranker.interactions");
    let ingest = ctx.config.ingest;
    consumer::spawn_batched(
        ctx.rabbit.clone(),
        spec,
        ingest.batch_size,
        ingest.batch_wait,
        shutdown,
        move |batch| {
            let ingestor = ingestor.clone();
            async move { ingestor.handle(batch).await }
        },
    );
}

impl Ingestor {
    /// The sorted sets an interaction adds to.
    pub fn targets(&self, event: &Interaction) -> Vec<(Window, String)> {
        let mut scopes = vec![Scope::Global, Scope::Channel(event.owner_id)];
        if let Some(category) = event.category.as_deref().filter(|c| !c.is_empty()) {
            scopes.push(Scope::Category(category.to_owned()));
        }
        let prefix = &self.store.prefix;
        Window::ALL
            .iter()
            .flat_map(|&w| scopes.iter().map(move |s| (w, trending_key(prefix, w, s))))
            .collect()
    }

    pub async fn handle(&self, batch: Vec<Delivery>) -> BatchOutcome {
        let started = Instant::now();
        let mut reject = Vec::new();
        let mut decoded = Vec::with_capacity(batch.len());
        for (index, delivery) in batch.iter().enumerate() {
            match consumer::decode::<Interaction>(&delivery.data) {
                Ok(envelope) if envelope.kind == <Interaction as events::Event>::TYPE => {
                    decoded.push(self.decode(envelope));
                }
                Ok(envelope) => {
                    tracing::error!(kind = %envelope.kind, "not an interaction");
                    reject.push(index);
                }
                Err(e) => {
                    tracing::error!(error = %e, "undecodable interaction");
                    reject.push(index);
                }
            }
        }
        metrics::histogram!("ranker_batch_size").record(batch.len() as f64);
        if decoded.is_empty() {
            return BatchOutcome::Ack { reject };
        }
        match self.apply(&decoded).await {
            Ok(accepted) => {
                if accepted > 0 {
                    self.store.announce_trending_moved().await;
                }
                metrics::counter!("ranker_events_total", "outcome" => "accepted")
                    .increment(accepted as u64);
                metrics::counter!("ranker_events_total", "outcome" => "dropped")
                    .increment((decoded.len() as i64 - accepted).max(0) as u64);
                metrics::histogram!("ranker_batch_seconds").record(started.elapsed().as_secs_f64());
                BatchOutcome::Ack { reject }
            }
            Err(e) => {
                tracing::warn!(error = %e, "batch not applied; will retry");
                BatchOutcome::Retry
            }
        }
    }

    fn decode(&self, envelope: Envelope<Interaction>) -> Decoded {
        let (points, at) = scoring::points(
            &envelope.data.action,
            envelope.occurred_at,
            &self.scoring.weights,
        );
        Decoded {
            id: envelope.id.to_string(),
            targets: self.targets(&envelope.data),
            event: envelope.data,
            points,
            at,
        }
    }

    /// Applies decoded events; returns how many were accepted.
    async fn apply(&self, decoded: &[Decoded]) -> Result<i64, crate::Error> {
        // The batch's distinct sorted sets, in first-seen order.
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut keys: Vec<String> = Vec::new();
        let mut windows: Vec<Window> = Vec::new();
        for d in decoded {
            for (window, key) in &d.targets {
                index.entry(key.as_str()).or_insert_with(|| {
                    keys.push(key.clone());
                    windows.push(*window);
                    keys.len() - 1
                });
            }
        }
        let view_ttl = self.ingest.view_dedupe.as_secs();
        let event_ttl = self.ingest.event_dedupe.as_secs();
        for _ in 0..STALE_ATTEMPTS {
            let landmarks = self.landmarks_of(&keys).await?;
            let t0s: Vec<f64> = landmarks
                .iter()
                .map(|s| s.parse::<f64>().unwrap_or(0.0))
                .collect();
            let prepared: Vec<Prepared> = decoded
                .iter()
                .map(|d| {
                    let video = d.event.video_id.to_string();
                    let is_view = matches!(d.event.action, Action::View);
                    Prepared {
                        id: d.id.clone(),
                        view_key: if is_view {
                            format!("{}:{video}", d.event.viewer)
                        } else {
                            String::new()
                        },
                        views: i64::from(is_view),
                        watch_seconds: match d.event.action {
                            Action::Watch { seconds } => i64::from(seconds),
                            _ => 0,
                        },
                        increments: d
                            .targets
                            .iter()
                            .map(|(_, key)| {
                                let i = index[key.as_str()];
                                let lambda = self.scoring.lambda(windows[i]);
                                (i, scoring::increment(d.points, d.at, t0s[i], lambda))
                            })
                            .collect(),
                        video,
                    }
                })
                .collect();
            match self
                .store
                .apply(&keys, &landmarks, &prepared, event_ttl, view_ttl)
                .await?
            {
                Applied::Accepted(n) => {
                    self.landmarks.fill(keys.iter().cloned().zip(landmarks));
                    return Ok(n);
                }
                Applied::Stale(stale) => {
                    tracing::info!(
                        sets = stale.len(),
                        "landmarks moved under a batch; recomputing"
                    );
                    self.landmarks.forget(&stale);
                }
            }
        }
        Err(crate::Error::Stale)
    }

    /// The landmark of each key: cached, else stored, else now (the batch claims it).
    async fn landmarks_of(&self, keys: &[String]) -> Result<Vec<String>, crate::Error> {
        let mut known = self.landmarks.get(keys);
        let missing: Vec<String> = keys
            .iter()
            .zip(&known)
            .filter(|(_, t0)| t0.is_none())
            .map(|(k, _)| k.clone())
            .collect();
        if !missing.is_empty() {
            let stored = self.store.landmarks(&missing).await?;
            let now = format_f64(scoring::event_time(OffsetDateTime::now_utc()));
            let mut found = Vec::new();
            let mut stored = missing.iter().zip(stored);
            for slot in known.iter_mut().filter(|t0| t0.is_none()) {
                let (key, t0) = stored.next().expect("one answer per missing key");
                match t0 {
                    Some(t0) => {
                        found.push((key.clone(), t0.clone()));
                        *slot = Some(t0);
                    }
                    // A new set: this batch proposes its landmark (the script stores it
                    // unless another writer got there first, which makes the batch stale).
                    None => *slot = Some(now.clone()),
                }
            }
            self.landmarks.fill(found);
        }
        Ok(known.into_iter().map(|t0| t0.unwrap_or_default()).collect())
    }
}
