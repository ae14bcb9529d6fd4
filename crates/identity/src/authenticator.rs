//! Token authentication for hot paths (the gateway's ForwardAuth hop sees every request).
//!
//! A client presents the same access token for up to 15 minutes, so verifying its Ed25519
//! signature and asking Redis about it on every request repeats work. [`Authenticator`]
//! remembers:
//!
//! * verified tokens (token -> claims) until they expire: the signature is checked once per
//!   token per process;
//! * the revocation status of each `jti` for 500 ms (the revocation rule below).
//!
//! Both caches are bounded (least recently used entries go first).
//!
//! # Freshness of revocations
//!
//! Every token check in Kino goes through [`Authenticator::authenticate_with`], which
//! states how fresh the revocation answer must be ([`Freshness`]):
//!
//! * [`Freshness::Cached`], for per-request checks (the gateway's ForwardAuth hop, auth's
//!   own endpoints): a revocation made on another replica is seen within 500 ms, which
//!   keeps the promise that a logged-out token stops working everywhere within a second.
//! * [`Freshness::Now`], for checks that open or extend something long-lived (a WebSocket
//!   connection, its periodic recheck): Redis is asked every time, so a token logged out a
//!   moment ago never opens a connection that would then live on for minutes.
//!
//! A revocation made through this process is seen here at once either way.

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

/// How fresh a revocation answer must be (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// At most 500 ms old: per-request checks.
    Cached,
    /// Asked of the shared list now: opening or renewing a long-lived session.
    Now,
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

    /// Signature, claims, expiry, then the denylist as of at most 500 ms ago: the check
    /// for every request ([`Freshness::Cached`]).
    pub async fn authenticate(&self, token: &str) -> Result<Claims, AuthError> {
        self.authenticate_with(token, Freshness::Cached).await
    }

    /// Signature, claims, expiry, then the denylist as fresh as `freshness` says.
    pub async fn authenticate_with(
        &self,
        token: &str,
        freshness: Freshness,
    ) -> Result<Claims, AuthError> {
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
        if self.is_revoked(claims.jti, freshness).await? {
            return Err(VerifyError::Revoked.into());
        }
        Ok(claims)
    }

    async fn is_revoked(&self, jti: Uuid, freshness: Freshness) -> Result<bool, redis::RedisError> {
        let cached = self.revoked.get(&jti);
        let fresh_enough = |(checked, revoked): &(Instant, bool)| {
            *revoked || (freshness == Freshness::Cached && checked.elapsed() < self.recheck)
        };
        if let Some((_, revoked)) = cached.filter(fresh_enough) {
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
