//! The user directory: profiles from auth, cached in Redis.
//!
//! A lookup of N ids is one `MGET` (which the client splits by slot on a Redis Cluster); the
//! misses are asked of auth's gRPC user directory
//! (`kino.auth.v1.UserDirectory`, crates/rpc) in batches of 100 (its limit), concurrently,
//! and written back with one `SET EX` each, sent together. Unknown ids (deleted accounts) are
//! cached as a short-lived tombstone so a deleted uploader's videos do not send every page
//! view to auth.
//!
//! When auth cannot answer (down, or past `AUTH_TIMEOUT_MILLIS` with retries), what the
//! cache holds is still served and the rest is a [`LookupError::Unavailable`], which the
//! API reports as `UNAVAILABLE`.

use std::{collections::HashMap, time::Duration};

use async_graphql::dataloader::Loader;
use redis::AsyncCommands;
use rpc::{
    auth::v1::{GetProfilesRequest, Profile, user_directory_client::UserDirectoryClient},
    client::CallPolicy,
};
use tonic::transport::Channel;
use uuid::Uuid;

use super::User;
use crate::context::count_query;

const TOMBSTONE: &str = "null";
const TOMBSTONE_TTL: Duration = Duration::from_secs(60);
/// The user directory's limit per call.
const AUTH_BATCH: usize = 100;
/// For metrics and errors.
const SERVICE: &str = "kino.auth.v1.UserDirectory";

#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("user cache: {0}")]
    Cache(#[from] redis::RedisError),
    /// auth did not answer in time, or answered UNAVAILABLE after the retries.
    #[error("user directory unavailable: {0}")]
    Unavailable(tonic::Status),
    /// auth answered something that is not a profile (a contract broken).
    #[error("user directory answered badly: {0}")]
    Invalid(String),
}

#[derive(Clone)]
pub struct Directory {
    redis: platform::redis::Redis,
    auth: UserDirectoryClient<Channel>,
    policy: CallPolicy,
    key_prefix: String,
    ttl: Duration,
}

impl Directory {
    /// `auth` is a channel to auth's gRPC port (rpc::client::balanced_channel).
    pub fn new(
        redis: platform::redis::Redis,
        auth: Channel,
        timeout: Duration,
        redis_prefix: &str,
        ttl: Duration,
    ) -> Self {
        Self {
            redis,
            auth: UserDirectoryClient::new(auth),
            // A lookup only reads: a refused connection (an auth replica going away) is
            // retried, within the deadline.
            policy: CallPolicy {
                deadline: timeout,
                retries: 2,
            },
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
    pub async fn lookup(&self, ids: &[Uuid]) -> Result<HashMap<Uuid, User>, LookupError> {
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
        if missing.is_empty() {
            return Ok(found);
        }
        let batches = missing.chunks(AUTH_BATCH).map(|batch| self.fetch(batch));
        let fetched: Vec<User> = futures::future::try_join_all(batches)
            .await?
            .into_iter()
            .flatten()
            .collect();
        // One SET EX per key, sent together on the multiplexed connection: a pipeline
        // would have to keep to one slot on a Redis Cluster.
        let mut absent: std::collections::HashSet<Uuid> = missing.into_iter().collect();
        let mut writes = Vec::with_capacity(fetched.len() + absent.len());
        for user in &fetched {
            absent.remove(&user.id);
            let json = serde_json::to_string(user).expect("a profile serialises");
            writes.push((self.key(user.id), json, self.ttl.as_secs()));
        }
        for id in absent {
            writes.push((self.key(id), TOMBSTONE.to_owned(), TOMBSTONE_TTL.as_secs()));
        }
        count_query("redis", "users_fill");
        futures::future::try_join_all(writes.into_iter().map(|(key, value, ttl)| {
            let mut conn = self.redis.clone();
            async move { conn.set_ex::<_, _, ()>(key, value, ttl).await }
        }))
        .await?;
        found.extend(fetched.into_iter().map(|u| (u.id, u)));
        Ok(found)
    }

    /// `id`'s profile as auth has it now, past the cache: for decisions that must not
    /// rest on a copy up to the cache's TTL old (a ban weighs the target's roles, which an
    /// admin may have just changed).
    pub async fn fresh(&self, id: Uuid) -> Result<Option<User>, LookupError> {
        Ok(self.fetch(&[id]).await?.into_iter().next())
    }

    /// One call to auth for at most [`AUTH_BATCH`] ids.
    async fn fetch(&self, ids: &[Uuid]) -> Result<Vec<User>, LookupError> {
        count_query("auth", "users");
        let message = GetProfilesRequest {
            ids: ids.iter().map(Uuid::to_string).collect(),
        };
        let answer = rpc::client::call(SERVICE, "GetProfiles", self.policy, true, |left| {
            let mut client = self.auth.clone();
            let request = rpc::client::request(message.clone(), left);
            async move { client.get_profiles(request).await }
        })
        .await
        .map_err(LookupError::Unavailable)?;
        answer.profiles.into_iter().map(user).collect()
    }
}

fn user(profile: Profile) -> Result<User, LookupError> {
    let id = Uuid::parse_str(&profile.id)
        .map_err(|_| LookupError::Invalid(format!("profile id {:?}", profile.id)))?;
    let created_at = rpc::from_timestamp(profile.created_at.as_ref())
        .ok_or_else(|| LookupError::Invalid(format!("profile {id} has no created_at")))?;
    Ok(User {
        id,
        username: profile.username,
        display_name: profile.display_name,
        bio: profile.bio,
        avatar_url: profile.avatar_url,
        created_at,
        roles: profile.roles,
    })
}

/// Batches `User` lookups of concurrent resolvers.
pub struct UserLoader(pub Directory);

impl Loader<Uuid> for UserLoader {
    type Value = User;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, User>, Self::Error> {
        Ok(self.0.lookup(keys).await.map_err(api_error)?)
    }
}

/// A failed lookup as the API reports it: auth unreachable is `UNAVAILABLE` (retry), the
/// rest an internal error.
pub fn api_error(e: LookupError) -> crate::error::Error {
    match e {
        LookupError::Unavailable(status) => {
            tracing::warn!(%status, "user directory unavailable");
            metrics::counter!("media_user_directory_failures_total").increment(1);
            crate::error::Error::Unavailable(
                "user profiles are unavailable right now; retry shortly",
            )
        }
        other => crate::error::Error::Internal(other.into()),
    }
}
