//! The in-memory nearest-neighbour index over the videos' embeddings.
//!
//! An HNSW graph (hnsw_rs) answers "which vectors are closest to this one" in a few
//! hundred distance computations instead of one per video. HNSW graphs do not support
//! removing a node, so the graph only grows: each vector gets a new *slot* (the graph's
//! id for it), and the [`Catalogue`] beside the graph says, per video, which slot is its
//! current one and whether it may be listed (public, ready, not deleted). A search skips
//! every slot that is not the current slot of a listable video, so a video made private
//! or deleted disappears from results the moment its event is applied; a re-embedded
//! video's old slot is skipped the same way. Dead slots cost memory and a little search
//! time until the next start, which builds the graph afresh from PostgreSQL
//! ([`Index::dead_slots`] is exported as a metric).
//!
//! Searches run under the catalogue's read lock (the filter reads it for every
//! candidate); writers take the write lock only to flip a flag or record a slot, never
//! while inserting into the graph.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, RwLock},
};

use hnsw_rs::prelude::{Distance, Hnsw};
use uuid::Uuid;

use crate::{config::IndexConfig, embed::dot};

/// Cosine distance between unit vectors: `1 - a·b`, never negative (rounding can push a
/// vector's product with itself a hair above 1, which hnsw_rs's own `DistDot` asserts
/// against).
#[derive(Debug, Default, Clone, Copy)]
pub struct UnitCosine;

impl Distance<f32> for UnitCosine {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (1.0 - dot(a, b)).max(0.0)
    }
}

/// What the index knows about one video.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    /// Its current slot in the graph; None until embedded.
    pub slot: Option<usize>,
    pub vector: Option<Arc<[f32]>>,
    /// Public, ready and not deleted.
    pub listable: bool,
}

#[derive(Default)]
struct Catalogue {
    /// slot → the video it was inserted for (current or not).
    slots: Vec<Uuid>,
    videos: HashMap<Uuid, Entry>,
}

impl Catalogue {
    /// Whether `slot` is the current slot of a listable video that is not `excluded`.
    fn admits(&self, slot: usize, excluded: &dyn Fn(&Uuid) -> bool) -> Option<Uuid> {
        let video = *self.slots.get(slot)?;
        let entry = self.videos.get(&video)?;
        (entry.slot == Some(slot) && entry.listable && !excluded(&video)).then_some(video)
    }
}

/// One result: a video and its cosine similarity to the query (1 = same direction).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Hit {
    pub id: Uuid,
    pub score: f32,
}

pub struct Index {
    graph: Hnsw<'static, f32, UnitCosine>,
    catalogue: RwLock<Catalogue>,
    config: IndexConfig,
}

/// HNSW's layer count: 16 layers hold far more than any catalogue at M ≥ 8.
const MAX_LAYERS: usize = 16;

impl Index {
    pub fn new(config: IndexConfig) -> Self {
        Self {
            graph: Hnsw::new(
                config.max_connections,
                config.capacity,
                MAX_LAYERS,
                config.ef_construction,
                UnitCosine,
            ),
            catalogue: RwLock::new(Catalogue::default()),
            config,
        }
    }

    /// Builds an index from `(video, vector, listable)` rows at once, inserting in
    /// parallel (start-up, benchmarks).
    pub fn build(config: IndexConfig, rows: Vec<(Uuid, Vec<f32>, bool)>) -> Self {
        let index = Self::new(config);
        {
            let mut catalogue = index.catalogue.write().unwrap();
            for (slot, (video, vector, listable)) in rows.iter().enumerate() {
                catalogue.slots.push(*video);
                catalogue.videos.insert(
                    *video,
                    Entry {
                        slot: Some(slot),
                        vector: Some(Arc::from(vector.as_slice())),
                        listable: *listable,
                    },
                );
            }
        }
        let data: Vec<(&[f32], usize)> = rows
            .iter()
            .enumerate()
            .map(|(slot, (_, v, _))| (v.as_slice(), slot))
            .collect();
        index.graph.parallel_insert_slice(&data);
        index
    }

    /// Adds or replaces `video`'s vector. The old slot (if any) stops counting at once.
    pub fn upsert(&self, video: Uuid, vector: Vec<f32>, listable: bool) {
        let slot = {
            let mut catalogue = self.catalogue.write().unwrap();
            catalogue.slots.push(video);
            catalogue.slots.len() - 1
        };
        // Into the graph first, outside the lock; only then does the slot become current,
        // so a search never prefers a slot the graph cannot reach yet.
        self.graph.insert_slice((&vector, slot));
        let mut catalogue = self.catalogue.write().unwrap();
        let entry = catalogue.videos.entry(video).or_default();
        entry.slot = Some(slot);
        entry.vector = Some(Arc::from(vector));
        entry.listable = listable;
    }

    /// Changes the search beam (`INDEX_EF_SEARCH`) of a built index: the benchmark
    /// measures several beams over one graph, which takes minutes to build.
    pub fn set_ef_search(&mut self, ef_search: usize) {
        self.config.ef_search = ef_search;
    }

    /// Sets whether `video` may be listed (its visibility or readiness changed).
    pub fn set_listable(&self, video: Uuid, listable: bool) {
        let mut catalogue = self.catalogue.write().unwrap();
        catalogue.videos.entry(video).or_default().listable = listable;
    }

    /// Forgets `video` (deleted): its slot is dead from now on.
    pub fn remove(&self, video: Uuid) {
        self.catalogue.write().unwrap().videos.remove(&video);
    }

    /// `video`'s vector, if it has been embedded.
    pub fn vector(&self, video: &Uuid) -> Option<Arc<[f32]>> {
        self.catalogue
            .read()
            .unwrap()
            .videos
            .get(video)
            .and_then(|e| e.vector.clone())
    }

    /// The vectors of those of `videos` that have one.
    pub fn vectors(&self, videos: impl Iterator<Item = Uuid>) -> Vec<(Uuid, Arc<[f32]>)> {
        let catalogue = self.catalogue.read().unwrap();
        videos
            .filter_map(|v| Some((v, catalogue.videos.get(&v)?.vector.clone()?)))
            .collect()
    }

    /// Vectors that are some video's current one.
    pub fn len(&self) -> usize {
        let catalogue = self.catalogue.read().unwrap();
        catalogue
            .videos
            .values()
            .filter(|e| e.slot.is_some())
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Slots in the graph that no longer count (replaced or deleted vectors).
    pub fn dead_slots(&self) -> usize {
        let catalogue = self.catalogue.read().unwrap();
        catalogue.slots.len()
            - catalogue
                .videos
                .values()
                .filter(|e| e.slot.is_some())
                .count()
    }

    /// The `k` listable videos nearest to `query` (unit length), best first, leaving out
    /// those `excluded` says to.
    ///
    /// The graph is searched without a filter and its `ef` best candidates are filtered
    /// here. hnsw_rs can filter while it walks, but its filtered walk (0.3.5) gives up the
    /// early stop that makes HNSW fast and visits the whole graph: at 100,000 vectors that
    /// is a brute-force scan with heaps on top. Excluded videos are few in practice (the
    /// video itself, what a viewer has seen, the unlisted), so post-filtering a beam of
    /// `ef` keeps `k`; when it does not, the search is repeated with a wider beam (up to
    /// 16×) before settling for fewer.
    pub fn nearest(&self, query: &[f32], k: usize, excluded: &dyn Fn(&Uuid) -> bool) -> Vec<Hit> {
        if k == 0 {
            return Vec::new();
        }
        let catalogue = self.catalogue.read().unwrap();
        let widest = self.config.ef_search.max(k) * 16;
        let mut ef = self.config.ef_search.max(k);
        loop {
            let found = self.graph.search(query, ef, ef);
            let hits: Vec<Hit> = found
                .iter()
                .filter_map(|n| {
                    let id = catalogue.admits(n.d_id, excluded)?;
                    Some(Hit {
                        id,
                        score: 1.0 - n.distance,
                    })
                })
                .take(k)
                .collect();
            // Fewer than ef candidates means the graph has no more to give.
            if hits.len() >= k || found.len() < ef || ef >= widest {
                return hits;
            }
            ef = (ef * 4).min(widest);
        }
    }

    /// The exact answer to [`Index::nearest`], by comparing `query` with every vector
    /// (tests and the recall measurement of bench/recommender).
    pub fn brute_force(
        &self,
        query: &[f32],
        k: usize,
        excluded: &dyn Fn(&Uuid) -> bool,
    ) -> Vec<Hit> {
        let catalogue = self.catalogue.read().unwrap();
        let mut hits: Vec<Hit> = catalogue
            .videos
            .iter()
            .filter(|(id, e)| e.listable && !excluded(id))
            .filter_map(|(id, e)| {
                Some(Hit {
                    id: *id,
                    score: dot(query, e.vector.as_ref()?),
                })
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        hits.truncate(k);
        hits
    }

    /// "More like this": the `k` listable videos nearest to `video`, without itself. None
    /// if `video` has no vector (unknown, or not embedded yet).
    pub fn related(&self, video: Uuid, k: usize) -> Option<Vec<Hit>> {
        let vector = self.vector(&video)?;
        Some(self.nearest(&vector, k, &|id| *id == video))
    }
}

/// A set of videos to leave out of a search.
pub fn excluding(set: &HashSet<Uuid>) -> impl Fn(&Uuid) -> bool + '_ {
    move |id| set.contains(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unit vector pointing mostly along `axis`, nudged by `jitter`.
    fn unit(axis: usize, jitter: f32) -> Vec<f32> {
        let mut v = vec![0.01; 16];
        v[axis] = 1.0;
        v[(axis + 1) % 16] += jitter;
        crate::embed::normalize(&mut v);
        v
    }

    fn small() -> IndexConfig {
        IndexConfig {
            max_connections: 8,
            ef_construction: 50,
            ef_search: 32,
            capacity: 100,
        }
    }

    #[test]
    fn nearest_skips_the_unlisted_the_excluded_and_replaced_slots() {
        let index = Index::new(small());
        let a = Uuid::now_v7();
        let b = Uuid::now_v7();
        let c = Uuid::now_v7();
        index.upsert(a, unit(0, 0.0), true);
        index.upsert(b, unit(0, 0.1), true);
        index.upsert(c, unit(0, 0.2), true);
        let ids = |hits: Vec<Hit>| hits.into_iter().map(|h| h.id).collect::<Vec<_>>();
        assert_eq!(ids(index.nearest(&unit(0, 0.0), 3, &|_| false)), [a, b, c]);

        index.set_listable(b, false);
        assert_eq!(ids(index.nearest(&unit(0, 0.0), 3, &|_| false)), [a, c]);
        assert_eq!(ids(index.related(a, 3).unwrap()), [c]);

        // c moves far away: its old slot no longer counts.
        index.upsert(c, unit(8, 0.0), true);
        assert_eq!(ids(index.nearest(&unit(0, 0.0), 1, &|id| *id == a)), [c]);
        assert_eq!(index.dead_slots(), 1);

        index.remove(a);
        assert!(index.related(a, 3).is_none());
        assert_eq!(ids(index.nearest(&unit(0, 0.0), 3, &|_| false)), [c]);
    }

    #[test]
    fn distances_are_never_negative() {
        let v = unit(3, 0.3);
        let d = UnitCosine.eval(&v, &v);
        assert!((0.0..1e-6).contains(&d), "{d}");
        // A product a hair above 1 (rounding) still gives 0, not a negative distance.
        let w: Vec<f32> = v.iter().map(|x| x * 1.000_001).collect();
        assert_eq!(UnitCosine.eval(&w, &w), 0.0);
    }
}
