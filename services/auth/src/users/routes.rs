use events::{
    Envelope, outbox,
    user::{UserDeleted, UserUpdated},
};
use rocket::{State, http::Status, serde::json::Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    domain::{Email, Password, Username, avatar_url, text},
    store::{self, PublicProfile, User},
};
use crate::{
    Context,
    error::{ApiError, ApiResult},
    mail::Purpose,
    tokens::{Viewer, client_ip::ClientIp},
};

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![register, profile, update_profile, delete_profile]
}

#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// 3–32 characters of `a-z`, `0-9`, `_` (case-insensitive).
    username: String,
    email: String,
    /// 8–128 characters (NFKC-normalised).
    password: String,
    display_name: Option<String>,
}

/// The signed-in user's own view of their account.
#[derive(Serialize, ToSchema)]
pub struct PrivateProfile {
    #[serde(flatten)]
    profile: PublicProfile,
    email: String,
    /// `moderator`, `admin`; empty for an ordinary user.
    roles: Vec<String>,
    /// Whether `email` is verified (a mailed link was followed); uploads need it while
    /// `UPLOAD_REQUIRES_VERIFIED_EMAIL` is on.
    email_verified: bool,
}

impl From<&User> for PrivateProfile {
    fn from(u: &User) -> Self {
        Self {
            profile: u.into(),
            email: u.email.clone(),
            roles: u.roles.clone(),
            email_verified: u.email_verified_at.is_some(),
        }
    }
}

/// Changes to the profile; absent fields are left alone, an empty `display_name` or
/// `avatar_url` clears it. Changing `email` or `password` needs `current_password`.
#[derive(Deserialize, ToSchema)]
pub struct ProfilePatch {
    display_name: Option<String>,
    bio: Option<String>,
    avatar_url: Option<String>,
    email: Option<String>,
    /// The new password.
    password: Option<String>,
    current_password: Option<String>,
}

/// 23505 on one of the unique constraints.
fn conflict(e: &sqlx::Error) -> Option<ApiError> {
    let db = e.as_database_error()?;
    if db.code().as_deref() != Some("23505") {
        return None;
    }
    Some(match db.constraint() {
        Some("users_username_key") => ApiError::Conflict("username is taken".into()),
        Some("users_email_key") => ApiError::Conflict("email is already registered".into()),
        _ => ApiError::Conflict("already exists".into()),
    })
}

fn optional_text(value: Option<String>, field: &str, max: usize) -> ApiResult<Option<String>> {
    value
        .map(|v| text(field, &v, max))
        .transpose()
        .map(|v| v.filter(|s| !s.is_empty()))
}

/// Create an account. A verification link is mailed to `email`.
#[utoipa::path(post, path = "/auth/register", tag = "users", request_body = RegisterRequest,
    responses((status = 201, body = PublicProfile), (status = 409, description = "username or email taken"),
              (status = 422, description = "a field is not acceptable"),
              (status = 429, description = "too many registrations from this address; see Retry-After")))]
#[rocket::post("/auth/register", data = "<body>")]
async fn register(
    ctx: &State<Context>,
    ip: ClientIp,
    body: Json<RegisterRequest>,
) -> ApiResult<(Status, Json<PublicProfile>)> {
    let username = Username::parse(&body.username)?;
    let email = Email::parse(&body.email)?;
    let password = Password::parse(&body.password)?;
    let display_name = optional_text(body.display_name.clone(), "display_name", 64)?;

    // After the cheap checks (a malformed request costs the client nothing), before the
    // password hash (the expensive part, and what a registration flood would burn).
    let decision = ctx
        .limiter
        .check(
            "register",
            platform::rate_limit::Subject::Ip(ip.0),
            ctx.config.register_ip_rate,
        )
        .await?;
    if let Some(secs) = decision.retry_after_secs() {
        tracing::info!(ip = %ip.0, "registration rate-limited");
        return Err(ApiError::Throttled(secs));
    }

    let hash = ctx.hasher.hash(password).await;
    let mut tx = ctx.db.pool().begin().await?;
    let user: User = sqlx::query_as(&format!(
        "INSERT INTO users (id, username, email, password_hash, display_name) VALUES ($1, $2, $3, $4, $5)
         RETURNING {}",
        store::USER_COLUMNS
    ))
    .bind(Uuid::now_v7())
    .bind(username.as_str())
    .bind(email.as_str())
    .bind(hash)
    .bind(display_name)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| conflict(&e).unwrap_or_else(|| e.into()))?;
    // The verification mail, with the account: both or neither.
    crate::mail::sender::enqueue(&mut tx, Purpose::Verify, &user.email, Some(user.id)).await?;
    tx.commit().await?;
    ctx.mail.notify();
    tracing::info!(user = %user.id, "account created");
    Ok((Status::Created, Json((&user).into())))
}

/// The signed-in user's profile.
#[utoipa::path(get, path = "/user/profile", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = PrivateProfile), (status = 401)))]
#[rocket::get("/user/profile")]
async fn profile(ctx: &State<Context>, viewer: Viewer) -> ApiResult<Json<PrivateProfile>> {
    let mut conn = ctx.db.pool().acquire().await?;
    let user = store::by_id(&mut conn, viewer.claims.sub)
        .await?
        .ok_or(ApiError::NotFound("no such account"))?;
    Ok(Json((&user).into()))
}

/// Change the profile, email or password. Publishes `user.updated`. A new email is
/// unverified until the link mailed to it is followed.
#[utoipa::path(patch, path = "/user/profile", tag = "users", request_body = ProfilePatch, security(("bearer" = [])),
    responses((status = 200, body = PrivateProfile), (status = 401), (status = 403, description = "current_password is wrong or missing"),
              (status = 409), (status = 422)))]
#[rocket::patch("/user/profile", data = "<body>")]
async fn update_profile(
    ctx: &State<Context>,
    viewer: Viewer,
    body: Json<ProfilePatch>,
) -> ApiResult<Json<PrivateProfile>> {
    let body = body.into_inner();
    // Parse everything before touching anything.
    let display_name = body
        .display_name
        .map(|v| text("display_name", &v, 64))
        .transpose()?;
    let bio = body.bio.map(|v| text("bio", &v, 500)).transpose()?;
    let avatar = body
        .avatar_url
        .map(|v| {
            if v.trim().is_empty() {
                Ok(String::new())
            } else {
                avatar_url(&v)
            }
        })
        .transpose()?;
    let email = body.email.as_deref().map(Email::parse).transpose()?;
    let password = body.password.as_deref().map(Password::parse).transpose()?;

    let mut conn = ctx.db.pool().acquire().await?;
    let current = store::by_id(&mut conn, viewer.claims.sub)
        .await?
        .ok_or(ApiError::NotFound("no such account"))?;
    drop(conn);
    if email.is_some() || password.is_some() {
        let given = body.current_password.as_deref().map(Password::for_login);
        let ok = match given {
            Some(given) => {
                ctx.hasher
                    .verify(given, Some(current.password_hash.clone()))
                    .await
            }
            None => false,
        };
        if !ok {
            return Err(ApiError::Forbidden(
                "changing email or password needs the right current_password",
            ));
        }
    }
    let new_hash = match password {
        Some(p) => Some(ctx.hasher.hash(p).await),
        None => None,
    };

    let mut tx = ctx.db.pool().begin().await?;
    let user: User = sqlx::query_as(&format!(
        "UPDATE users SET
            display_name = CASE WHEN $2::text IS NULL THEN display_name ELSE NULLIF($2, '') END,
            bio = COALESCE($3, bio),
            avatar_url = CASE WHEN $4::text IS NULL THEN avatar_url ELSE NULLIF($4, '') END,
            email = COALESCE($5, email),
            -- A new address is unverified until a link mailed to it is followed.
            email_verified_at = CASE WHEN $5::citext IS NULL OR $5::citext = email THEN email_verified_at END,
            password_hash = COALESCE($6, password_hash),
            updated_at = now()
         WHERE id = $1
         RETURNING {}",
        store::USER_COLUMNS
    ))
    .bind(current.id)
    .bind(display_name)
    .bind(bio)
    .bind(avatar)
    .bind(email.as_ref().map(Email::as_str))
    .bind(new_hash.as_deref())
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| conflict(&e).unwrap_or_else(|| e.into()))?;
    outbox::enqueue(
        &mut tx,
        &ctx.events,
        &Envelope::new(UserUpdated { user_id: user.id }),
    )
    .await?;
    let new_address = email
        .as_ref()
        .is_some_and(|e| !e.as_str().eq_ignore_ascii_case(&current.email));
    if new_address {
        crate::mail::sender::enqueue(&mut tx, Purpose::Verify, &user.email, Some(user.id)).await?;
    }
    // A new password ends every other session.
    let live = if new_hash.is_some() {
        let families: Vec<Uuid> = sqlx::query_scalar(
            "SELECT DISTINCT family_id FROM refresh_tokens WHERE user_id = $1 AND access_jti <> $2",
        )
        .bind(user.id)
        .bind(viewer.claims.jti)
        .fetch_all(&mut *tx)
        .await?;
        crate::tokens::revoke_families(&mut tx, &families).await?
    } else {
        Vec::new()
    };
    tx.commit().await?;
    ctx.relay.notify();
    if new_address {
        ctx.mail.notify();
    }
    ctx.deny(&live).await?;
    Ok(Json((&user).into()))
}

/// Delete the account: every token stops working, and `user.deleted` is published.
#[utoipa::path(delete, path = "/user/profile", tag = "users", security(("bearer" = [])),
    responses((status = 204, description = "deleted"), (status = 401)))]
#[rocket::delete("/user/profile")]
async fn delete_profile(ctx: &State<Context>, viewer: Viewer) -> ApiResult<Status> {
    let user_id = viewer.claims.sub;
    let mut tx = ctx.db.pool().begin().await?;
    let mut live = crate::tokens::live_access_tokens(&mut tx, user_id).await?;
    let deleted = sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(ApiError::NotFound("no such account"));
    }
    outbox::enqueue(
        &mut tx,
        &ctx.events,
        &Envelope::new(UserDeleted { user_id }),
    )
    .await?;
    tx.commit().await?;
    ctx.relay.notify();
    live.push((viewer.claims.jti, viewer.claims.exp));
    ctx.deny(&live).await?;
    tracing::info!(user = %user_id, "account deleted");
    Ok(Status::NoContent)
}
