//! SQL for the `users` table.

use serde::Serialize;
use sqlx::{FromRow, PgConnection, PgPool};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// A full account row (never sent to anyone as is).
#[derive(Debug, Clone, FromRow)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub display_name: Option<String>,
    pub bio: String,
    pub avatar_url: Option<String>,
    pub created_at: OffsetDateTime,
    /// `moderator`, `admin` (the column's CHECK holds it to those).
    pub roles: Vec<String>,
    /// When the current address was proven (crate::mail); `None`: unverified.
    #[sqlx(default)]
    pub email_verified_at: Option<OffsetDateTime>,
    /// When a moderator banned the account (crate::users::bans); `None`: not banned.
    pub banned_at: Option<OffsetDateTime>,
}

impl User {
    /// The roles its tokens carry.
    pub fn roles(&self) -> Vec<identity::Role> {
        parse_roles(&self.roles)
    }
}

/// Roles as stored, as the identity crate knows them (the column allows no others).
pub fn parse_roles(stored: &[String]) -> Vec<identity::Role> {
    stored
        .iter()
        .filter_map(|r| identity::Role::parse(r))
        .collect()
}

/// What anyone may see of a user.
#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
pub struct PublicProfile {
    pub id: Uuid,
    pub username: String,
    pub display_name: Option<String>,
    pub bio: String,
    pub avatar_url: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

impl From<&User> for PublicProfile {
    fn from(u: &User) -> Self {
        Self {
            id: u.id,
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            bio: u.bio.clone(),
            avatar_url: u.avatar_url.clone(),
            created_at: u.created_at,
        }
    }
}

/// What every query that reads a [`User`] selects (or returns).
pub(crate) const USER_COLUMNS: &str = "id, username::text AS username, email::text AS email, password_hash, display_name, bio, avatar_url, created_at, roles, email_verified_at, banned_at";

pub async fn by_id(conn: &mut PgConnection, id: Uuid) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Looks a user up by username or email (citext: case-insensitive).
pub async fn by_login(pool: &PgPool, login: &str) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE username = $1::citext OR email = $1::citext LIMIT 1"
    ))
    .bind(login)
    .fetch_optional(pool)
    .await
}

/// A profile as the user directory (gRPC) gives it: the public profile and the staff roles.
#[derive(FromRow)]
pub struct DirectoryEntry {
    #[sqlx(flatten)]
    pub profile: PublicProfile,
    pub roles: Vec<String>,
}

pub async fn directory_entries(
    pool: &PgPool,
    ids: &[Uuid],
) -> Result<Vec<DirectoryEntry>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, username::text AS username, display_name, bio, avatar_url, created_at, roles
         FROM users WHERE id = ANY($1) ORDER BY id",
    )
    .bind(ids)
    .fetch_all(pool)
    .await
}
