//! Abuse limits on uploads:
//!
//! * **Creation rate** per user and per client IP (`RATE_LIMIT_UPLOAD_USER`/`_IP`), in
//!   Redis through `platform::rate_limit`, the same on every replica: 429 + `Retry-After`.
//! * **Storage quota** per user (`UPLOAD_QUOTA_BYTES`): the `Upload-Length` of every live
//!   upload and asset of the user (unfinished uploads count in full, since they are
//!   promised that space; deleted ones and expired unfinished ones do not). An upload that
//!   would pass it is refused with 413 `quota-exceeded` at creation, before an S3 multipart
//!   upload or a row exists. `Tus-Max-Size` in `OPTIONS` tells a signed-in client what it
//!   may still upload.
//! * **Concurrent uploads** per user (`UPLOAD_MAX_CONCURRENT`): unfinished, unexpired
//!   uploads. One more is refused with **403** `too-many-uploads`, not 429: waiting does
//!   not help (an abandoned upload holds its slot until it expires, `UPLOAD_EXPIRY_SECS`);
//!   finishing or terminating (`DELETE`) one does, so no `Retry-After` is promised.
//!
//! Quota and concurrency come from this service's own rows, and the check and the insert
//! happen in one transaction under a per-user advisory lock ([`reserve`]): two creations
//! by one user, on any replicas, are serialised, so neither can pass on a sum the other
//! is about to change.

use platform::{
    config::{ConfigError, var},
    rate_limit::{self, Rate},
};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::ApiError;

#[derive(Debug, Clone, Copy)]
pub struct LimitConfig {
    /// `RATE_LIMIT_UPLOAD_USER`: upload creations per user (`<count>/<period>` or `off`).
    pub user_rate: Option<Rate>,
    /// `RATE_LIMIT_UPLOAD_IP`: upload creations per client IP.
    pub ip_rate: Option<Rate>,
    /// `UPLOAD_QUOTA_BYTES`: bytes a user may hold (`off`: no quota).
    pub quota_bytes: Option<u64>,
    /// `UPLOAD_MAX_CONCURRENT`: unfinished uploads a user may have at once (`off`: any).
    pub max_concurrent: Option<u32>,
}

impl Default for LimitConfig {
    /// Production's defaults (see [`LimitConfig::from_env`]).
    fn default() -> Self {
        Self {
            user_rate: Some(Rate {
                max: 20,
                window: std::time::Duration::from_secs(3600),
            }),
            ip_rate: Some(Rate {
                max: 60,
                window: std::time::Duration::from_secs(3600),
            }),
            quota_bytes: Some(50 * 1024 * 1024 * 1024),
            max_concurrent: Some(5),
        }
    }
}

impl LimitConfig {
    /// No limit at all (tests of other behaviour).
    pub fn unlimited() -> Self {
        Self {
            user_rate: None,
            ip_rate: None,
            quota_bytes: None,
            max_concurrent: None,
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            // A creator uploads a few videos a day; a script, thousands.
            user_rate: rate_limit::rate("RATE_LIMIT_UPLOAD_USER", "20/1h")?,
            ip_rate: rate_limit::rate("RATE_LIMIT_UPLOAD_IP", "60/1h")?,
            // 50 GiB: five maximum-size (`UPLOAD_MAX_SIZE`) sources.
            quota_bytes: optional("UPLOAD_QUOTA_BYTES", "53687091200")?,
            // Enough for a batch from one browser, few enough that one user cannot pin
            // the memory and S3 multipart uploads of many.
            max_concurrent: optional("UPLOAD_MAX_CONCURRENT", "5")?,
        })
    }
}

/// A number, or `off`.
fn optional<T>(name: &str, default: &str) -> Result<Option<T>, ConfigError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let value: String = var(name, default)?;
    if value.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    value
        .trim()
        .parse()
        .map(Some)
        .map_err(|e: T::Err| ConfigError {
            name: name.into(),
            value,
            reason: e.to_string(),
        })
}

/// What a user holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Usage {
    /// Bytes: the `Upload-Length` of every live upload and asset.
    pub bytes: i64,
    /// Unfinished, unexpired uploads.
    pub unfinished: i64,
}

impl Usage {
    pub async fn of(conn: &mut PgConnection, owner: Uuid) -> sqlx::Result<Self> {
        sqlx::query_as(
            "SELECT coalesce(sum(upload_length), 0)::bigint AS bytes,
                    count(*) FILTER (WHERE status = 'uploading') AS unfinished
             FROM videos
             WHERE owner_id = $1 AND status <> 'deleted'
               AND NOT (status = 'uploading' AND expires_at < now())",
        )
        .bind(owner)
        .fetch_one(conn)
        .await
    }

    /// What may still be uploaded, in bytes (`None`: no quota).
    pub fn remaining(self, limits: &LimitConfig) -> Option<u64> {
        limits
            .quota_bytes
            .map(|quota| quota.saturating_sub(self.bytes.max(0) as u64))
    }

    /// Whether one more upload of `length` bytes fits: 413 over the quota, 403 over the
    /// concurrent cap.
    pub fn admits(self, length: u64, limits: &LimitConfig) -> Result<(), ApiError> {
        if let Some(remaining) = self.remaining(limits)
            && length > remaining
        {
            return Err(ApiError::QuotaExceeded(format!(
                "Upload-Length {length} exceeds your remaining storage of {remaining} bytes \
                 (quota {} bytes); delete videos to free space",
                limits.quota_bytes.unwrap_or_default()
            )));
        }
        if let Some(max) = limits.max_concurrent
            && self.unfinished >= i64::from(max)
        {
            return Err(ApiError::TooManyUploads(format!(
                "you have {} unfinished uploads, the most allowed at once; finish or \
                 terminate one first",
                self.unfinished
            )));
        }
        Ok(())
    }
}

/// Takes the owner's creation lock for the rest of `tx` and checks that an upload of
/// `length` bytes fits. The caller inserts the row in the same transaction.
pub async fn reserve(
    tx: &mut PgConnection,
    owner: Uuid,
    length: u64,
    limits: &LimitConfig,
) -> Result<(), ApiError> {
    if limits.quota_bytes.is_none() && limits.max_concurrent.is_none() {
        return Ok(());
    }
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(OWNER_LOCK_CLASS)
        .bind(owner_lock_key(owner))
        .execute(&mut *tx)
        .await?;
    Usage::of(tx, owner).await?.admits(length, limits)
}

/// The two-key advisory locks of the owner's creations; a key space apart from the
/// one-key locks of single uploads (crate::uploads::lock), which PostgreSQL never
/// confuses with two-key ones.
const OWNER_LOCK_CLASS: i32 = 0x6b69_6e6f; // "kino"

/// The random tail of the user id (auth issues UUIDv7s, whose head is a timestamp). Two
/// users sharing a key only wait for each other.
fn owner_lock_key(owner: Uuid) -> i32 {
    let bytes = owner.as_bytes();
    i32::from_be_bytes(bytes[12..16].try_into().expect("4 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(quota: u64, concurrent: u32) -> LimitConfig {
        LimitConfig {
            quota_bytes: Some(quota),
            max_concurrent: Some(concurrent),
            ..LimitConfig::unlimited()
        }
    }

    #[test]
    fn the_quota_counts_what_is_held() {
        let usage = Usage {
            bytes: 700,
            unfinished: 1,
        };
        assert_eq!(usage.remaining(&limits(1000, 5)), Some(300));
        assert!(usage.admits(300, &limits(1000, 5)).is_ok());
        assert!(matches!(
            usage.admits(301, &limits(1000, 5)),
            Err(ApiError::QuotaExceeded(_))
        ));
        let over = Usage {
            bytes: 1200,
            unfinished: 0,
        };
        assert_eq!(over.remaining(&limits(1000, 5)), Some(0));
        assert_eq!(over.remaining(&LimitConfig::unlimited()), None);
    }

    #[test]
    fn the_concurrent_cap_counts_unfinished_uploads() {
        let usage = Usage {
            bytes: 0,
            unfinished: 2,
        };
        assert!(usage.admits(1, &limits(1000, 3)).is_ok());
        assert!(matches!(
            usage.admits(1, &limits(1000, 2)),
            Err(ApiError::TooManyUploads(_))
        ));
        assert!(usage.admits(1, &LimitConfig::unlimited()).is_ok());
    }

    #[test]
    fn lock_keys_differ_for_users_created_together() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        assert_ne!(owner_lock_key(a), owner_lock_key(b));
    }
}
