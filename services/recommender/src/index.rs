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
//! time until the graph is built afresh from PostgreSQL (a start without a usable
//! snapshot; [`Index::dead_slots`] is exported as a metric).
//!
//! The graph and the catalogue can be written to files and read back
//! ([`Index::dump`], [`Index::restore`]): [`crate::snapshot`] keeps them in S3 so a new
//! replica starts in seconds instead of rebuilding the graph.
//!
//! Searches run under the catalogue's read lock (the filter reads it for every
//! candidate); writers take the write lock only to flip a flag or record a slot, never
//! while inserting into the graph.

use std::{
    collections::{HashMap, HashSet},
    path::Path,
    sync::{Arc, RwLock},
};

use anyhow::Context as _;
use hnsw_rs::{
    api::AnnT,
    hnswio::HnswIo,
    prelude::{Distance, Hnsw},
};
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
    /// The change stamp that set `vector` (`videos.embedding_seq`, crate::changes): a
    /// change that carries another stamp brings a new vector.
    pub stamp: i64,
}

/// One vector to add: `(video, vector, listable, stamp)`.
pub type Row = (Uuid, Vec<f32>, bool, i64);

/// The catalogue as written beside a graph dump: the graph holds slot numbers and
/// vectors, this says whose they are.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct CatalogueDump {
    /// slot → video, for every slot in the graph.
    pub slots: Vec<Uuid>,
    /// Every known video: id, its current slot, listable, the stamp of its vector.
    pub videos: Vec<(Uuid, Option<usize>, bool, i64)>,
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

    /// Builds an index from rows at once, inserting in parallel (start-up without a
    /// snapshot, benchmarks).
    pub fn build(config: IndexConfig, rows: Vec<Row>) -> Self {
        let index = Self::new(config);
        index.upsert_many(rows);
        index
    }

    /// Adds or replaces `video`'s vector. The old slot (if any) stops counting at once.
    pub fn upsert(&self, video: Uuid, vector: Vec<f32>, listable: bool, stamp: i64) {
        self.upsert_many(vec![(video, vector, listable, stamp)]);
    }

    /// [`Index::upsert`] for many vectors, inserted into the graph in parallel.
    pub fn upsert_many(&self, rows: Vec<Row>) {
        if rows.is_empty() {
            return;
        }
        let first = {
            let mut catalogue = self.catalogue.write().unwrap();
            let first = catalogue.slots.len();
            catalogue.slots.extend(rows.iter().map(|row| row.0));
            first
        };
        // Into the graph first, outside the lock; only then do the slots become current,
        // so a search never prefers a slot the graph cannot reach yet.
        let data: Vec<(&[f32], usize)> = rows
            .iter()
            .enumerate()
            .map(|(i, row)| (row.1.as_slice(), first + i))
            .collect();
        if data.len() == 1 {
            self.graph.insert_slice(data[0]);
        } else {
            self.graph.parallel_insert_slice(&data);
        }
        let mut catalogue = self.catalogue.write().unwrap();
        for (i, (video, vector, listable, stamp)) in rows.into_iter().enumerate() {
            let entry = catalogue.videos.entry(video).or_default();
            entry.slot = Some(first + i);
            entry.vector = Some(Arc::from(vector));
            entry.listable = listable;
            entry.stamp = stamp;
        }
    }

    /// Writes the graph (`{basename}.hnsw.graph`, `{basename}.hnsw.data`, hnsw_rs's
    /// format) into `dir` and returns the basename used with the catalogue. The caller
    /// must not insert meanwhile (the follower, the only writer, is the one dumping);
    /// searches go on.
    pub fn dump(&self, dir: &Path) -> anyhow::Result<(String, CatalogueDump)> {
        let catalogue = self.catalogue.read().unwrap();
        let basename = self
            .graph
            .file_dump(dir, "index")
            .context("dumping the HNSW graph")?;
        let videos = catalogue
            .videos
            .iter()
            .map(|(id, e)| (*id, e.slot, e.listable, e.stamp))
            .collect();
        Ok((
            basename,
            CatalogueDump {
                slots: catalogue.slots.clone(),
                videos,
            },
        ))
    }

    /// Reads back what [`Index::dump`] wrote. The graph's own parameters (M,
    /// ef_construction) come from the dump; `config` gives the search beam.
    pub fn restore(
        config: IndexConfig,
        dir: &Path,
        basename: &str,
        dump: CatalogueDump,
    ) -> anyhow::Result<Self> {
        // hnsw_rs ties the loaded graph's lifetime to its loader (it may memory-map the
        // data); the loader is small and a process loads one graph, so it lives forever.
        let io: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(dir, basename)));
        let graph: Hnsw<'static, f32, UnitCosine> = io
            .load_hnsw::<f32, UnitCosine>()
            .context("reading the HNSW graph")?;
        // The vectors live in the graph's points; the catalogue keeps its own copy of the
        // current ones (for `related` and tastes) without reading PostgreSQL.
        let mut by_slot: HashMap<usize, Arc<[f32]>> = HashMap::new();
        if graph.get_nb_point() > 0 {
            for point in graph.get_point_indexation() {
                by_slot.insert(point.get_origin_id(), Arc::from(point.get_v()));
            }
        }
        anyhow::ensure!(
            by_slot.len() == dump.slots.len(),
            "the graph has {} points, the catalogue {} slots",
            by_slot.len(),
            dump.slots.len()
        );
        let mut videos = HashMap::with_capacity(dump.videos.len());
        for (id, slot, listable, stamp) in dump.videos {
            let vector =
                match slot {
                    Some(slot) => Some(by_slot.get(&slot).cloned().with_context(|| {
                        format!("video {id}'s slot {slot} is not in the graph")
                    })?),
                    None => None,
                };
            videos.insert(
                id,
                Entry {
                    slot,
                    vector,
                    listable,
                    stamp,
                },
            );
        }
        Ok(Self {
            graph,
            catalogue: RwLock::new(Catalogue {
                slots: dump.slots,
                videos,
            }),
            config,
        })
    }

    /// The graph's links per node (M), as built or as restored.
    pub fn max_connections(&self) -> usize {
        usize::from(self.graph.get_max_nb_connection())
    }

    /// Candidates examined per insertion, as built or as restored.
    pub fn ef_construction(&self) -> usize {
        self.graph.get_ef_construction()
    }

    /// Slots in the graph, current or not.
    pub fn slots(&self) -> usize {
        self.catalogue.read().unwrap().slots.len()
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

    /// Drops `video`'s vector but keeps its listability (its vector was made by another
    /// model and waits to be embedded again).
    pub fn drop_vector(&self, video: Uuid, listable: bool) {
        let mut catalogue = self.catalogue.write().unwrap();
        let entry = catalogue.videos.entry(video).or_default();
        *entry = Entry {
            listable,
            ..Entry::default()
        };
    }

    /// The stamp of `video`'s vector, if it has one.
    pub fn stamp(&self, video: &Uuid) -> Option<i64> {
        let catalogue = self.catalogue.read().unwrap();
        let entry = catalogue.videos.get(video)?;
        entry.vector.as_ref().map(|_| entry.stamp)
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
        index.upsert(a, unit(0, 0.0), true, 1);
        index.upsert(b, unit(0, 0.1), true, 1);
        index.upsert(c, unit(0, 0.2), true, 1);
        let ids = |hits: Vec<Hit>| hits.into_iter().map(|h| h.id).collect::<Vec<_>>();
        assert_eq!(ids(index.nearest(&unit(0, 0.0), 3, &|_| false)), [a, b, c]);

        index.set_listable(b, false);
        assert_eq!(ids(index.nearest(&unit(0, 0.0), 3, &|_| false)), [a, c]);
        assert_eq!(ids(index.related(a, 3).unwrap()), [c]);

        // c moves far away: its old slot no longer counts.
        index.upsert(c, unit(8, 0.0), true, 2);
        assert_eq!(ids(index.nearest(&unit(0, 0.0), 1, &|id| *id == a)), [c]);
        assert_eq!(index.dead_slots(), 1);

        index.remove(a);
        assert!(index.related(a, 3).is_none());
        assert_eq!(ids(index.nearest(&unit(0, 0.0), 3, &|_| false)), [c]);
    }

    #[test]
    fn a_dumped_index_restores_with_the_same_answers_and_takes_new_vectors() {
        let index = Index::new(small());
        let ids: Vec<Uuid> = (0..16).map(|_| Uuid::now_v7()).collect();
        for (i, id) in ids.iter().enumerate() {
            index.upsert(*id, unit(i, 0.05), true, i as i64 + 1);
        }
        index.set_listable(ids[3], false);
        index.upsert(ids[5], unit(9, 0.2), true, 100); // leaves a dead slot
        let pending = Uuid::now_v7();
        index.set_listable(pending, true); // known, not embedded yet

        let dir = std::env::temp_dir().join(format!("kino-index-test-{}", Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let (basename, dump) = index.dump(&dir).unwrap();
        let restored = Index::restore(small(), &dir, &basename, dump).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();

        assert_eq!(restored.len(), index.len());
        assert_eq!(restored.slots(), 17);
        assert_eq!(restored.dead_slots(), 1);
        assert_eq!(restored.max_connections(), 8);
        assert_eq!(restored.stamp(&ids[5]), Some(100));
        assert_eq!(restored.stamp(&pending), None);
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(restored.vector(id), index.vector(id));
            assert_eq!(restored.related(*id, 5), index.related(*id, 5), "video {i}");
            let query = unit(i, 0.0);
            assert_eq!(
                restored.nearest(&query, 4, &|_| false),
                index.nearest(&query, 4, &|_| false)
            );
        }
        // Still a working graph: a new vector is found.
        let late = Uuid::now_v7();
        restored.upsert(late, unit(2, 0.01), true, 101);
        assert_eq!(restored.nearest(&unit(2, 0.01), 1, &|_| false)[0].id, late);
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
