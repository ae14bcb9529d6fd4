//! Token authentication for hot paths (the gateway's ForwardAuth hop sees every request).
//!
//! A client presents the same access token for up to 15 minutes, so verifying its Ed25519
//! signature and asking Redis about it on every request repeats work. [`Authenticator`]
//! remembers:
//!
//! * verified tokens (token -> claims) until they expire: the signature is checked once per
//!   token per process;
//! * the revocation status of each `jti` for 500 ms:
//!   a logout on another replica is seen within that time, which keeps the promise that
//!   a logged-out token stops working everywhere within one second. A revocation made
//!   through this process is seen here at once.
//!
//! Both caches are bounded (least recently used entries go first).

use std::time::{Duration, Instant};

use quick_cache::sync::Cache;
use uuid::Uuid;

use crate::{Claims, Revocations, Verifier, VerifyError};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Invalid(#[from] VerifyError),
    #[error("revocation list unavailable: {0}")]
    Unavailable(#[from] redis::RedisError),
}

pub struct Authenticator {
    verifier: Verifier,
    revocations: Revocations,
    verified: Cache<String, Claims>,
    revoked: Cache<Uuid, (Instant, bool)>,
    recheck: Duration,
    leeway: i64,
}

impl Authenticator {
    pub fn new(verifier: Verifier, revocations: Revocations, leeway: Duration) -> Self {
        Self {
            verifier,
            revocations,
            verified: Cache::new(100_000),
            revoked: Cache::new(100_000),
            recheck: Duration::from_millis(500),
            leeway: leeway.as_secs() as i64,
        }
    }

    /// Signature, claims, expiry, then the denylist.
    pub async fn authenticate(&self, token: &str) -> Result<Claims, AuthError> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = match self.verified.get(token) {
            Some(claims) if claims.exp + self.leeway >= now => claims,
            Some(_) => {
                self.verified.remove(token);
                return Err(VerifyError::Expired.into());
            }
            None => {
                let claims = self.verifier.verify(token)?;
                self.verified.insert(token.to_owned(), claims.clone());
                claims
            }
        };
        if self.is_revoked(claims.jti).await? {
            return Err(VerifyError::Revoked.into());
        }
        Ok(claims)
    }

    async fn is_revoked(&self, jti: Uuid) -> Result<bool, redis::RedisError> {
        let cached = self.revoked.get(&jti);
        if let Some((_, revoked)) =
            cached.filter(|(checked, revoked)| *revoked || checked.elapsed() < self.recheck)
        {
            return Ok(revoked);
        }
        let revoked = self.revocations.is_revoked(jti).await?;
        self.revoked.insert(jti, (Instant::now(), revoked));
        Ok(revoked)
    }

    /// Denylists `jti` until `exp`, everywhere (Redis) and here at once.
    pub async fn revoke(&self, jti: Uuid, exp: i64) -> Result<(), redis::RedisError> {
        self.revocations.revoke(jti, exp).await?;
        self.revoked.insert(jti, (Instant::now(), true));
        Ok(())
    }
}
