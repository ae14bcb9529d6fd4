//! The mailed links' tokens (`email_tokens`).
//!
//! Invariants:
//!
//! * Only the SHA-256 of a token is stored; the token itself exists in the mail alone.
//!   The same generator and hash as refresh tokens (crate::tokens).
//! * A token is used at most once: [`consume`] marks it used in the statement that checks
//!   it is unused and unexpired, so of two requests racing with one token, one wins.
//! * A token works only while the account's address is still the one it was sent to.
//! * A refused token changes nothing, and every refusal is the same one 400
//!   ([`crate::error::ApiError::BadToken`]): unknown, used and expired are not told apart.

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::Purpose;
use crate::tokens::{new_secret, secret_hash};

/// Tokens longer than this are not ours (ours are 43 characters); refused unread.
pub const MAX_LEN: usize = 128;

/// Mints a token for `user_id`'s `email`, valid until `expires_at`; returns the token.
pub async fn mint(
    conn: &mut PgConnection,
    user_id: Uuid,
    purpose: Purpose,
    email: &str,
    expires_at: OffsetDateTime,
) -> Result<String, sqlx::Error> {
    let token = new_secret();
    sqlx::query(
        "INSERT INTO email_tokens (token_hash, user_id, purpose, email, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(secret_hash(&token))
    .bind(user_id)
    .bind(purpose.as_str())
    .bind(email)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(token)
}

/// Whose token this is, if it would be accepted now (nothing is changed).
pub async fn peek(
    conn: &mut PgConnection,
    token: &str,
    purpose: Purpose,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT t.user_id FROM email_tokens t JOIN users u ON u.id = t.user_id AND u.email = t.email
         WHERE t.token_hash = $1 AND t.purpose = $2 AND t.used_at IS NULL AND t.expires_at > now()",
    )
    .bind(secret_hash(token))
    .bind(purpose.as_str())
    .fetch_optional(conn)
    .await
}

/// Uses the token: marks it used and returns its user, or `None` (and changes nothing) if
/// it is unknown, used, expired, for another purpose, or for an address the account no
/// longer has.
pub async fn consume(
    conn: &mut PgConnection,
    token: &str,
    purpose: Purpose,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE email_tokens t SET used_at = now()
         FROM users u
         WHERE t.token_hash = $1 AND t.purpose = $2 AND t.used_at IS NULL AND t.expires_at > now()
           AND u.id = t.user_id AND u.email = t.email
         RETURNING t.user_id",
    )
    .bind(secret_hash(token))
    .bind(purpose.as_str())
    .fetch_optional(conn)
    .await
}

/// Ends every other unused token of `purpose` of the user (after a reset, the other reset
/// links in the mailbox must not work any more).
pub async fn retire_all(
    conn: &mut PgConnection,
    user_id: Uuid,
    purpose: Purpose,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE email_tokens SET used_at = now()
         WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
    )
    .bind(user_id)
    .bind(purpose.as_str())
    .execute(conn)
    .await?;
    Ok(())
}
