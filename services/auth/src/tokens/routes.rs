use rocket::{State, http::Status, serde::json::Json};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{client_ip::ClientIp, refresh, viewer::Viewer};
use crate::{
    Context,
    error::{ApiError, ApiResult},
    users::{self, domain::Password},
};

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![login, refresh_tokens, logout]
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    /// Username or email.
    login: String,
    password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct RefreshRequest {
    refresh_token: String,
}

#[derive(Deserialize, ToSchema, Default)]
pub struct LogoutRequest {
    /// Optional: also end the session this refresh token belongs to.
    refresh_token: Option<String>,
}

/// An access token (EdDSA JWT) and the refresh token that renews it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub refresh_token: String,
    pub refresh_expires_in: u64,
}

const BAD_CREDENTIALS: &str = "invalid username or password";

/// Log in with username or email and password.
#[utoipa::path(post, path = "/auth/login", tag = "tokens", request_body = LoginRequest,
    responses((status = 200, body = TokenPair), (status = 401, description = "wrong username or password (the same answer for both)"),
              (status = 403, description = "the account is suspended (banned by a moderator)"),
              (status = 429, description = "too many attempts; see Retry-After")))]
#[rocket::post("/auth/login", data = "<body>")]
async fn login(
    ctx: &State<Context>,
    ip: ClientIp,
    body: Json<LoginRequest>,
) -> ApiResult<Json<TokenPair>> {
    let login = body.login.trim();
    // No account can have such a login, so refusing early reveals nothing about accounts.
    if login.is_empty()
        || login.len() > 254
        || login.chars().any(char::is_control)
        || body.password.len() > 1024
    {
        return Err(ApiError::Unauthorized(BAD_CREDENTIALS));
    }
    ctx.throttle.admit(login, ip.0).await?;
    let user = users::store::by_login(ctx.db.pool(), login).await?;
    let ok = ctx
        .hasher
        .verify(
            Password::for_login(&body.password),
            user.as_ref().map(|u| u.password_hash.clone()),
        )
        .await;
    let Some(user) = user.filter(|_| ok) else {
        ctx.throttle.failed(login).await?;
        return Err(ApiError::Unauthorized(BAD_CREDENTIALS));
    };
    ctx.throttle.succeeded(login).await?;
    // Only now, with the password right: a ban is the account holder's business.
    if user.banned_at.is_some() {
        return Err(ApiError::Forbidden("this account is suspended"));
    }
    let mut conn = ctx.db.pool().acquire().await?;
    Ok(Json(
        ctx.issue_pair(
            &mut conn,
            user.id,
            &user.username,
            &user.roles(),
            Uuid::now_v7(),
        )
        .await?,
    ))
}

impl Context {
    /// A new access token and a new refresh token in `family`.
    pub async fn issue_pair(
        &self,
        conn: &mut sqlx::PgConnection,
        user_id: Uuid,
        username: &str,
        roles: &[identity::Role],
        family_id: Uuid,
    ) -> ApiResult<TokenPair> {
        // Roles are read afresh at every login and refresh: a grant shows within one
        // refresh, a revocation at once (it denies the user's live access tokens).
        let (access_token, claims) = self.signer.issue_with_roles(user_id, username, roles);
        let refresh_token = refresh::generate();
        let refresh_ttl = self.config.tokens.refresh_ttl;
        refresh::insert(
            conn,
            refresh::NewRefresh {
                token: &refresh_token,
                family_id,
                user_id,
                access_jti: claims.jti,
                access_exp: claims.exp,
                expires_at: OffsetDateTime::now_utc() + refresh_ttl,
            },
        )
        .await?;
        Ok(TokenPair {
            access_token,
            token_type: "Bearer".into(),
            expires_in: self.config.tokens.access_ttl.as_secs(),
            refresh_token,
            refresh_expires_in: refresh_ttl.as_secs(),
        })
    }

    /// Denylists access tokens until their expiry.
    pub async fn deny(&self, tokens: &[(Uuid, i64)]) -> ApiResult<()> {
        for (jti, exp) in tokens {
            self.authenticator.revoke(*jti, *exp).await?;
        }
        Ok(())
    }
}

/// Trade a refresh token for a new pair. The old refresh token stops working; presenting it
/// again revokes the whole session (token family).
#[utoipa::path(post, path = "/auth/refresh", tag = "tokens", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), (status = 401, description = "unknown, expired, revoked or reused refresh token")))]
#[rocket::post("/auth/refresh", data = "<body>")]
async fn refresh_tokens(
    ctx: &State<Context>,
    body: Json<RefreshRequest>,
) -> ApiResult<Json<TokenPair>> {
    const DEAD: ApiError =
        ApiError::Unauthorized("the refresh token is invalid, expired or revoked");
    let token = body.refresh_token.trim();
    if token.is_empty() || token.len() > 128 {
        return Err(DEAD);
    }
    let mut tx = ctx.db.pool().begin().await?;
    let Some(stored) = refresh::lock(&mut tx, token).await? else {
        return Err(DEAD);
    };
    if stored.revoked_at.is_some() {
        return Err(DEAD);
    }
    if stored.rotated_at.is_some() {
        // Reuse of a rotated token: someone else has (or had) it. End the whole session.
        tracing::warn!(family = %stored.family_id, user = %stored.user_id, "refresh token reuse: revoking family");
        let live = refresh::revoke_families(&mut tx, &[stored.family_id]).await?;
        tx.commit().await?;
        ctx.deny(&live).await?;
        return Err(DEAD);
    }
    if stored.expires_at <= OffsetDateTime::now_utc() {
        return Err(DEAD);
    }
    refresh::mark_rotated(&mut tx, token).await?;
    let pair = ctx
        .issue_pair(
            &mut tx,
            stored.user_id,
            &stored.username,
            &crate::users::store::parse_roles(&stored.roles),
            stored.family_id,
        )
        .await?;
    tx.commit().await?;
    Ok(Json(pair))
}

/// End the session: the presented access token stops working everywhere at once, and its
/// refresh-token family (and that of `refresh_token`, if given) is revoked.
#[utoipa::path(post, path = "/auth/logout", tag = "tokens", request_body(content = Option<LogoutRequest>),
    security(("bearer" = [])),
    responses((status = 204, description = "logged out"), (status = 401, description = "no valid access token")))]
#[rocket::post("/auth/logout", data = "<body>")]
async fn logout(
    ctx: &State<Context>,
    viewer: Viewer,
    body: Option<Json<LogoutRequest>>,
) -> ApiResult<Status> {
    let body = body.map(Json::into_inner).unwrap_or_default();
    let claims = &viewer.claims;
    ctx.authenticator.revoke(claims.jti, claims.exp).await?;
    let mut tx = ctx.db.pool().begin().await?;
    let families = refresh::families_of(
        &mut tx,
        claims.sub,
        claims.jti,
        body.refresh_token.as_deref(),
    )
    .await?;
    let live = refresh::revoke_families(&mut tx, &families).await?;
    tx.commit().await?;
    ctx.deny(&live).await?;
    Ok(Status::NoContent)
}
