//! Snapshots of the index in S3, so that a restart or a new replica serves in seconds.
//!
//! Building the HNSW graph from PostgreSQL's vectors reads every vector and costs
//! O(n log n) distance computations: 10-12 s at 100,000 videos on two cores, growing with
//! the catalogue, and all of it on the database's primary (bench/RESULTS.md). Instead, the
//! follower ([`crate::follow`]) writes the graph and its catalogue to S3 every
//! `INDEX_SNAPSHOT_INTERVAL_SECS` when it changed, with the cursor they cover; a starting
//! replica downloads the newest snapshot, reads it back ([`Index::restore`]) and catches
//! up from PostgreSQL from that cursor (a few rows), so start-up costs a download and a
//! read, not a build.
//!
//! Layout under `INDEX_SNAPSHOT_PREFIX` in `S3_BUCKET`:
//!
//! ```text
//! manifest.json                  the newest complete snapshot (written last)
//! {id}/{basename}.hnsw.graph     hnsw_rs's dump of the graph
//! {id}/{basename}.hnsw.data      ... and of the vectors
//! {id}/catalogue.json            slot → video, and each video's slot, flags and stamp
//! ```
//!
//! A snapshot is usable only by a recommender with the same model (its vectors), the same
//! graph parameters, and the same database (the cursor means nothing elsewhere): the
//! manifest records all three, and anything else falls back to a build. One replica at a
//! time takes snapshots (a transaction-scoped advisory lock held through the upload), and
//! a manifest never goes back to an older cursor.

use std::{
    fs::File,
    io::{BufReader, BufWriter},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context as _, anyhow};
use aws_sdk_s3::{error::DisplayErrorContext, primitives::ByteStream};
use platform::s3::Bucket;
use sqlx::{PgPool, Postgres, Transaction};
use tokio::{task::JoinHandle, time::Instant};
use uuid::Uuid;

use crate::{
    Serving,
    config::IndexConfig,
    embed::Model,
    index::{CatalogueDump, Index},
};

const MANIFEST: &str = "manifest.json";
const CATALOGUE: &str = "catalogue.json";
/// The advisory lock of the replica taking a snapshot.
const SNAPSHOT_LOCK: i64 = 0x6b69_6e6f_7265_6302;

/// What a snapshot holds and who may use it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub id: Uuid,
    /// Unix seconds.
    pub taken_at: i64,
    /// `instance.id` of the recommender database it was taken from.
    pub database: Uuid,
    pub model: String,
    pub model_version: String,
    pub max_connections: usize,
    pub ef_construction: usize,
    /// The follower's `videos` cursor when the graph was dumped: every change up to it is
    /// in the snapshot, none after it.
    pub cursor: (i64, Uuid),
    /// hnsw_rs's file basename.
    pub basename: String,
    pub vectors: usize,
    pub slots: usize,
}

impl Manifest {
    fn graph_key(&self) -> String {
        format!("{}/{}.hnsw.graph", self.id, self.basename)
    }
    fn data_key(&self) -> String {
        format!("{}/{}.hnsw.data", self.id, self.basename)
    }
    fn catalogue_key(&self) -> String {
        format!("{}/{CATALOGUE}", self.id)
    }
}

/// The snapshots' place in S3.
#[derive(Clone)]
pub struct Store {
    pub bucket: Bucket,
    /// Key prefix, without a trailing slash.
    pub prefix: String,
}

impl Store {
    fn key(&self, name: &str) -> String {
        format!("{}/{name}", self.prefix)
    }

    /// The newest complete snapshot's manifest, if any.
    pub async fn manifest(&self) -> anyhow::Result<Option<Manifest>> {
        let got = self
            .bucket
            .client
            .get_object()
            .bucket(&self.bucket.name)
            .key(self.key(MANIFEST))
            .send()
            .await;
        match got {
            Ok(object) => {
                let bytes = object.body.collect().await?.into_bytes();
                Ok(Some(
                    serde_json::from_slice(&bytes).context("reading the manifest")?,
                ))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(anyhow!("{}", DisplayErrorContext(&e))),
        }
    }

    async fn download(&self, name: &str, to: &Path) -> anyhow::Result<()> {
        let object = self
            .bucket
            .client
            .get_object()
            .bucket(&self.bucket.name)
            .key(self.key(name))
            .send()
            .await
            .map_err(|e| anyhow!("{name}: {}", DisplayErrorContext(&e)))?;
        let mut file = tokio::fs::File::create(to).await?;
        tokio::io::copy(&mut object.body.into_async_read(), &mut file).await?;
        Ok(())
    }

    async fn upload(&self, name: &str, from: &Path) -> anyhow::Result<()> {
        let body = ByteStream::from_path(from).await?;
        self.bucket
            .client
            .put_object()
            .bucket(&self.bucket.name)
            .key(self.key(name))
            .body(body)
            .send()
            .await
            .map_err(|e| anyhow!("{name}: {}", DisplayErrorContext(&e)))?;
        Ok(())
    }

    /// Uploads the files dumped in `dir`, then the manifest that makes them the newest,
    /// then deletes older snapshots. Returns false (and uploads nothing) when the stored
    /// manifest is already as new.
    pub async fn publish(&self, dir: &Path, manifest: &Manifest) -> anyhow::Result<bool> {
        if let Some(stored) = self.manifest().await?
            && stored.database == manifest.database
            && stored.cursor >= manifest.cursor
        {
            return Ok(false);
        }
        let graph = format!("{}.hnsw.graph", manifest.basename);
        let data = format!("{}.hnsw.data", manifest.basename);
        self.upload(&manifest.graph_key(), &dir.join(graph)).await?;
        self.upload(&manifest.data_key(), &dir.join(data)).await?;
        self.upload(&manifest.catalogue_key(), &dir.join(CATALOGUE))
            .await?;
        let body = serde_json::to_vec_pretty(manifest)?;
        self.bucket
            .client
            .put_object()
            .bucket(&self.bucket.name)
            .key(self.key(MANIFEST))
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| anyhow!("manifest: {}", DisplayErrorContext(&e)))?;
        self.delete_older_than(manifest.id).await;
        Ok(true)
    }

    /// Deletes every snapshot but `current` (best effort: leftovers are only storage).
    async fn delete_older_than(&self, current: Uuid) {
        let keep = format!("{}/{current}/", self.prefix);
        let manifest = self.key(MANIFEST);
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .bucket
                .client
                .list_objects_v2()
                .bucket(&self.bucket.name)
                .prefix(format!("{}/", self.prefix))
                .set_continuation_token(token.take())
                .send()
                .await;
            let page = match page {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %DisplayErrorContext(&e), "old snapshots not listed");
                    return;
                }
            };
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key())
                    .map(str::to_owned),
            );
            match page.next_continuation_token() {
                Some(next) => token = Some(next.to_owned()),
                None => break,
            }
        }
        for key in keys {
            if key == manifest || key.starts_with(&keep) {
                continue;
            }
            let deleted = self
                .bucket
                .client
                .delete_object()
                .bucket(&self.bucket.name)
                .key(&key)
                .send()
                .await;
            if let Err(e) = deleted {
                tracing::warn!(key, error = %DisplayErrorContext(&e), "old snapshot not deleted");
            }
        }
    }
}

/// This database's identity (migrations/0003), recorded in manifests.
pub async fn database_id(pool: &PgPool) -> sqlx::Result<Uuid> {
    sqlx::query_scalar("SELECT id FROM instance")
        .fetch_one(pool)
        .await
}

/// Loads the newest usable snapshot; None when there is none or it does not fit (then the
/// caller builds from PostgreSQL). Returns the index and its manifest (the `videos`
/// cursor it covers).
pub async fn restore(
    store: &Store,
    database: Uuid,
    config: IndexConfig,
    model: &Model,
) -> anyhow::Result<Option<(Index, Manifest)>> {
    let Some(manifest) = store.manifest().await? else {
        tracing::info!("no index snapshot yet");
        return Ok(None);
    };
    let fits = manifest.database == database
        && manifest.model == model.name
        && manifest.model_version == model.version
        && manifest.max_connections == config.max_connections
        && manifest.ef_construction == config.ef_construction;
    if !fits {
        tracing::info!(snapshot = %manifest.id, "the index snapshot was made for another database, model or graph settings");
        return Ok(None);
    }
    // A graph keeps the slots of replaced and deleted vectors; when they are the majority
    // a build (which drops them) is worth its minutes.
    if manifest.slots > 2 * manifest.vectors.max(1) {
        tracing::info!(
            slots = manifest.slots,
            vectors = manifest.vectors,
            "the index snapshot is mostly dead slots; building afresh"
        );
        return Ok(None);
    }
    let dir = scratch_dir();
    let restored = async {
        tokio::fs::create_dir_all(&dir).await?;
        let files = [
            (
                manifest.graph_key(),
                dir.join(format!("{}.hnsw.graph", manifest.basename)),
            ),
            (
                manifest.data_key(),
                dir.join(format!("{}.hnsw.data", manifest.basename)),
            ),
            (manifest.catalogue_key(), dir.join(CATALOGUE)),
        ];
        let [(gk, gp), (dk, dp), (ck, cp)] = &files;
        let (g, d, c) = tokio::join!(
            store.download(gk, gp),
            store.download(dk, dp),
            store.download(ck, cp),
        );
        g?;
        d?;
        c?;
        let (dir, basename) = (dir.clone(), manifest.basename.clone());
        tokio::task::spawn_blocking(move || {
            let file = File::open(dir.join(CATALOGUE))?;
            let catalogue: CatalogueDump = serde_json::from_reader(BufReader::new(file))?;
            Index::restore(config, &dir, &basename, catalogue)
        })
        .await?
    }
    .await;
    let _ = tokio::fs::remove_dir_all(&dir).await;
    let index = restored.with_context(|| format!("snapshot {}", manifest.id))?;
    Ok(Some((index, manifest)))
}

/// When this replica takes its next snapshot.
pub struct Snapshots {
    pub store: Store,
    interval: Duration,
    database: Uuid,
    model: (String, String),
    /// When the last attempt was, and the cursor the newest snapshot covers.
    last_attempt: Instant,
    covered: Option<(i64, Uuid)>,
}

impl Snapshots {
    /// `covered`: the cursor of the snapshot the index was restored from, if it was; an
    /// index built from scratch is worth a snapshot at once.
    pub fn new(
        store: Store,
        interval: Duration,
        database: Uuid,
        model: &Model,
        covered: Option<(i64, Uuid)>,
    ) -> Self {
        let now = Instant::now();
        Self {
            store,
            interval,
            database,
            model: (model.name.clone(), model.version.clone()),
            last_attempt: match covered {
                Some(_) => now,
                None => now.checked_sub(interval).unwrap_or(now),
            },
            covered,
        }
    }

    /// Whether the index moved past the last snapshot and the interval has passed.
    pub fn due(&self, cursor: (i64, Uuid), now: Instant) -> bool {
        now.duration_since(self.last_attempt) >= self.interval && self.covered != Some(cursor)
    }
}

fn scratch_dir() -> PathBuf {
    std::env::temp_dir().join(format!("kino-index-{}", Uuid::now_v7()))
}

/// Whether this replica may take a snapshot now: a transaction holding the snapshot lock
/// (released when it ends), or None while another replica holds it.
async fn lease(pool: &PgPool) -> sqlx::Result<Option<Transaction<'static, Postgres>>> {
    let mut tx = pool.begin().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(SNAPSHOT_LOCK)
        .fetch_one(&mut *tx)
        .await?;
    Ok(locked.then_some(tx))
}

/// Dumps the index covering `cursor` (the caller is the only inserter, so nothing moves
/// meanwhile) and uploads it in the background; returns the upload's task.
pub async fn take(
    snapshots: &mut Snapshots,
    pool: &PgPool,
    serving: &Arc<Serving>,
    cursor: (i64, Uuid),
) -> Option<JoinHandle<()>> {
    snapshots.last_attempt = Instant::now();
    if serving.index.slots() == 0 {
        return None;
    }
    let lease = match lease(pool).await {
        Ok(Some(lease)) => lease,
        Ok(None) => return None, // another replica is taking one
        Err(e) => {
            tracing::warn!(error = %e, "no snapshot: the database did not answer");
            return None;
        }
    };
    let started = Instant::now();
    let dir = scratch_dir();
    let dumped = {
        let (serving, dir) = (serving.clone(), dir.clone());
        tokio::task::spawn_blocking(move || -> anyhow::Result<(String, usize, usize)> {
            std::fs::create_dir_all(&dir)?;
            let (basename, catalogue) = serving.index.dump(&dir)?;
            let vectors = catalogue.videos.iter().filter(|v| v.1.is_some()).count();
            let slots = catalogue.slots.len();
            let file = File::create(dir.join(CATALOGUE))?;
            serde_json::to_writer(BufWriter::new(file), &catalogue)?;
            Ok((basename, vectors, slots))
        })
        .await
    };
    let (basename, vectors, slots) = match dumped {
        Ok(Ok(dumped)) => dumped,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "no snapshot: the dump failed");
            let _ = tokio::fs::remove_dir_all(&dir).await;
            return None;
        }
        Err(e) => {
            tracing::warn!(error = %e, "no snapshot: the dump panicked");
            let _ = tokio::fs::remove_dir_all(&dir).await;
            return None;
        }
    };
    let dump_secs = started.elapsed().as_secs_f64();
    let manifest = Manifest {
        id: Uuid::now_v7(),
        taken_at: time::OffsetDateTime::now_utc().unix_timestamp(),
        database: snapshots.database,
        model: snapshots.model.0.clone(),
        model_version: snapshots.model.1.clone(),
        max_connections: serving.index.max_connections(),
        ef_construction: serving.index.ef_construction(),
        cursor,
        basename,
        vectors,
        slots,
    };
    snapshots.covered = Some(cursor);
    let store = snapshots.store.clone();
    Some(tokio::spawn(async move {
        match store.publish(&dir, &manifest).await {
            Ok(true) => {
                metrics::counter!("recommender_snapshots_total").increment(1);
                tracing::info!(
                    snapshot = %manifest.id, vectors, slots, dump_secs,
                    total_secs = started.elapsed().as_secs_f64(),
                    "index snapshot stored"
                );
            }
            Ok(false) => tracing::debug!("a newer snapshot is already stored"),
            Err(e) => tracing::warn!(error = %e, "index snapshot not stored"),
        }
        let _ = tokio::fs::remove_dir_all(&dir).await;
        drop(lease);
    }))
}
