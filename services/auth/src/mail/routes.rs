//! The endpoints of verification and reset (see [`super`]).
//!
//! Forgot, and no account enumeration: the handler parses the address, checks the limits,
//! and inserts one `mail_outbox` row, for every address alike; it never reads `users`.
//! The only differences between an address with an account and one without come later,
//! in the sender, off the request: what remains observable is the sender's load on the
//! database (one more lookup and a token insert for a real account), shared by every
//! request at that moment, and the mail itself, which only the mailbox's owner sees.
//! (crates/e2e/tests/account_recovery.rs measures both answers' times.)
//!
//! Limits: per client IP (`RATE_LIMIT_MAIL_IP`) a refusal is 429, which says nothing about
//! any account. Per address (`RATE_LIMIT_MAIL_ADDRESS`, counted whether or not an account
//! has it) forgot still answers 202 and sends nothing: the caller learns nothing, and a
//! mailbox cannot be flooded. Tokens need no limit: 256 random bits are not guessed.

use rocket::{State, http::Status, serde::json::Json};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;
use utoipa::ToSchema;
use uuid::Uuid;

use platform::rate_limit::{Decision, Subject};

use super::{Purpose, sender, tokens};
use crate::{
    Context,
    error::{ApiError, ApiResult},
    tokens::{Viewer, client_ip::ClientIp},
    users::domain::{Email, Password},
};

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![forgot, reset, verify, resend]
}

#[derive(Deserialize, ToSchema)]
pub struct ForgotRequest {
    /// The account's email address.
    email: String,
}

#[derive(Deserialize, ToSchema)]
pub struct ResetRequest {
    /// The `token` of the mailed link.
    token: String,
    /// The new password: 8–128 characters (NFKC-normalised), as at registration.
    password: String,
}

#[derive(Deserialize, ToSchema)]
pub struct VerifyRequest {
    /// The `token` of the mailed link.
    token: String,
}

/// A mail was (or, for forgot, may have been) queued.
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    detail: &'static str,
}

const FORGOT_ACCEPTED: Accepted = Accepted {
    detail: "if an account has this email address, a link to reset its password is on its way",
};

/// The per-address limit's subject: the address's SHA-256 as an id (no account is looked
/// up, so an address with and without an account count alike; the `mail-address` action
/// keeps these apart from real user ids).
fn address_subject(email: &Email) -> Subject {
    let normalised: String = email.as_str().nfkc().collect::<String>().to_lowercase();
    let digest = Sha256::digest(normalised.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Subject::User(Uuid::from_bytes(bytes))
}

/// 429 over the client IP's limit of mail requests.
async fn admit_ip(ctx: &Context, ip: ClientIp) -> ApiResult<()> {
    let decision = ctx
        .limiter
        .check("mail-ip", Subject::Ip(ip.0), ctx.config.mail.ip_rate)
        .await?;
    match decision.retry_after_secs() {
        Some(secs) => {
            tracing::info!(ip = %ip.0, "mail request rate-limited");
            Err(ApiError::Throttled(secs))
        }
        None => Ok(()),
    }
}

/// Ask for a password reset link. The same answer whether or not an account has the
/// address.
#[utoipa::path(post, path = "/auth/password/forgot", tag = "recovery", request_body = ForgotRequest,
    responses((status = 202, body = Accepted, description = "the same for every well-formed address"),
              (status = 422, description = "not an email address"),
              (status = 429, description = "too many requests from this address; see Retry-After")))]
#[rocket::post("/auth/password/forgot", data = "<body>")]
async fn forgot(
    ctx: &State<Context>,
    ip: ClientIp,
    body: Json<ForgotRequest>,
) -> ApiResult<(Status, Json<Accepted>)> {
    let email = Email::parse(&body.email)?;
    admit_ip(ctx, ip).await?;
    let decision = ctx
        .limiter
        .check(
            "mail-address",
            address_subject(&email),
            ctx.config.mail.address_rate,
        )
        .await?;
    if decision == Decision::Allowed {
        let mut conn = ctx.db.pool().acquire().await?;
        sender::enqueue(&mut conn, Purpose::Reset, email.as_str(), None).await?;
        ctx.mail.notify();
    } else {
        tracing::info!("password reset mails to one address rate-limited");
    }
    Ok((Status::Accepted, Json(FORGOT_ACCEPTED)))
}

const BAD_TOKEN: ApiError = ApiError::BadToken("the link is invalid, expired or already used");

fn token_of(raw: &str) -> ApiResult<&str> {
    let token = raw.trim();
    if token.is_empty() || token.len() > tokens::MAX_LEN {
        return Err(BAD_TOKEN);
    }
    Ok(token)
}

/// Choose a new password with a mailed reset link. Ends every session of the account.
#[utoipa::path(post, path = "/auth/password/reset", tag = "recovery", request_body = ResetRequest,
    responses((status = 204, description = "the password is changed; every session has ended"),
              (status = 400, description = "the token is invalid, expired or already used (type invalid-token)"),
              (status = 422, description = "the new password is not acceptable")))]
#[rocket::post("/auth/password/reset", data = "<body>")]
async fn reset(ctx: &State<Context>, body: Json<ResetRequest>) -> ApiResult<Status> {
    let password = Password::parse(&body.password)?;
    let token = token_of(&body.token)?;
    // Checked before the (expensive) hash, so a dead link costs no hash; used only
    // below, in the transaction that also changes the password.
    let mut conn = ctx.db.pool().acquire().await?;
    if tokens::peek(&mut conn, token, Purpose::Reset)
        .await?
        .is_none()
    {
        return Err(BAD_TOKEN);
    }
    drop(conn);
    let hash = ctx.hasher.hash(password).await;

    let mut tx = ctx.db.pool().begin().await?;
    let Some(user_id) = tokens::consume(&mut tx, token, Purpose::Reset).await? else {
        return Err(BAD_TOKEN); // used by a concurrent request meanwhile
    };
    let (username, email): (String, String) = sqlx::query_as(
        "UPDATE users SET password_hash = $2, email_verified_at = coalesce(email_verified_at, now()),
             updated_at = now()
         WHERE id = $1 RETURNING username::text, email::text",
    )
    .bind(user_id)
    .bind(hash)
    .fetch_one(&mut *tx)
    .await?;
    // The other reset links in the mailbox die with this one.
    tokens::retire_all(&mut tx, user_id, Purpose::Reset).await?;
    // Every session ends: whoever knew the old password (or held a token) is out.
    let live = crate::tokens::live_access_tokens(&mut tx, user_id).await?;
    let families: Vec<Uuid> =
        sqlx::query_scalar("SELECT DISTINCT family_id FROM refresh_tokens WHERE user_id = $1")
            .bind(user_id)
            .fetch_all(&mut *tx)
            .await?;
    crate::tokens::revoke_families(&mut tx, &families).await?;
    tx.commit().await?;
    ctx.deny(&live).await?;
    // Failed logins counted against the old password no longer say anything.
    for login in [&username, &email] {
        ctx.throttle.succeeded(login).await?;
    }
    tracing::info!(user = %user_id, "password reset: every session ended");
    Ok(Status::NoContent)
}

/// Verify the account's email address with a mailed link.
#[utoipa::path(post, path = "/auth/email/verify", tag = "recovery", request_body = VerifyRequest,
    responses((status = 204, description = "the address is verified"),
              (status = 400, description = "the token is invalid, expired or already used (type invalid-token)")))]
#[rocket::post("/auth/email/verify", data = "<body>")]
async fn verify(ctx: &State<Context>, body: Json<VerifyRequest>) -> ApiResult<Status> {
    let token = token_of(&body.token)?;
    let mut tx = ctx.db.pool().begin().await?;
    let Some(user_id) = tokens::consume(&mut tx, token, Purpose::Verify).await? else {
        return Err(BAD_TOKEN);
    };
    sqlx::query(
        "UPDATE users SET email_verified_at = coalesce(email_verified_at, now()), updated_at = now()
         WHERE id = $1",
    )
    .bind(user_id)
    .execute(&mut *tx)
    .await?;
    // Done: the other verification links have nothing left to do.
    tokens::retire_all(&mut tx, user_id, Purpose::Verify).await?;
    tx.commit().await?;
    tracing::info!(user = %user_id, "email address verified");
    Ok(Status::NoContent)
}

/// Send the signed-in user another verification mail.
#[utoipa::path(post, path = "/user/email/verification", tag = "recovery", security(("bearer" = [])),
    responses((status = 202, body = Accepted), (status = 401),
              (status = 409, description = "the address is already verified"),
              (status = 429, description = "too many mails asked for; see Retry-After")))]
#[rocket::post("/user/email/verification")]
async fn resend(
    ctx: &State<Context>,
    viewer: Viewer,
    ip: ClientIp,
) -> ApiResult<(Status, Json<Accepted>)> {
    let user_id = viewer.claims.sub;
    let row: Option<(String, bool)> = sqlx::query_as(
        "SELECT email::text, email_verified_at IS NOT NULL FROM users WHERE id = $1",
    )
    .bind(user_id)
    .fetch_optional(ctx.db.pool())
    .await?;
    let (email, verified) = row.ok_or(ApiError::NotFound("no such account"))?;
    if verified {
        return Err(ApiError::Conflict(
            "the email address is already verified".into(),
        ));
    }
    admit_ip(ctx, ip).await?;
    let decision = ctx
        .limiter
        .check(
            "mail-user",
            Subject::User(user_id),
            ctx.config.mail.address_rate,
        )
        .await?;
    if let Some(secs) = decision.retry_after_secs() {
        return Err(ApiError::Throttled(secs));
    }
    let mut conn = ctx.db.pool().acquire().await?;
    sender::enqueue(&mut conn, Purpose::Verify, &email, Some(user_id)).await?;
    ctx.mail.notify();
    Ok((
        Status::Accepted,
        Json(Accepted {
            detail: "a verification link is on its way",
        }),
    ))
}
