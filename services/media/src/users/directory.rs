//! The user directory: profiles from auth, cached in Redis.
//!
//! A lookup of N ids is one `MGET`; the misses are fetched from auth in batches of 100
//! (its `/internal/users` limit) and written back with one pipelined `SET EX` per profile.
//! Unknown ids (deleted accounts) are cached as a short-lived tombstone so a deleted
//! uploader's videos do not send every page view to auth.

use std::{collections::HashMap, time::Duration};

use async_graphql::dataloader::Loader;
use redis::AsyncCommands;
use uuid::Uuid;

use super::User;
use crate::context::count_query;

const TOMBSTONE: &str = "null";
const TOMBSTONE_TTL: Duration = Duration::from_secs(60);
/// auth's `/internal/users` limit.
const AUTH_BATCH: usize = 100;

#[derive(Clone)]
pub struct Directory {
    redis: platform::redis::ConnectionManager,
    http: reqwest::Client,
    list_url: String,
    key_prefix: String,
    ttl: Duration,
}

impl Directory {
    pub fn new(
        redis: platform::redis::ConnectionManager,
        auth_url: &str,
        redis_prefix: &str,
        ttl: Duration,
    ) -> Self {
        Self {
            redis,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(3))
                .build()
                .expect("HTTP client"),
            list_url: format!("{}/internal/users", auth_url.trim_end_matches('/')),
            key_prefix: format!("{redis_prefix}media:user:"),
            ttl,
        }
    }

    pub fn key(&self, id: Uuid) -> String {
        format!("{}{id}", self.key_prefix)
    }

    /// Forgets a cached profile (the user changed or left).
    pub async fn evict(&self, id: Uuid) -> redis::RedisResult<()> {
        self.redis.clone().del::<_, ()>(self.key(id)).await
    }

    /// The profiles of `ids` that exist.
    pub async fn lookup(&self, ids: &[Uuid]) -> anyhow::Result<HashMap<Uuid, User>> {
        let mut found = HashMap::with_capacity(ids.len());
        if ids.is_empty() {
            return Ok(found);
        }
        let keys: Vec<String> = ids.iter().map(|id| self.key(*id)).collect();
        count_query("redis", "users");
        let cached: Vec<Option<String>> = self.redis.clone().mget(&keys).await?;
        let mut missing = Vec::new();
        for (id, value) in ids.iter().zip(cached) {
            match value {
                Some(json) if json == TOMBSTONE => {}
                Some(json) => match serde_json::from_str::<User>(&json) {
                    Ok(user) => {
                        found.insert(*id, user);
                    }
                    Err(_) => missing.push(*id), // an older shape: refetch
                },
                None => missing.push(*id),
            }
        }
        for batch in missing.chunks(AUTH_BATCH) {
            let fetched = self.fetch(batch).await?;
            let mut pipe = redis::pipe();
            for id in batch {
                match fetched.iter().find(|u| u.id == *id) {
                    Some(user) => pipe
                        .set_ex(
                            self.key(*id),
                            serde_json::to_string(user)?,
                            self.ttl.as_secs(),
                        )
                        .ignore(),
                    None => pipe
                        .set_ex(self.key(*id), TOMBSTONE, TOMBSTONE_TTL.as_secs())
                        .ignore(),
                };
            }
            count_query("redis", "users_fill");
            pipe.query_async::<()>(&mut self.redis.clone()).await?;
            found.extend(fetched.into_iter().map(|u| (u.id, u)));
        }
        Ok(found)
    }

    async fn fetch(&self, ids: &[Uuid]) -> anyhow::Result<Vec<User>> {
        count_query("auth", "users");
        let response = self
            .http
            .post(&self.list_url)
            .json(&serde_json::json!({ "ids": ids }))
            .send()
            .await?
            .error_for_status()?;
        Ok(response.json().await?)
    }
}

/// Batches `User` lookups of concurrent resolvers.
pub struct UserLoader(pub Directory);

impl Loader<Uuid> for UserLoader {
    type Value = User;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, User>, Self::Error> {
        self.0
            .lookup(keys)
            .await
            .map_err(|e| crate::error::Error::Internal(e).into())
    }
}
