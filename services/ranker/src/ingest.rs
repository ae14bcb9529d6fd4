//! Interactions → trending sorted sets, a batch at a time.
//!
//! A batch (up to `RANKER_BATCH_SIZE` events, most of them in packs of many events per
//! message: events::pack) is decoded, each event's increments are computed for every
//! window × scope it belongs to against that sorted set's landmark, and summed per
//! (sorted set, video): a popular video gets one ZINCRBY per set and batch, not one per
//! event. The batch goes to Redis as atomic scripts (crate::store) of about
//! `RANKER_SCRIPT_WRITES` writes each, split by video so each video's sums stay whole, and
//! on a Redis Cluster by window (one script per shard, crate::store); a script
//! refuses its part, writing nothing, if an event that counts was already seen or is a
//! repeated view; those are then marked without counting and the sums redone. Only once
//! every part is applied is the batch acknowledged, with one `multiple` ack.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Instant,
};

use foldhash::fast::RandomState;

use events::{
    Envelope,
    consumer::{self, BatchOutcome},
    interaction::{Action, Interaction},
    pack,
    trending::{Scope, Window, trending_key},
};
use lapin::message::Delivery;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    Context,
    config::{Ingest, Scoring},
    scoring::{self, format_f64},
    store::{Applied, Mark, Prepared, Shard, Store},
};

/// How many times a batch is recomputed when the script refused it (landmarks moved by a
/// rebase, or events found already seen) before it is retried later. Each refusal of
/// events removes at least one counting event, so this bounds only a race with another
/// replica or a rebase.
const ATTEMPTS: usize = 5;
/// The landmark cache is dropped when it grows past this (it refills from Redis).
const LANDMARK_CACHE_MAX: usize = 200_000;

/// The per-batch maps hash with foldhash: their keys are ids of our own events, looked up a
/// few times per event, and SipHash over them was most of the ranker's own CPU.
type FastMap<K, V> = HashMap<K, V, RandomState>;
type FastSet<K> = HashSet<K, RandomState>;

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
    scopes: Scopes,
    points: f64,
    at: f64,
}

/// The sorted sets one batch adds to. Each scope its events count in is named once, with
/// its three keys (one per window) formatted once, as sets `3 * scope + window`: an event
/// carries the indices of its scopes instead of six key strings.
///
/// There are two scopes, global and category. A channel's ranking is read from the global
/// sets (media scores the channel's videos there): a set per channel would cost a ZINCRBY
/// per window for every video in every batch, in thousands of small sets, for an order the
/// global set already has.
struct Sets {
    prefix: String,
    categories: FastMap<String, usize>,
    keys: Vec<String>,
}

impl Sets {
    const GLOBAL: usize = 0;

    fn new(prefix: &str) -> Self {
        let mut sets = Self {
            prefix: prefix.to_owned(),
            categories: FastMap::default(),
            keys: Vec::new(),
        };
        sets.add(&Scope::Global);
        sets
    }

    /// Names a new scope's three sets; returns the scope's index.
    fn add(&mut self, scope: &Scope) -> usize {
        let at = self.keys.len() / Window::ALL.len();
        for window in Window::ALL {
            self.keys.push(trending_key(&self.prefix, window, scope));
        }
        at
    }

    /// The scopes an interaction counts in: global, and its category if any.
    fn scopes_of(&mut self, event: &Interaction) -> Scopes {
        let mut scopes = Scopes {
            ids: [Self::GLOBAL, 0],
            len: 1,
        };
        if let Some(category) = event.category.as_deref().filter(|c| !c.is_empty()) {
            scopes.ids[1] = match self.categories.get(category) {
                Some(&at) => at,
                None => {
                    let at = self.add(&Scope::Category(category.to_owned()));
                    self.categories.insert(category.to_owned(), at);
                    at
                }
            };
            scopes.len = 2;
        }
        scopes
    }

    fn len(&self) -> usize {
        self.keys.len()
    }

    fn key(&self, set: usize) -> &str {
        &self.keys[set]
    }

    fn window(set: usize) -> Window {
        Window::ALL[set % Window::ALL.len()]
    }
}

/// The scopes an event counts in, as indices into its batch's [`Sets`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Scopes {
    ids: [usize; 2],
    len: usize,
}

impl Scopes {
    /// The sets (indices into [`Sets`]) the event adds to: each window of each scope.
    fn sets(&self) -> impl Iterator<Item = usize> + '_ {
        let windows = Window::ALL.len();
        self.ids[..self.len]
            .iter()
            .flat_map(move |&scope| (0..windows).map(move |w| scope * windows + w))
    }
}

pub fn spawn(ctx: &Context, ingestor: Arc<Ingestor>, shutdown: &platform::Shutdown) {
    let spec = ctx.config.queue("ranker.interactions");
    let ingest = ctx.config.ingest;
    let batching = ingest.batching(ingest.batch_size);
    consumer::spawn_batched(ctx.rabbit.clone(), spec, batching, shutdown, move |batch| {
        let ingestor = ingestor.clone();
        async move { ingestor.handle(batch).await }
    });
}

impl Ingestor {
    pub async fn handle(&self, batch: Vec<Delivery>) -> BatchOutcome {
        let started = Instant::now();
        let unpacked = pack::unpack::<Interaction>(&batch);
        let reject = unpacked.reject;
        let mut undecodable = unpacked.skipped as u64;
        let mut decoded = Vec::with_capacity(unpacked.events.len());
        let mut sets = Sets::new(&self.store.prefix);
        for envelope in unpacked.events {
            if envelope.kind == <Interaction as events::Event>::TYPE {
                decoded.push(self.decode(envelope, &mut sets));
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
        let decode_time = started.elapsed();
        match self.apply(&decoded, &sets).await {
            Ok(accepted) => {
                tracing::debug!(
                    events = decoded.len(),
                    accepted,
                    decode_ms = decode_time.as_millis() as u64,
                    total_ms = started.elapsed().as_millis() as u64,
                    "batch applied"
                );
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

    fn decode(&self, envelope: Envelope<Interaction>, sets: &mut Sets) -> Decoded {
        let (points, at) = scoring::points(
            &envelope.data.action,
            envelope.occurred_at,
            &self.scoring.weights,
        );
        Decoded {
            id: envelope.id.to_string(),
            scopes: sets.scopes_of(&envelope.data),
            event: envelope.data,
            points,
            at,
        }
    }

    /// Applies decoded events; returns how many counted. The batch is written as one
    /// script per part (see [`parts`]); each part is atomic on its own, so a crash between
    /// two parts redelivers the batch, whose applied part then finds its marks.
    async fn apply(&self, decoded: &[Decoded], sets: &Sets) -> Result<i64, crate::Error> {
        let events = first_occurrences(decoded);
        let parts = parts(decoded, events, usize::from(self.ingest.script_writes));
        metrics::histogram!("ranker_batch_parts").record(parts.len() as f64);
        let mut accepted = 0;
        for part in parts {
            accepted += self.apply_part(decoded, sets, part).await?;
        }
        Ok(accepted)
    }

    /// Applies one part of a batch: one script per shard of the store (one per window on a
    /// Redis Cluster, sent at once; one for all on a server, crate::store). Returns how
    /// many of its events counted (in the shard where most did: after a crash between
    /// shards, the redelivered events count only where they had not yet).
    async fn apply_part(
        &self,
        decoded: &[Decoded],
        sets: &Sets,
        events: Vec<Candidate>,
    ) -> Result<i64, crate::Error> {
        let shards =
            (self.store.shards.iter()).map(|shard| self.apply_shard(decoded, sets, &events, shard));
        let counted = futures::future::try_join_all(shards).await?;
        Ok(counted.into_iter().max().unwrap_or(0))
    }

    /// Applies one part of a batch to one shard's sets in one script; returns how many of
    /// its events counted there.
    async fn apply_shard(
        &self,
        decoded: &[Decoded],
        sets: &Sets,
        events: &[Candidate],
        shard: &Shard,
    ) -> Result<i64, crate::Error> {
        let mut events = events.to_vec();
        // The part's distinct sorted sets of this shard's windows, in first-seen order:
        // batch set `s` is the part's key `local[s]`.
        let mut local = vec![usize::MAX; sets.len()];
        let mut keys: Vec<String> = Vec::new();
        let mut lambdas: Vec<f64> = Vec::new();
        for candidate in &events {
            for set in decoded[candidate.at].scopes.sets() {
                let window = Sets::window(set);
                if shard.windows.contains(&window) && local[set] == usize::MAX {
                    local[set] = keys.len();
                    keys.push(sets.key(set).to_owned());
                    lambdas.push(self.scoring.lambda(window));
                }
            }
        }
        let with_counters = shard.has_counters();
        let view_ttl = self.ingest.view_dedupe.as_secs();
        let event_ttl = self.ingest.event_dedupe.as_secs();
        for _ in 0..ATTEMPTS {
            let landmarks = self.landmarks_of(shard, &keys).await?;
            let t0s: Vec<f64> = landmarks
                .iter()
                .map(|s| s.parse::<f64>().unwrap_or(0.0))
                .collect();
            let prepared = prepare(decoded, &events, with_counters, |set| {
                let i = local[set];
                (i != usize::MAX).then(|| (i, t0s[i], lambdas[i]))
            });
            match self
                .store
                .apply(shard, &keys, &landmarks, &prepared, event_ttl, view_ttl)
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

    /// The landmark of each key (all of `shard`): cached, else stored, else now (the batch
    /// claims it).
    async fn landmarks_of(
        &self,
        shard: &Shard,
        keys: &[String],
    ) -> Result<Vec<String>, crate::Error> {
        let mut known = self.landmarks.get(keys);
        let missing: Vec<String> = keys
            .iter()
            .zip(&known)
            .filter(|(_, t0)| t0.is_none())
            .map(|(k, _)| k.clone())
            .collect();
        if !missing.is_empty() {
            let stored = self.store.landmarks(shard, &missing).await?;
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
/// (one ZINCRBY per set and batch for a popular video). No single script holds Redis for
/// more than about `max_writes` writes: a big batch sums better; a small script keeps
/// Redis responsive to everyone else sharing it.
fn parts(decoded: &[Decoded], events: Vec<Candidate>, max_writes: usize) -> Vec<Vec<Candidate>> {
    let mut sets_per_video: FastMap<Uuid, usize> = FastMap::default();
    for candidate in &events {
        let d = &decoded[candidate.at];
        sets_per_video.insert(d.event.video_id, d.scopes.sets().count());
    }
    let writes = events.len() + sets_per_video.values().sum::<usize>();
    let count = writes.div_ceil(max_writes.max(1)).max(1);
    if count == 1 {
        return vec![events];
    }
    let mut parts = vec![Vec::new(); count];
    for candidate in events {
        // A UUID's low bits are random (v4, and v7 past its timestamp), so videos spread
        // evenly.
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
    let mut ids = FastSet::with_capacity_and_hasher(decoded.len(), RandomState::default());
    let mut views = FastSet::default();
    decoded
        .iter()
        .enumerate()
        .filter(|(_, d)| ids.insert(d.id.as_str()))
        .map(|(at, d)| {
            let counts = match d.event.action {
                Action::View => views.insert((&d.event.viewer, d.event.video_id)),
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
/// they are in its caches, instead of hopping between sets per video. `set(s)` gives
/// batch set `s`'s index among the script's keys, its landmark and its decay rate, or None
/// for a set of another shard (another script's); counters are summed only
/// `with_counters` (the shard that carries them, crate::store::COUNTER_WINDOW's).
fn prepare(
    decoded: &[Decoded],
    events: &[Candidate],
    with_counters: bool,
    set: impl Fn(usize) -> Option<(usize, f64, f64)>,
) -> Prepared {
    let mut sums: FastMap<(usize, Uuid), usize> = FastMap::default();
    let mut increments: Vec<(usize, Uuid, f64)> = Vec::new();
    let mut counter_slots: FastMap<(char, Uuid), usize> = FastMap::default();
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
        for (i, t0, lambda) in d.scopes.sets().filter_map(&set) {
            let inc = scoring::increment(d.points, d.at, t0, lambda);
            let slot = *sums.entry((i, video)).or_insert_with(|| {
                increments.push((i, video, 0.0));
                increments.len() - 1
            });
            increments[slot].2 += inc;
        }
        if !with_counters {
            continue;
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

    /// An event of `video` (uploaded by `owner`) counting in the global scope and, given a
    /// category, in scope 1 too.
    fn decoded(id: &str, video: Uuid, owner: Uuid, viewer: &str, action: Action) -> Decoded {
        Decoded {
            id: id.to_owned(),
            event: Interaction {
                video_id: video,
                owner_id: owner,
                category: None,
                viewer: viewer.parse().expect("a viewer key"),
                action,
            },
            scopes: Scopes {
                ids: [Sets::GLOBAL, 0],
                len: 1,
            },
            points: 1.0,
            at: 100.0,
        }
    }

    fn in_scope_1(mut d: Decoded) -> Decoded {
        d.scopes = Scopes {
            ids: [Sets::GLOBAL, 1],
            len: 2,
        };
        d
    }

    #[test]
    fn a_batch_names_each_scope_once_with_a_set_per_window() {
        let mut sets = Sets::new("p:");
        let event = |category: Option<&str>| Interaction {
            video_id: Uuid::now_v7(),
            owner_id: Uuid::now_v7(),
            category: category.map(str::to_owned),
            viewer: "user:x".parse().unwrap(),
            action: Action::Like,
        };
        let first = sets.scopes_of(&event(Some("music")));
        let again = sets.scopes_of(&event(Some("music")));
        let news = sets.scopes_of(&event(Some("news")));
        let none = sets.scopes_of(&event(Some("")));
        assert_eq!(first, again, "one scope per category, whoever uploaded");
        assert_ne!(first, news);
        assert_eq!((first.len, none.len), (2, 1), "an empty category is none");
        assert_eq!(sets.len(), 3 * 3, "global, music, news: three windows each");

        let keys: Vec<(Window, &str)> = first
            .sets()
            .map(|set| (Sets::window(set), sets.key(set)))
            .collect();
        let expected: Vec<(Window, String)> = [Scope::Global, Scope::Category("music".into())]
            .iter()
            .flat_map(|scope| Window::ALL.map(|w| (w, trending_key("p:", w, scope))))
            .collect();
        let expected: Vec<(Window, &str)> =
            expected.iter().map(|(w, k)| (*w, k.as_str())).collect();
        assert_eq!(keys, expected);
    }

    #[test]
    fn parts_keep_each_video_whole_and_every_event_once() {
        let owner = Uuid::now_v7();
        let videos: Vec<Uuid> = (0..50).map(|_| Uuid::now_v7()).collect();
        let batch: Vec<Decoded> = (0..1000)
            .map(|i| {
                let video = videos[(i * 7) % videos.len()];
                decoded(&i.to_string(), video, owner, "user:x", Action::Like)
            })
            .collect();
        let events = first_occurrences(&batch);
        // 1000 marks + 50 videos x 3 windows
        assert_eq!(
            parts(&batch, events.clone(), 1150),
            std::slice::from_ref(&events)
        );

        let split = parts(&batch, events, 300); // 4 parts
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
        let (a, b, owner) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let batch = [
            decoded("1", a, owner, "user:x", Action::View),
            decoded("2", a, owner, "user:x", Action::View),
            decoded("1", a, owner, "user:x", Action::View),
            decoded("3", b, owner, "user:x", Action::View),
            decoded("4", a, owner, "user:y", Action::Like),
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
        let (a, b, owner) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let mut like = in_scope_1(decoded("3", a, owner, "user:y", Action::Like));
        like.points = 5.0;
        let batch = [
            in_scope_1(decoded("1", a, owner, "user:x", Action::View)),
            decoded("2", b, owner, "user:x", Action::View),
            like,
            decoded("4", a, owner, "user:z", Action::Watch { seconds: 30 }),
            decoded("5", a, owner, "user:w", Action::View),
        ];
        let mut events = first_occurrences(&batch);
        events[4].counts = false; // as if the script found user:w's view repeated
        // Landmark 100 = the events' time, so each increment is its points. Set `s` of the
        // batch is the part's key `5 - s`: the part's own order is what the output follows.
        let prepared = prepare(&batch, &events, true, |set| Some((5 - set, 100.0, 1e-4)));
        let mut expected = Vec::new();
        for key in (0..=5).rev() {
            let global = key >= 3;
            expected.push((key, a, if global { 1.0 + 5.0 + 1.0 } else { 1.0 + 5.0 }));
            if global {
                expected.push((key, b, 1.0));
            }
        }
        expected.sort_by_key(|(key, _, _)| *key);
        assert_eq!(prepared.increments, expected);
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

        // One shard's script on a cluster (one window): only that window's sets, the same
        // marks, no counters unless it is the counter shard.
        let day = |set: usize| Sets::window(set) == Window::Day;
        let prepared = prepare(&batch, &events, false, |set| {
            day(set).then_some((set / 3, 100.0, 1e-4))
        });
        assert_eq!(
            prepared.increments,
            [(0, a, 7.0), (0, b, 1.0), (1, a, 6.0)],
            "global day (a, b), then scope 1's day (a)"
        );
        assert!(prepared.counters.is_empty());
        assert_eq!(prepared.events.len(), 5);
    }
}
