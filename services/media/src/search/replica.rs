//! Each media replica's search state, and how it follows the catalogue.
//!
//! Every replica holds its own index (super::index) and suggestion set (super::suggest)
//! in memory, so a search never leaves the process until the page's rows are read. They
//! follow PostgreSQL, the catalogue's one source of truth, whichever replica or consumer
//! wrote it:
//!
//! 1. `LISTEN media_search` on a dedicated connection. A trigger on `videos`
//!    (migrations/0007_search_notify.sql) notifies a video's id when anything a search
//!    reads changes: text, tags, category, visibility, status, deletion, publication,
//!    duration. PostgreSQL delivers notifications after commit, in commit order.
//! 2. Read every listed video and build the index from scratch (`bench/media/run` reports
//!    the time at 100,000 videos). Notifications that arrive meanwhile wait in the
//!    connection.
//! 3. Then, for each batch of notified ids (gathered for [`BATCH_WINDOW`]), read those rows
//!    and replace or remove their documents: a change is searchable within about
//!    `BATCH_WINDOW` plus one commit.
//!
//! Notifications are not stored: one sent while the connection is down is lost. So a
//! session that loses its connection ends, and the next one (a second later) starts again
//! at step 1 with a full rebuild, swapped in when ready; searches use the previous index
//! meanwhile. Whatever the index says, a result page is read from PostgreSQL with the
//! listing rule applied again, so a video just hidden or deleted never shows, even before
//! its notification is applied.
//!
//! Suggestions are rebuilt from the whole listed catalogue, which costs more than an index
//! update, so at most every [`SUGGEST_MIN_INTERVAL`] or ten times the last build's
//! duration, whichever is longer (bounding the work to ~10 % of a core under constant
//! change). A title whose videos are no longer listed is left out at once (the listed set
//! is updated with the index); a new title, tag or channel appears with the next rebuild.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use platform::{Shutdown, background::reconnecting, postgres::Postgres};
use sqlx::{PgPool, postgres::PgListener};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{
    index::{Document, Engine},
    suggest::{self, Entry, Suggestions},
};
use crate::{catalogue::store::LISTED, users::directory::Directory};

/// The notification channel the trigger sends on.
pub const CHANNEL: &str = "media_search";
/// How long notified ids are gathered before they are applied together.
const BATCH_WINDOW: Duration = Duration::from_millis(50);
/// Ids applied together, at most.
const MAX_BATCH: usize = 1_000;
const SUGGEST_MIN_INTERVAL: Duration = Duration::from_secs(1);
/// How long a channel's name is reused before it is looked up again (renames).
const CHANNEL_NAMES_TTL: Duration = Duration::from_secs(60);

/// The replica's search state. Cheap to clone; empty until the first build.
#[derive(Clone, Default)]
pub struct SearchIndex(Arc<State>);

#[derive(Default)]
struct State {
    engine: RwLock<Option<Arc<Engine>>>,
    /// The ids of the listed videos the index holds.
    listed: RwLock<HashSet<Uuid>>,
    suggestions: RwLock<Arc<Suggestions>>,
    /// Bumped whenever the index changes: part of the result page cache's key, so a
    /// cached page never outlives the index state it was read from.
    generation: AtomicU64,
}

impl SearchIndex {
    /// The current index; `None` until the first build finished.
    pub fn engine(&self) -> Option<Arc<Engine>> {
        self.0.engine.read().expect("poisoned").clone()
    }

    pub fn suggestions(&self) -> Arc<Suggestions> {
        self.0.suggestions.read().expect("poisoned").clone()
    }

    /// Which state of the index searches see now (see `State::generation`).
    pub fn generation(&self) -> u64 {
        self.0.generation.load(Ordering::Acquire)
    }

    /// Calls `f` with the set of listed video ids (held briefly: never across an await).
    pub fn with_listed<T>(&self, f: impl FnOnce(&HashSet<Uuid>) -> T) -> T {
        f(&self.0.listed.read().expect("poisoned"))
    }
}

impl platform::health::Check for SearchIndex {
    /// Ready once the index was built (searches are answered from it).
    async fn check(&self) -> Result<(), String> {
        match self.engine() {
            Some(_) => Ok(()),
            None => Err("the search index is being built".into()),
        }
    }
}

/// Keeps `index` in step with the catalogue until shutdown.
///
/// `database_url` is the catalogue's database: notifications come on a connection of
/// their own, outside the pool that serves requests.
pub fn spawn(
    index: SearchIndex,
    db: Postgres,
    database_url: String,
    directory: Directory,
    shutdown: &Shutdown,
) {
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        reconnecting("search index", Duration::from_secs(1), &shutdown, || {
            session(
                index.clone(),
                db.clone(),
                database_url.clone(),
                directory.clone(),
                shutdown.clone(),
            )
        })
        .await;
    });
}

/// A listed video: its document, and what suggestions need besides.
struct Listed {
    document: Document,
    owner: Uuid,
    views: i64,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    owner_id: Uuid,
    title: String,
    description: String,
    tags: Vec<String>,
    category: Option<String>,
    published_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    duration_seconds: Option<f64>,
    views_count: i64,
    listed: bool,
}

impl From<Row> for Listed {
    fn from(r: Row) -> Self {
        // The same instant the catalogue's cursors use (VideoRow::feed_cursor).
        let at = r.published_at.unwrap_or(r.created_at);
        Self {
            document: Document {
                id: r.id,
                title: r.title,
                description: r.description,
                tags: r.tags,
                category: r.category,
                published: (at.unix_timestamp_nanos() / 1_000) as i64,
                duration_seconds: r.duration_seconds,
            },
            owner: r.owner_id,
            views: r.views_count,
        }
    }
}

fn select(filter: &str) -> String {
    format!(
        "SELECT id, owner_id, title, description, tags, category, published_at, created_at,
                duration_seconds, views_count, ({LISTED}) AS listed
         FROM videos WHERE {filter}"
    )
}

async fn session(
    index: SearchIndex,
    db: Postgres,
    database_url: String,
    directory: Directory,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    // The schema first (Postgres::start migrates in the background at start).
    while db.migrated().is_err() {
        tokio::select! {
            () = shutdown.triggered() => return Ok(()),
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    let pool = db.pool().clone();
    let mut notified = listen(&database_url).await?;

    let started = Instant::now();
    let rows: Vec<Row> = sqlx::query_as(&select(LISTED)).fetch_all(&pool).await?;
    let mut catalogue: HashMap<Uuid, Listed> =
        rows.into_iter().map(|r| (r.id, Listed::from(r))).collect();
    let documents: Vec<Document> = catalogue.values().map(|l| l.document.clone()).collect();
    let engine = tokio::task::spawn_blocking(move || Engine::build(documents)).await??;
    *index.0.listed.write().expect("poisoned") = catalogue.keys().copied().collect();
    *index.0.engine.write().expect("poisoned") = Some(Arc::new(engine));
    index.0.generation.fetch_add(1, Ordering::Release);
    metrics::gauge!("media_search_indexed_videos").set(catalogue.len() as f64);
    tracing::info!(
        videos = catalogue.len(),
        millis = started.elapsed().as_millis() as u64,
        "search index built"
    );

    let mut names = ChannelNames::default();
    let mut rebuild_at = Some(Instant::now());
    // Suggestions are not rebuilt before this (see the module's notes).
    let mut not_before = Instant::now();
    let stop = shutdown.triggered();
    tokio::pin!(stop);
    loop {
        let due = rebuild_at.unwrap_or_else(|| Instant::now() + CHANNEL_NAMES_TTL);
        tokio::select! {
            () = &mut stop => return Ok(()),
            () = tokio::time::sleep_until(due.into()) => {
                let took = rebuild_suggestions(&index, &catalogue, &mut names, &directory).await;
                rebuild_at = None;
                not_before = Instant::now() + SUGGEST_MIN_INTERVAL.max(took * 10);
            }
            first = notified.ids.recv() => {
                let Some(first) = first else {
                    // The listening task ended: its connection broke.
                    return match (&mut notified.task).await {
                        Ok(Err(e)) => Err(e),
                        _ => Err(anyhow::anyhow!("notification listener stopped")),
                    };
                };
                let mut ids = vec![first];
                let window = tokio::time::Instant::now() + BATCH_WINDOW;
                while ids.len() < MAX_BATCH {
                    match tokio::time::timeout_at(window, notified.ids.recv()).await {
                        Ok(Some(id)) => ids.push(id),
                        _ => break,
                    }
                }
                apply(&index, &pool, &mut catalogue, ids).await?;
                rebuild_at.get_or_insert(not_before.max(Instant::now()));
            }
        }
    }
}

/// Notified video ids, from a task that owns the listening connection.
struct Notified {
    ids: mpsc::Receiver<Uuid>,
    task: AbortOnDrop,
}

/// The listening task is aborted with the session that started it.
struct AbortOnDrop(tokio::task::JoinHandle<anyhow::Result<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl std::future::Future for AbortOnDrop {
    type Output = Result<anyhow::Result<()>, tokio::task::JoinError>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

/// Starts listening; the returned task forwards ids until its connection is lost (then it
/// ends with an error, and the session with it: notifications may have been missed).
async fn listen(database_url: &str) -> anyhow::Result<Notified> {
    let mut listener = PgListener::connect(database_url).await?;
    listener.listen(CHANNEL).await?;
    let (tx, ids) = mpsc::channel(4 * MAX_BATCH);
    let task = tokio::spawn(async move {
        loop {
            let Some(notification) = listener.try_recv().await? else {
                anyhow::bail!("notification connection lost");
            };
            let Ok(id) = notification.payload().parse::<Uuid>() else {
                continue;
            };
            if tx.send(id).await.is_err() {
                return Ok(());
            }
        }
    });
    Ok(Notified {
        ids,
        task: AbortOnDrop(task),
    })
}

/// Reads the notified rows and replaces or removes their documents.
async fn apply(
    index: &SearchIndex,
    pool: &PgPool,
    catalogue: &mut HashMap<Uuid, Listed>,
    mut ids: Vec<Uuid>,
) -> anyhow::Result<()> {
    ids.sort_unstable();
    ids.dedup();
    let rows: Vec<Row> = sqlx::query_as(&select("id = ANY($1)"))
        .bind(&ids)
        .fetch_all(pool)
        .await?;
    let mut upserts = Vec::new();
    let mut removals: HashSet<Uuid> = ids.iter().copied().collect();
    for row in rows {
        if row.listed {
            removals.remove(&row.id);
            let listed = Listed::from(row);
            upserts.push(listed.document.clone());
            catalogue.insert(listed.document.id, listed);
        }
    }
    let removals: Vec<Uuid> = removals.into_iter().collect();
    for id in &removals {
        catalogue.remove(id);
    }
    let Some(engine) = index.engine() else {
        return Ok(());
    };
    let added: Vec<Uuid> = upserts.iter().map(|d| d.id).collect();
    let gone = removals.clone();
    tokio::task::spawn_blocking(move || engine.apply(&upserts, &removals)).await??;
    {
        let mut listed = index.0.listed.write().expect("poisoned");
        listed.extend(added);
        for id in &gone {
            listed.remove(id);
        }
    }
    index.0.generation.fetch_add(1, Ordering::Release);
    metrics::gauge!("media_search_indexed_videos").set(catalogue.len() as f64);
    Ok(())
}

/// Channel display names, looked up through the user directory (cached there).
#[derive(Default)]
struct ChannelNames {
    names: HashMap<Uuid, String>,
    fetched: Option<Instant>,
}

/// Builds the suggestion set from the listed catalogue; returns how long it took.
async fn rebuild_suggestions(
    index: &SearchIndex,
    catalogue: &HashMap<Uuid, Listed>,
    names: &mut ChannelNames,
    directory: &Directory,
) -> Duration {
    let started = Instant::now();
    if names
        .fetched
        .is_none_or(|at| at.elapsed() > CHANNEL_NAMES_TTL)
    {
        names.names.clear();
        names.fetched = Some(Instant::now());
    }
    let missing: Vec<Uuid> = catalogue
        .values()
        .map(|l| l.owner)
        .collect::<HashSet<_>>()
        .into_iter()
        .filter(|owner| !names.names.contains_key(owner))
        .collect();
    for chunk in missing.chunks(1_000) {
        match directory.lookup(chunk).await {
            Ok(users) => names.names.extend(
                users
                    .into_values()
                    .map(|u| (u.id, u.display_name.unwrap_or(u.username))),
            ),
            // Channel names come back with the next rebuild.
            Err(error) => tracing::warn!(%error, "channel names for suggestions"),
        }
    }
    let sources: Vec<(Uuid, String, Vec<String>, Uuid, i64)> = catalogue
        .values()
        .map(|l| {
            let d = &l.document;
            (d.id, d.title.clone(), d.tags.clone(), l.owner, l.views)
        })
        .collect();
    let channel_names = names.names.clone();
    let built = tokio::task::spawn_blocking(move || {
        Suggestions::build(suggestion_entries(&sources, &channel_names))
    })
    .await;
    match built {
        Ok(suggestions) => {
            metrics::gauge!("media_search_suggestions").set(suggestions.len() as f64);
            *index.0.suggestions.write().expect("poisoned") = Arc::new(suggestions);
        }
        Err(error) => tracing::error!(%error, "building suggestions"),
    }
    started.elapsed()
}

/// The candidates: each distinct title (weighed by its videos' views), tag (by videos)
/// and channel with listed videos (by videos).
pub fn suggestion_entries(
    sources: &[(Uuid, String, Vec<String>, Uuid, i64)],
    channel_names: &HashMap<Uuid, String>,
) -> Vec<Entry> {
    let mut titles: HashMap<String, Entry> = HashMap::new();
    let mut tags: HashMap<String, Entry> = HashMap::new();
    let mut channels: HashMap<Uuid, u64> = HashMap::new();
    for (id, title, video_tags, owner, views) in sources {
        let key = suggest::normalise(title);
        if !key.is_empty() {
            let entry = titles.entry(key).or_insert_with(|| Entry {
                text: title.clone(),
                kind: suggest::Kind::Title,
                weight: 0,
                videos: Vec::new(),
                channel: None,
            });
            entry.weight += 1 + (*views).max(0) as u64;
            entry.videos.push(*id);
        }
        for tag in video_tags {
            let entry = tags.entry(tag.to_lowercase()).or_insert_with(|| Entry {
                text: tag.to_lowercase(),
                kind: suggest::Kind::Tag,
                weight: 0,
                videos: Vec::new(),
                channel: None,
            });
            entry.weight += 1;
        }
        *channels.entry(*owner).or_default() += 1;
    }
    let channels = channels.into_iter().filter_map(|(owner, videos)| {
        Some(Entry {
            text: channel_names.get(&owner)?.clone(),
            kind: suggest::Kind::Channel,
            weight: videos,
            videos: Vec::new(),
            channel: Some(owner),
        })
    });
    titles
        .into_values()
        .chain(tags.into_values())
        .chain(channels)
        .collect()
}
