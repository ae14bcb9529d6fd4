//! Refresh tokens that can no longer be used are deleted once `REFRESH_TOKEN_RETENTION_SECS`
//! has passed, so `refresh_tokens` stays bounded (every refresh adds a row: a session
//! refreshed every 15 minutes adds ~100 a day).
//!
//! What stays, and why:
//!
//! * every token of a live family whose own expiry is less than the retention ago: the
//!   current one is the session; a rotated one is kept so that presenting it again is
//!   still recognised as reuse and revokes the family (the theft signal). Past its own
//!   expiry plus the retention, a rotated token is refused as unknown instead: it could
//!   not be used any more either way;
//! * a revoked family for the retention after its revocation (its tokens are refused as
//!   revoked meanwhile; afterwards as unknown, the same 401).
//!
//! The retention must exceed the access-token lifetime: logout and account deletion find
//! live access tokens (to deny them) through these rows. Both prunes select by an indexed
//! timestamp (migrations/0003) in bounded batches (`platform::retention`).

use std::time::Duration;

use platform::retention::Prune;

pub fn prunes(retention: Duration) -> Vec<Prune> {
    vec![
        Prune {
            what: "expired refresh tokens",
            sql: "DELETE FROM refresh_tokens WHERE ctid IN (
                      SELECT ctid FROM refresh_tokens
                      WHERE expires_at < now() - $1 * interval '1 second' LIMIT $2)",
            retention,
        },
        Prune {
            what: "revoked refresh tokens",
            sql: "DELETE FROM refresh_tokens WHERE ctid IN (
                      SELECT ctid FROM refresh_tokens
                      WHERE revoked_at < now() - $1 * interval '1 second' LIMIT $2)",
            retention,
        },
    ]
}
