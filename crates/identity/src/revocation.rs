//! The denylist of revoked access tokens.
//!
//! Logout stores the token's `jti` in Redis until the token's own expiry (`EXAT`), so the
//! list never outgrows the set of live tokens. Every verifier (the ForwardAuth endpoint,
//! media's WebSocket authentication) consults it, so a logout takes effect everywhere at
//! once.

use platform::redis::Redis;
use uuid::Uuid;

#[derive(Clone)]
pub struct Revocations {
    redis: Redis,
    prefix: String,
}

impl Revocations {
    /// `prefix` namespaces the keys (`<prefix>revoked:<jti>`).
    pub fn new(redis: Redis, prefix: &str) -> Self {
        Self {
            redis,
            prefix: prefix.to_owned(),
        }
    }

    fn key(&self, jti: Uuid) -> String {
        format!("{}revoked:{}", self.prefix, jti.simple())
    }

    /// Denylists `jti` until `exp` (Unix seconds).
    pub async fn revoke(&self, jti: Uuid, exp: i64) -> redis::RedisResult<()> {
        let mut conn = self.redis.clone();
        redis::cmd("SET")
            .arg(self.key(jti))
            .arg(1)
            .arg("EXAT")
            .arg(exp.max(1))
            .query_async(&mut conn)
            .await
    }

    pub async fn is_revoked(&self, jti: Uuid) -> redis::RedisResult<bool> {
        let mut conn = self.redis.clone();
        redis::cmd("EXISTS")
            .arg(self.key(jti))
            .query_async(&mut conn)
            .await
    }
}
