//! A micro-cache of list pages: the feed, and search results.
//!
//! A feed page is the same for every viewer, and so is a search result page for the same
//! query (only `viewerHasLiked` and the like differ, and those are resolved per viewer,
//! outside this cache). Under load, thousands of requests a second ask for the same first
//! pages and the same popular queries; keeping each page's rows for a short time (1 s by
//! default, `FEED_CACHE_MILLIS` / `SEARCH_CACHE_MILLIS`) turns that into one query per page
//! per second and per replica. A page is a consistent snapshot, so keyset pagination stays
//! exact; a change shows up at most that much later (search engines do the same: a 1 s
//! refresh interval is Elasticsearch's default).

use std::{
    hash::Hash,
    sync::Arc,
    time::{Duration, Instant},
};

use quick_cache::sync::Cache;

/// A cached page: when it was loaded, and its rows.
type Entry<T> = (Instant, Arc<Vec<T>>);

/// Pages by key (whatever identifies a page: its arguments and cursor).
pub struct PageCache<K, T> {
    pages: Arc<Cache<K, Entry<T>>>,
    ttl: Duration,
}

// Derived Clone would require `K: Clone, T: Clone`; only the Arc is cloned.
impl<K, T> Clone for PageCache<K, T> {
    fn clone(&self) -> Self {
        Self {
            pages: self.pages.clone(),
            ttl: self.ttl,
        }
    }
}

impl<K: Eq + Hash + Clone, T> PageCache<K, T> {
    /// Keeps up to 1,024 pages, each for `ttl` (zero: no caching at all).
    pub fn new(ttl: Duration) -> Self {
        Self {
            pages: Arc::new(Cache::new(1024)),
            ttl,
        }
    }

    /// The page's rows, from the cache while fresh, else from `load` (and kept).
    pub async fn get_or_load<F, E>(&self, key: K, load: F) -> Result<Arc<Vec<T>>, E>
    where
        F: Future<Output = Result<Vec<T>, E>>,
    {
        if self.ttl.is_zero() {
            return load.await.map(Arc::new);
        }
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
