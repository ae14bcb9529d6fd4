//! Interactions → trending sorted sets, a batch at a time.
//!
//! A batch (up to `RANKER_BATCH_SIZE` events, most of them in packs of many events per
//! message: events::pack) is decoded, each event's increments are computed for every
//! window × scope it belongs to against that sorted set's landmark, and summed per
//! (sorted set, video): a popular video gets one ZINCRBY per set and batch, not one per
//! event. The batch goes to Redis as atomic scripts (crate::store) of about
//! `RANKER_SCRIPT_WRITES` writes each, split by video so each video's sums stay whole; a script
//! refuses its part, writing nothing, if an event that counts was already seen or is a
//! repeated view; those are then marked without counting and the sums redone. Only once
//! every part is applied is the batch acknowledged, with one `multiple` ack.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Instant,
};

use events::{
    Envelope,
    consumer::{self, BatchOutcome},
    interaction::{Action, Interaction, Scope, Window, trending_key},
    pack,
};
use lapin::message::Delivery;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    Context,
    config::{Ingest, Scoring},
    scoring::{self, format_f64},
    store::{Applied, Mark, Prepared, Store},
};

/// How many times a batch is recomputed when the script refused it (landmarks moved by a
/// rebase, or events found already seen) before it is retried later. Each refusal of
/// events removes at least one counting event, so this bounds only a race with another
/// replica or a rebase.
const ATTEMPTS: usize = 5;
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
    let batching = ingest.batching(ingest.batch_size);
    consumer::spawn_batched(ctx.rabbit.clone(), spec, batching, shutdown, move |batch| {
        let ingestor = ingestor.clone();
        async move { ingestor.handle(batch).await }
    });
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
        let unpacked = pack::unpack::<Interaction>(&batch);
        let reject = unpacked.reject;
        let mut undecodable = unpacked.skipped as u64;
        let mut decoded = Vec::with_capacity(unpacked.events.len());
        for envelope in unpacked.events {
            if envelope.kind == <Interaction as events::Event>::TYPE {
                decoded.push(self.decode(envelope));
            } else {
                tracing::error!(kind = %envelope.kind, "not an interaction");
                undecodable += 1;
            }
        }
        metrics::counter!("ranker_events_total", "outcome" => "undecodable").increment(undecodable);
        metrics::histogram!("ranker_batch_size").record(decoded.len() as f64);
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

    /// Applies decoded events; returns how many counted. The batch is written as one
    /// script per part (see [`parts`]); each part is atomic on its own, so a crash between
    /// two parts redelivers the batch, whose applied part then finds its marks.
    async fn apply(&self, decoded: &[Decoded]) -> Result<i64, crate::Error> {
        let events = first_occurrences(decoded);
        let parts = parts(decoded, events, usize::from(self.ingest.script_writes));
        metrics::histogram!("ranker_batch_parts").record(parts.len() as f64);
        let mut accepted = 0;
        for part in parts {
            accepted += self.apply_part(decoded, part).await?;
        }
        Ok(accepted)
    }

    /// Applies one part of a batch in one script; returns how many of its events counted.
    async fn apply_part(
        &self,
        decoded: &[Decoded],
        mut events: Vec<Candidate>,
    ) -> Result<i64, crate::Error> {
        // The part's distinct sorted sets, in first-seen order.
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut keys: Vec<String> = Vec::new();
        let mut windows: Vec<Window> = Vec::new();
        for candidate in &events {
            for (window, key) in &decoded[candidate.at].targets {
                index.entry(key.as_str()).or_insert_with(|| {
                    keys.push(key.clone());
                    windows.push(*window);
                    keys.len() - 1
                });
            }
        }
        let view_ttl = self.ingest.view_dedupe.as_secs();
        let event_ttl = self.ingest.event_dedupe.as_secs();
        for _ in 0..ATTEMPTS {
            let landmarks = self.landmarks_of(&keys).await?;
            let t0s: Vec<f64> = landmarks
                .iter()
                .map(|s| s.parse::<f64>().unwrap_or(0.0))
                .collect();
            let lambdas: Vec<f64> = windows.iter().map(|&w| self.scoring.lambda(w)).collect();
            let prepared = prepare(decoded, &events, |key| {
                let i = index[key];
                (i, t0s[i], lambdas[i])
            });
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
                Applied::Refused(refused) => {
                    for i in refused {
                        if let Some(event) = events.get_mut(i) {
                            event.counts = false;
                        }
                    }
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

/// Splits a batch's events into parts of about `max_writes` Redis writes each (a mark per
/// event, a ZINCRBY per sorted set and distinct video), by video: all the events of one
/// video land in the same part, so its increments are still summed over the whole batch
/// (one ZINCRBY per set and batch for a popular video), while no single script holds
/// Redis for more than about `max_writes` writes. A big batch sums better; a small script
/// keeps Redis responsive to everyone else sharing it.
fn parts(decoded: &[Decoded], events: Vec<Candidate>, max_writes: usize) -> Vec<Vec<Candidate>> {
    let mut sets_per_video: HashMap<Uuid, usize> = HashMap::new();
    for candidate in &events {
        let d = &decoded[candidate.at];
        sets_per_video.insert(d.event.video_id, d.targets.len());
    }
    let writes = events.len() + sets_per_video.values().sum::<usize>();
    let count = writes.div_ceil(max_writes.max(1)).max(1);
    if count == 1 {
        return vec![events];
    }
    let mut parts = vec![Vec::new(); count];
    for candidate in events {
        // A UUIDv7's low bits are random, so videos spread evenly.
        let video = decoded[candidate.at].event.video_id.as_u128();
        parts[(video % count as u128) as usize].push(candidate);
    }
    parts.retain(|part| !part.is_empty());
    parts
}

/// One event of the batch to send: which decoded event, and whether it counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Candidate {
    at: usize,
    counts: bool,
}

/// The batch's events to send: the first occurrence of each event id (a later copy is a
/// redelivery or a re-publish: the first one marks it), each counting except views
/// repeated within the batch (the first view of a viewer and video counts, as the
/// dedupe window would decide across batches).
fn first_occurrences(decoded: &[Decoded]) -> Vec<Candidate> {
    let mut ids = HashSet::with_capacity(decoded.len());
    let mut views = HashSet::new();
    decoded
        .iter()
        .enumerate()
        .filter(|(_, d)| ids.insert(d.id.as_str()))
        .map(|(at, d)| {
            let counts = match d.event.action {
                Action::View => views.insert((d.event.viewer.as_str(), d.event.video_id)),
                _ => true,
            };
            Candidate { at, counts }
        })
        .collect()
}

/// The script's input for `events` of `decoded`: their marks, and the counting events'
/// increments summed per (sorted set, video) and counters summed per video, each summed in
/// order of appearance (so the sums are the same for the same batch). The increments are
/// then grouped by sorted set, so Redis updates one set's skiplist and dict at a time while
/// they are in its caches, instead of hopping between nine sets per video. `set(key)` gives a
/// sorted set's index, landmark and decay rate.
fn prepare(
    decoded: &[Decoded],
    events: &[Candidate],
    set: impl Fn(&str) -> (usize, f64, f64),
) -> Prepared {
    let mut sums: HashMap<(usize, Uuid), usize> = HashMap::new();
    let mut increments: Vec<(usize, String, f64)> = Vec::new();
    let mut counter_slots: HashMap<(char, Uuid), usize> = HashMap::new();
    let mut counters: Vec<(String, i64)> = Vec::new();
    let mut add_counter = |kind: char, video: Uuid, amount: i64| {
        let slot = *counter_slots.entry((kind, video)).or_insert_with(|| {
            counters.push((format!("{kind}:{video}"), 0));
            counters.len() - 1
        });
        counters[slot].1 += amount;
    };
    let mut marks = Vec::with_capacity(events.len());
    for candidate in events {
        let d = &decoded[candidate.at];
        let video = d.event.video_id;
        let is_view = matches!(d.event.action, Action::View);
        marks.push(Mark {
            id: d.id.clone(),
            view_key: if is_view && candidate.counts {
                format!("{}:{video}", d.event.viewer)
            } else {
                String::new()
            },
            counts: candidate.counts,
        });
        if !candidate.counts {
            continue;
        }
        for (_, key) in &d.targets {
            let (i, t0, lambda) = set(key);
            let inc = scoring::increment(d.points, d.at, t0, lambda);
            let slot = *sums.entry((i, video)).or_insert_with(|| {
                increments.push((i, video.to_string(), 0.0));
                increments.len() - 1
            });
            increments[slot].2 += inc;
        }
        if is_view {
            add_counter('v', video, 1);
        }
        if let Action::Watch { seconds } = d.event.action {
            add_counter('w', video, i64::from(seconds));
        }
    }
    increments.sort_by_key(|(set, _, _)| *set); // stable: videos keep their order
    Prepared {
        events: marks,
        increments,
        counters,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(id: &str, video: Uuid, viewer: &str, action: Action, keys: &[&str]) -> Decoded {
        Decoded {
            id: id.to_owned(),
            event: Interaction {
                video_id: video,
                owner_id: Uuid::nil(),
                category: None,
                viewer: viewer.to_owned(),
                action,
            },
            targets: keys
                .iter()
                .map(|k| (Window::Day, (*k).to_owned()))
                .collect(),
            points: 1.0,
            at: 100.0,
        }
    }

    #[test]
    fn parts_keep_each_video_whole_and_every_event_once() {
        let videos: Vec<Uuid> = (0..50).map(|_| Uuid::now_v7()).collect();
        let batch: Vec<Decoded> = (0..1000)
            .map(|i| {
                let video = videos[(i * 7) % videos.len()];
                decoded(&i.to_string(), video, "user:x", Action::Like, &["g"])
            })
            .collect();
        let events = first_occurrences(&batch);
        assert_eq!(
            parts(&batch, events.clone(), 1050),
            std::slice::from_ref(&events)
        );

        let split = parts(&batch, events, 300); // 1050 writes: 4 parts
        assert!(split.len() > 1 && split.len() <= 4, "{} parts", split.len());
        let mut all: Vec<usize> = split.iter().flatten().map(|c| c.at).collect();
        all.sort_unstable();
        assert_eq!(
            all,
            (0..1000).collect::<Vec<_>>(),
            "every event exactly once"
        );
        for video in videos {
            let holding = split
                .iter()
                .filter(|part| part.iter().any(|c| batch[c.at].event.video_id == video))
                .count();
            assert_eq!(holding, 1, "a video's events are in one part");
        }
    }

    #[test]
    fn a_repeated_id_is_sent_once_and_a_repeated_view_only_marked() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let batch = [
            decoded("1", a, "user:x", Action::View, &["g"]),
            decoded("2", a, "user:x", Action::View, &["g"]),
            decoded("1", a, "user:x", Action::View, &["g"]),
            decoded("3", b, "user:x", Action::View, &["g"]),
            decoded("4", a, "user:y", Action::Like, &["g"]),
        ];
        let events = first_occurrences(&batch);
        let summary: Vec<(&str, bool)> = events
            .iter()
            .map(|c| (batch[c.at].id.as_str(), c.counts))
            .collect();
        assert_eq!(
            summary,
            [("1", true), ("2", false), ("3", true), ("4", true)]
        );
    }

    #[test]
    fn increments_and_counters_are_summed_per_set_and_video_over_counting_events() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let mut like = decoded("3", a, "user:y", Action::Like, &["g", "c"]);
        like.points = 5.0;
        let batch = [
            decoded("1", a, "user:x", Action::View, &["g", "c"]),
            decoded("2", b, "user:x", Action::View, &["g"]),
            like,
            decoded("4", a, "user:z", Action::Watch { seconds: 30 }, &["g"]),
            decoded("5", a, "user:w", Action::View, &["g"]),
        ];
        let mut events = first_occurrences(&batch);
        events[4].counts = false; // as if the script found user:w's view repeated
        // Landmark 100 = the events' time, so each increment is its points.
        let sets = |key: &str| (usize::from(key == "c"), 100.0, 1e-4);
        let prepared = prepare(&batch, &events, sets);
        assert_eq!(
            prepared.increments,
            [
                (0, a.to_string(), 1.0 + 5.0 + 1.0),
                (0, b.to_string(), 1.0),
                (1, a.to_string(), 1.0 + 5.0),
            ]
        );
        assert_eq!(
            prepared.counters,
            [
                (format!("v:{a}"), 1),
                (format!("v:{b}"), 1),
                (format!("w:{a}"), 30),
            ]
        );
        let marks: Vec<(&str, &str, bool)> = prepared
            .events
            .iter()
            .map(|m| (m.id.as_str(), m.view_key.as_str(), m.counts))
            .collect();
        let (view_a, view_b) = (format!("user:x:{a}"), format!("user:x:{b}"));
        assert_eq!(
            marks,
            [
                ("1", view_a.as_str(), true),
                ("2", view_b.as_str(), true),
                ("3", "", true),
                ("4", "", true),
                ("5", "", false),
            ]
        );
    }
}
