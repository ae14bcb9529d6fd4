//! Refresh tokens: opaque 256-bit random values, stored as SHA-256, rotated on every use.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use sqlx::{FromRow, PgConnection};
use time::OffsetDateTime;
use uuid::Uuid;

pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

pub struct NewRefresh<'a> {
    pub token: &'a str,
    pub family_id: Uuid,
    pub user_id: Uuid,
    pub access_jti: Uuid,
    pub access_exp: i64,
    pub expires_at: OffsetDateTime,
}

pub async fn insert(conn: &mut PgConnection, new: NewRefresh<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, family_id, user_id, access_jti, access_exp, expires_at)
         VALUES ($1, $2, $3, $4, to_timestamp($5), $6)",
    )
    .bind(hash(new.token))
    .bind(new.family_id)
    .bind(new.user_id)
    .bind(new.access_jti)
    .bind(new.access_exp as f64)
    .bind(new.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(FromRow)]
pub struct Stored {
    pub family_id: Uuid,
    pub user_id: Uuid,
    pub username: String,
    /// The user's roles now (the new access token carries them).
    pub roles: Vec<String>,
    pub expires_at: OffsetDateTime,
    pub rotated_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

/// The row for `token`, locked for the rest of the transaction (two concurrent refreshes
/// with the same token: one rotates, the other then sees it rotated).
pub async fn lock(conn: &mut PgConnection, token: &str) -> Result<Option<Stored>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.family_id, r.user_id, u.username::text AS username, u.roles, r.expires_at, r.rotated_at, r.revoked_at
         FROM refresh_tokens r JOIN users u ON u.id = r.user_id
         WHERE r.token_hash = $1 FOR UPDATE OF r",
    )
    .bind(hash(token))
    .fetch_optional(conn)
    .await
}

pub async fn mark_rotated(conn: &mut PgConnection, token: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE refresh_tokens SET rotated_at = now() WHERE token_hash = $1")
        .bind(hash(token))
        .execute(conn)
        .await?;
    Ok(())
}

/// Revokes whole families; returns the access tokens (jti, exp) still live in them, which
/// the caller puts on the denylist.
pub async fn revoke_families(
    conn: &mut PgConnection,
    families: &[Uuid],
) -> Result<Vec<(Uuid, i64)>, sqlx::Error> {
    sqlx::query_as(
        "WITH revoked AS (
             UPDATE refresh_tokens SET revoked_at = now()
             WHERE family_id = ANY($1) AND revoked_at IS NULL
             RETURNING access_jti, access_exp)
         SELECT access_jti, extract(epoch FROM access_exp)::bigint FROM revoked WHERE access_exp > now()",
    )
    .bind(families)
    .fetch_all(conn)
    .await
}

/// The families a logout ends: the one its access token was issued with, and the one of
/// the refresh token presented (if any).
pub async fn families_of(
    conn: &mut PgConnection,
    user_id: Uuid,
    access_jti: Uuid,
    refresh_token: Option<&str>,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT DISTINCT family_id FROM refresh_tokens
         WHERE user_id = $1 AND (access_jti = $2 OR token_hash = $3)",
    )
    .bind(user_id)
    .bind(access_jti)
    .bind(refresh_token.map(hash))
    .fetch_all(conn)
    .await
}

/// Every live access token of a user (account deletion, password change).
pub async fn live_access_tokens(
    conn: &mut PgConnection,
    user_id: Uuid,
) -> Result<Vec<(Uuid, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT access_jti, extract(epoch FROM access_exp)::bigint FROM refresh_tokens
         WHERE user_id = $1 AND access_exp > now()",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await
}
