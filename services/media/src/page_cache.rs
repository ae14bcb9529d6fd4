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
//!
//! "One query" holds under a burst too: concurrent misses of one page do not each query.
//! The first takes the page's placeholder (quick_cache's guard) and loads; the others wait
//! for its rows. If that load fails (or its request is dropped), nothing is cached and the
//! next waiter loads instead, so an error is never served from the cache.

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

    /// Forgets every page: the next request of each loads it again. For changes that
    /// must not wait out the TTL on this replica (a moderator withholding a video);
    /// other replicas' pages still expire within the TTL.
    pub fn clear(&self) {
        self.pages.clear();
    }

    /// The page's rows, from the cache while fresh, else from `load` (and kept). While
    /// one caller loads a page, others asking for it wait for its rows; `load` is then
    /// dropped unrun.
    pub async fn get_or_load<F, E>(&self, key: K, load: F) -> Result<Arc<Vec<T>>, E>
    where
        F: Future<Output = Result<Vec<T>, E>>,
    {
        if self.ttl.is_zero() {
            return load.await.map(Arc::new);
        }
        loop {
            match self.pages.get_value_or_guard_async(&key).await {
                Ok((at, rows)) if at.elapsed() < self.ttl => return Ok(rows),
                // Stale: drop it (unless someone replaced it meanwhile) and ask again, so
                // the reload is coalesced like any other miss.
                Ok((_, stale)) => {
                    self.pages
                        .remove_if(&key, |(_, rows)| Arc::ptr_eq(rows, &stale));
                }
                Err(placeholder) => {
                    let rows = Arc::new(load.await?);
                    // Fails only if the page was inserted meanwhile (not through a guard).
                    let _ = placeholder.insert((Instant::now(), rows.clone()));
                    return Ok(rows);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    async fn load(loads: &AtomicUsize, rows: Vec<u32>) -> Result<Vec<u32>, ()> {
        loads.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok(rows)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_misses_of_one_page_load_it_once() {
        let cache: PageCache<&str, u32> = PageCache::new(Duration::from_secs(60));
        let loads = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let (cache, loads) = (cache.clone(), loads.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_load("feed", load(&loads, vec![1, 2, 3]))
                        .await
                        .unwrap()
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(*task.await.unwrap(), vec![1, 2, 3]);
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        // Another page is another load.
        cache
            .get_or_load("other", load(&loads, vec![4]))
            .await
            .unwrap();
        assert_eq!(loads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failed_load_caches_nothing_and_a_stale_page_is_reloaded() {
        let cache: PageCache<&str, u32> = PageCache::new(Duration::from_millis(30));
        let failed = cache
            .get_or_load("feed", async { Err::<Vec<u32>, _>("down") })
            .await;
        assert_eq!(failed, Err("down"));
        let loads = AtomicUsize::new(0);
        assert_eq!(
            *cache
                .get_or_load("feed", load(&loads, vec![1]))
                .await
                .unwrap(),
            vec![1]
        );
        assert_eq!(
            *cache
                .get_or_load("feed", load(&loads, vec![2]))
                .await
                .unwrap(),
            vec![1]
        );
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(
            *cache
                .get_or_load("feed", load(&loads, vec![3]))
                .await
                .unwrap(),
            vec![3]
        );
        assert_eq!(loads.load(Ordering::SeqCst), 2);
    }
}
