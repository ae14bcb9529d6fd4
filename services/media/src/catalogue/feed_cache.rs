//! A micro-cache of feed pages.
//!
//! The feed is the same for every viewer (only `viewerHasLiked` and the like differ, and
//! those are resolved per viewer, outside this cache). Under load, thousands of requests a
//! second ask for the same first pages; keeping each page's rows for a short time (1 s by
//! default, `FEED_CACHE_MILLIS`) turns that into one query per page per second. A page is
//! a consistent snapshot, so keyset pagination stays exact; a new video shows up at most
//! that much later.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use quick_cache::sync::Cache;

use super::VideoRow;

/// (the `after` cursor as sent, page size)
type Key = (Option<String>, usize);
/// When the page was loaded, and its rows.
type Entry = (Instant, Arc<Vec<VideoRow>>);

#[derive(Clone)]
pub struct FeedCache {
    pages: Arc<Cache<Key, Entry>>,
    ttl: Duration,
}

impl FeedCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            pages: Arc::new(Cache::new(1024)),
            ttl,
        }
    }

    /// The page's rows, from the cache while fresh, else from `load` (and kept).
    pub async fn get_or_load<F, E>(
        &self,
        after: Option<String>,
        first: usize,
        load: F,
    ) -> Result<Arc<Vec<VideoRow>>, E>
    where
        F: Future<Output = Result<Vec<VideoRow>, E>>,
    {
        if self.ttl.is_zero() {
            return load.await.map(Arc::new);
        }
        let key = (after, first);
        if let Some((at, rows)) = self.pages.get(&key)
            && at.elapsed() < self.ttl
        {
            return Ok(rows);
        }
        let rows = Arc::new(load.await?);
        self.pages.insert(key, (Instant::now(), rows.clone()));
        Ok(rows)
    }
}
