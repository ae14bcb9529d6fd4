//! `Viewer`: the request guard for endpoints that act as the signed-in user. It checks the
//! bearer token itself (signature, expiry, audience, revocation) rather than trusting a
//! gateway header, so these endpoints are safe even when reached without the gateway.

use identity::{AuthError, Claims, VerifyError};
use rocket::{
    Request,
    http::Status,
    request::{FromRequest, Outcome},
};

use crate::{Context, error::ApiError};

pub struct Viewer {
    pub claims: Claims,
}

/// The credentials in `Authorization`: `None` without the header, `Some(Err)` when it
/// holds something other than a bearer token (refused with 401, never taken for no token:
/// a caller who sent credentials expects them to count; [`identity::edge::bearer`]).
pub fn bearer<'r>(req: &'r Request<'_>) -> Option<Result<&'r str, ApiError>> {
    let value = req.headers().get_one("Authorization")?;
    Some(identity::edge::bearer(value).map_err(|_| {
        ApiError::Unauthorized("the Authorization header must be `Bearer <access token>`")
    }))
}

impl Context {
    /// Verifies an access token completely: signature and claims, then the denylist.
    pub async fn authenticate(&self, token: &str) -> Result<Claims, ApiError> {
        self.authenticator
            .authenticate(token)
            .await
            .map_err(|e| match e {
                AuthError::Invalid(VerifyError::Revoked) => {
                    ApiError::Unauthorized("the access token has been revoked")
                }
                AuthError::Invalid(reason) => {
                    tracing::debug!(%reason, "token refused");
                    ApiError::Unauthorized("the access token is invalid or expired")
                }
                AuthError::Unavailable(e) => e.into(),
            })
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Viewer {
    type Error = ApiError;
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let ctx = req.rocket().state::<Context>().expect("context is managed");
        let token = match bearer(req) {
            Some(Ok(token)) => token,
            Some(Err(e)) => return Outcome::Error((Status::Unauthorized, e)),
            None => {
                return Outcome::Error((
                    Status::Unauthorized,
                    ApiError::Unauthorized("no access token"),
                ));
            }
        };
        match ctx.authenticate(token).await {
            Ok(claims) => Outcome::Success(Viewer { claims }),
            Err(e @ ApiError::Unavailable(_)) => Outcome::Error((Status::ServiceUnavailable, e)),
            Err(e) => Outcome::Error((Status::Unauthorized, e)),
        }
    }
}
