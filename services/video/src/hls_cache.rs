//! A bounded in-memory cache of the files of HLS trees that never change: segments, init
//! segments and stills.
//!
//! Why: the players of a popular video all ask for the same few segments. Without a cache
//! each request is one S3 GET streamed through this service, so S3 serves every viewer's
//! bytes and this service holds a read buffer from S3 per response in flight. With it, a
//! hot segment is read from S3 once per replica and then answered from memory, the body
//! handed to hyper as one shared buffer (no copy per response).
//!
//! What is cached: keys whose content never changes (a transcode writes each segment and
//! still once, under a fresh key; crate::hls marks them `immutable` for HTTP caches too).
//! Playlists and WebVTT files are never cached: a caption added rewrites the master. Nor
//! are `Range` requests answered from here: they go to S3 as before.
//!
//! Why it is safe: the cache holds bytes, not decisions. crate::hls checks the viewer,
//! the video's state and the signed token on every request before it asks the cache, so a
//! video made private, hidden or deleted stops being served at once; a video's keys are
//! never reused for another video.
//!
//! Memory is bounded twice (`HLS_CACHE_BYTES`, default 24 MiB; 0 turns the cache off):
//! the cache holds at most that many bytes, an object larger than an eighth of it is never
//! kept (it streams from S3 exactly as without the cache), and at most [`FILLS`] objects
//! are being read into memory at once; other misses wait. Concurrent misses of one key read
//! it once: the first takes quick_cache's placeholder and fills it, the others wait for
//! its bytes (if that fill fails or finds the object too large, nothing is kept and the
//! next waiter tries).

use std::future::Future;

use aws_sdk_s3::operation::get_object::GetObjectOutput;
use bytes::{Bytes, BytesMut};
use quick_cache::{OptionsBuilder, Weighter, sync::Cache};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// How many objects may be read from S3 into memory at once.
pub const FILLS: usize = 4;

/// A cached file: its bytes and the ETag S3 gave it.
#[derive(Clone)]
pub struct CachedObject {
    pub bytes: Bytes,
    pub e_tag: Option<String>,
}

/// Entries weigh their size in bytes.
#[derive(Clone)]
struct BySize;

impl Weighter<String, CachedObject> for BySize {
    fn weight(&self, _key: &String, object: &CachedObject) -> u64 {
        object.bytes.len() as u64
    }
}

/// What a lookup found.
pub enum Lookup {
    /// From memory (already there, or just read in whole).
    Cached(CachedObject),
    /// Not kept (too large): S3's response, to be streamed.
    Fetched(Box<GetObjectOutput>),
}

pub struct HlsCache {
    objects: Cache<String, CachedObject, BySize>,
    fills: Semaphore,
    largest: u64,
}

impl HlsCache {
    /// A cache of up to `capacity` bytes; `None` for 0 (no cache).
    pub fn new(capacity: u64) -> Option<Self> {
        if capacity == 0 {
            return None;
        }
        let options = OptionsBuilder::new()
            // Segments are about a megabyte; the estimate only sizes the tables.
            .estimated_items_capacity((capacity / (256 * 1024)).max(16) as usize)
            .weight_capacity(capacity)
            // One shard: the whole capacity is one pool, so an object up to `largest` fits
            // (shards split the capacity). Segment requests come a few hundred a second,
            // far below what one lock handles.
            .shards(1)
            .build()
            .expect("capacity and items are set");
        Some(Self {
            objects: Cache::with_options(options, BySize, Default::default(), Default::default()),
            fills: Semaphore::new(FILLS),
            largest: capacity / 8,
        })
    }

    /// Whether `key` names a file whose content never changes (see the module docs).
    pub fn keeps(key: &str) -> bool {
        [".ts", ".m4s", ".mp4", ".jpg"]
            .iter()
            .any(|extension| key.ends_with(extension))
    }

    /// `key`'s file from memory, else from `fetch` (a whole-object GET), kept when it fits.
    /// Errors are `fetch`'s and are never cached.
    pub async fn get<F, Fut>(&self, key: &str, fetch: F) -> Result<Lookup, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<GetObjectOutput, ApiError>>,
    {
        let placeholder = match self.objects.get_value_or_guard_async(key).await {
            Ok(object) => {
                metrics::counter!("video_hls_cache_total", "result" => "hit").increment(1);
                return Ok(Lookup::Cached(object));
            }
            Err(placeholder) => placeholder,
        };
        // Past FILLS misses at once, a miss waits for a fill to end rather than stream: a
        // streamed response holds about as much (S3's read buffer, hyper's write queue)
        // as a filled segment, and a waiting one holds nothing.
        let _fill = self.fills.acquire().await.expect("never closed");
        let object = fetch().await?;
        let length = match object.content_length() {
            Some(length) if (0..=self.largest as i64).contains(&length) => length as usize,
            _ => {
                metrics::counter!("video_hls_cache_total", "result" => "bypass").increment(1);
                return Ok(Lookup::Fetched(Box::new(object)));
            }
        };
        let e_tag = object.e_tag().map(str::to_owned);
        // Read into one buffer of the object's size: S3's chunks are copied once, and no
        // second, contiguous copy is made of a list of chunks.
        let mut bytes = BytesMut::with_capacity(length);
        let mut body = object.body;
        while let Some(chunk) = body.next().await {
            bytes.extend_from_slice(&chunk.map_err(ApiError::storage)?);
        }
        if bytes.len() != length {
            return Err(ApiError::unavailable(anyhow::anyhow!(
                "S3 sent {} of the {length} bytes of {key}",
                bytes.len()
            )));
        }
        let bytes = bytes.freeze();
        let object = CachedObject { bytes, e_tag };
        // Refused only if another fill got there first, which the placeholder prevents.
        let _ = placeholder.insert(object.clone());
        metrics::counter!("video_hls_cache_total", "result" => "miss").increment(1);
        Ok(Lookup::Cached(object))
    }

    /// Bytes held now.
    #[cfg(test)]
    fn weight(&self) -> u64 {
        self.objects.weight()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_that_never_change_are_kept() {
        for key in [
            "hls/x/720p/seg_00001.ts",
            "hls/x/720p/init.mp4",
            "hls/x/720p/seg_1.m4s",
            "hls/x/poster-320.jpg",
            "hls/x/storyboard-0.jpg",
        ] {
            assert!(HlsCache::keeps(key), "{key}");
        }
        for key in [
            "hls/x/master.m3u8",
            "hls/x/720p/index.m3u8",
            "hls/x/storyboard.vtt",
            "hls/x/captions/en.vtt",
        ] {
            assert!(!HlsCache::keeps(key), "{key}");
        }
    }

    #[test]
    fn a_zero_capacity_is_no_cache() {
        assert!(HlsCache::new(0).is_none());
    }

    #[test]
    fn the_cache_never_holds_more_than_its_capacity() {
        let cache = HlsCache::new(1024 * 1024).unwrap();
        for i in 0..100 {
            let object = CachedObject {
                bytes: Bytes::from(vec![0u8; 100 * 1024]),
                e_tag: None,
            };
            cache.objects.insert(format!("seg_{i}.ts"), object);
            assert!(
                cache.weight() <= 1024 * 1024,
                "after {i}: {}",
                cache.weight()
            );
        }
        assert!(cache.weight() > 0);
    }
}
