//! Roles: admins grant and revoke moderator; the first admin is made by a command.
//!
//! * `GET /user/admin/moderators`, `PUT` and `DELETE /user/admin/moderators/{id}`: admins
//!   only (403 for anyone else), checked against the database, not the token, so a
//!   demoted admin's unexpired token grants nothing.
//! * A grant reaches the user's tokens at their next refresh (roles are read at every
//!   login and refresh). A revocation takes effect at once: the user's live access tokens
//!   are denylisted, so their next request is refused and the refresh that follows
//!   carries no role; their sessions otherwise go on.
//! * Admin is never granted by an API: `auth grant-admin <username>` (the auth binary, on
//!   the auth database, run by whoever operates the deployment) makes one
//!   ([`grant_admin`]); `auth revoke-admin <username>` unmakes one.

use rocket::{State, http::Status, serde::json::Json};
use sqlx::PgPool;
use uuid::Uuid;

use super::store::{self, PublicProfile};
use crate::{
    Context,
    error::{ApiError, ApiResult},
    tokens::Viewer,
};

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![moderators, grant_moderator, revoke_moderator]
}

/// Refuses anyone who is not an admin now (the database says, not the token).
async fn require_admin(ctx: &Context, viewer: &Viewer) -> ApiResult<()> {
    let admin: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND 'admin' = ANY (roles))",
    )
    .bind(viewer.claims.sub)
    .fetch_one(ctx.db.pool())
    .await?;
    if admin {
        Ok(())
    } else {
        Err(ApiError::Forbidden("only admins manage roles"))
    }
}

fn parse_user(id: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(id).map_err(|_| ApiError::BadRequest("not a user id".into()))
}

/// The moderators, by username.
#[utoipa::path(get, path = "/user/admin/moderators", tag = "roles", security(("bearer" = [])),
    responses((status = 200, body = Vec<PublicProfile>), (status = 403, description = "not an admin")))]
#[rocket::get("/user/admin/moderators")]
async fn moderators(ctx: &State<Context>, viewer: Viewer) -> ApiResult<Json<Vec<PublicProfile>>> {
    require_admin(ctx, &viewer).await?;
    let rows: Vec<PublicProfile> = sqlx::query_as(
        "SELECT id, username::text AS username, display_name, bio, avatar_url, created_at
         FROM users WHERE roles <> '{}' AND 'moderator' = ANY (roles) ORDER BY username",
    )
    .fetch_all(ctx.db.pool())
    .await?;
    Ok(Json(rows))
}

/// Makes a user a moderator (idempotent).
#[utoipa::path(put, path = "/user/admin/moderators/{id}", tag = "roles", security(("bearer" = [])),
    params(("id" = String, Path, description = "the user's id (a UUID)")),
    responses((status = 200, body = PublicProfile), (status = 403, description = "not an admin"),
        (status = 404, description = "no such user")))]
#[rocket::put("/user/admin/moderators/<id>")]
async fn grant_moderator(
    ctx: &State<Context>,
    viewer: Viewer,
    id: &str,
) -> ApiResult<Json<PublicProfile>> {
    require_admin(ctx, &viewer).await?;
    let user = parse_user(id)?;
    let mut conn = ctx.db.pool().acquire().await?;
    let updated = sqlx::query(
        "UPDATE users SET roles = array_append(roles, 'moderator')
         WHERE id = $1 AND NOT ('moderator' = ANY (roles))",
    )
    .bind(user)
    .execute(&mut *conn)
    .await?;
    let row = store::by_id(&mut conn, user)
        .await?
        .ok_or(ApiError::NotFound("no such user"))?;
    if updated.rows_affected() == 1 {
        tracing::info!(admin = %viewer.claims.sub, %user, "moderator granted");
    }
    Ok(Json((&row).into()))
}

/// Takes moderator away (idempotent); the user's live access tokens stop working at once.
#[utoipa::path(delete, path = "/user/admin/moderators/{id}", tag = "roles", security(("bearer" = [])),
    params(("id" = String, Path, description = "the user's id (a UUID)")),
    responses((status = 204, description = "not a moderator (any more)"),
        (status = 403, description = "not an admin"), (status = 404, description = "no such user")))]
#[rocket::delete("/user/admin/moderators/<id>")]
async fn revoke_moderator(ctx: &State<Context>, viewer: Viewer, id: &str) -> ApiResult<Status> {
    require_admin(ctx, &viewer).await?;
    let user = parse_user(id)?;
    let mut tx = ctx.db.pool().begin().await?;
    let roles: Vec<String> = sqlx::query_scalar("SELECT roles FROM users WHERE id = $1 FOR UPDATE")
        .bind(user)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(ApiError::NotFound("no such user"))?;
    if !roles.iter().any(|r| r == "moderator") {
        return Ok(Status::NoContent);
    }
    sqlx::query("UPDATE users SET roles = array_remove(roles, 'moderator') WHERE id = $1")
        .bind(user)
        .execute(&mut *tx)
        .await?;
    let live = crate::tokens::live_access_tokens(&mut tx, user).await?;
    tx.commit().await?;
    ctx.deny(&live).await?;
    tracing::info!(admin = %viewer.claims.sub, %user, "moderator revoked");
    Ok(Status::NoContent)
}

/// What `auth grant-admin` / `auth revoke-admin` did.
#[derive(Debug, PartialEq, Eq)]
pub enum AdminChange {
    Granted,
    Revoked,
    Unchanged,
}

/// Makes (or, with `admin` false, unmakes) `username` an admin, straight in the database:
/// the operator's command for the first admin. Their live access tokens are not denied
/// here (no Redis at hand); a revoked admin's token keeps no power anyway, since the
/// admin endpoints ask the database.
pub async fn grant_admin(
    pool: &PgPool,
    username: &str,
    admin: bool,
) -> anyhow::Result<AdminChange> {
    let sql = if admin {
        "UPDATE users SET roles = array_append(roles, 'admin')
         WHERE username = $1::citext AND NOT ('admin' = ANY (roles)) RETURNING true"
    } else {
        "UPDATE users SET roles = array_remove(roles, 'admin')
         WHERE username = $1::citext AND 'admin' = ANY (roles) RETURNING true"
    };
    let changed: Option<bool> = sqlx::query_scalar(sql)
        .bind(username)
        .fetch_optional(pool)
        .await?;
    if changed.is_some() {
        return Ok(if admin {
            AdminChange::Granted
        } else {
            AdminChange::Revoked
        });
    }
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE username = $1::citext)")
            .bind(username)
            .fetch_one(pool)
            .await?;
    anyhow::ensure!(exists, "no user named {username:?}");
    Ok(AdminChange::Unchanged)
}
