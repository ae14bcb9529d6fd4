//! The gateway's authentication hop (Traefik ForwardAuth; Caddy `forward_auth` locally).
//!
//! For every request on `/user`, `/media` and `/video`, the gateway asks
//! `GET /user/token_verify` with the client's `Authorization` header and the original
//! method and URI in `X-Forwarded-Method` / `X-Forwarded-Uri`:
//!
//! * a valid token: 200 with `X-User-Id`, `X-User-Name` and (for moderators and admins)
//!   `X-User-Roles`, which the gateway copies onto
//!   the upstream request (after removing any the client sent);
//! * no token on a public route: 200 without identity headers (anonymous);
//! * a valid token of an account whose email address is unverified, on the creation of
//!   an upload, while `UPLOAD_REQUIRES_VERIFIED_EMAIL` is on: 403 problem+json
//!   `email-unverified` ([`crate::mail::gate`]), which the gateway returns as is;
//! * a bad, expired or revoked token (on any route), credentials that are not a bearer
//!   token, or no token on a protected route: 401 problem+json with
//!   `WWW-Authenticate: Bearer`, which the gateway returns as is.
//!
//! The header names and the bearer syntax are [`identity::edge`]'s, which the services
//! behind the gateway read with.

pub mod policy;

use rocket::{
    Request, State,
    http::Header,
    response::{self, Responder},
};

use crate::{
    Context,
    error::{ApiError, ApiResult},
    tokens::viewer::bearer,
};

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![token_verify, error_page]
}

/// The problem+json document of an error status the gateway produces itself, such as the
/// 413 of Traefik's `buffering` middleware, whose own body is plain text: Traefik's
/// `errors` middleware (traefik/dynamic, k8s/base/gateway) fetches
/// `GET /errors/{status}` here and sends this body with the original status. Outside
/// every routed prefix, so only the gateway asks it. 404 for what is not an error status.
#[rocket::get("/errors/<status>")]
fn error_page(status: &str) -> Option<platform::Problem> {
    let code = status.parse().ok()?;
    let status = rocket::http::Status::from_code(code).filter(|s| s.code >= 400)?;
    Some(crate::error::problem_for(status))
}

/// What the gateway forwarded about the original request.
pub struct Forwarded<'r> {
    method: Option<&'r str>,
    uri: Option<&'r str>,
    /// `None` without an `Authorization` header; `Some(Err)` for one that is not a
    /// bearer token.
    token: Option<ApiResult<&'r str>>,
}

#[rocket::async_trait]
impl<'r> rocket::request::FromRequest<'r> for Forwarded<'r> {
    type Error = std::convert::Infallible;
    async fn from_request(req: &'r Request<'_>) -> rocket::request::Outcome<Self, Self::Error> {
        rocket::request::Outcome::Success(Forwarded {
            method: req.headers().get_one("X-Forwarded-Method"),
            uri: req.headers().get_one("X-Forwarded-Uri"),
            token: bearer(req),
        })
    }
}

/// 200, with the identity headers when there is an identity.
pub struct Verified(Option<identity::Claims>);

impl<'r> Responder<'r, 'static> for Verified {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        let mut response = rocket::Response::build();
        response
            .status(rocket::http::Status::Ok)
            .header(Header::new("Cache-Control", "no-store"));
        if let Some(claims) = self.0 {
            for (name, value) in identity::edge::identity_headers(&claims) {
                let value = value.to_str().expect("visible ASCII").to_owned();
                response.header(Header::new(name.as_str().to_owned(), value));
            }
        }
        Ok(response.finalize())
    }
}

/// ForwardAuth: decide whether the original request may pass, and as whom.
#[utoipa::path(get, path = "/user/token_verify", tag = "gateway",
    params(("X-Forwarded-Method" = Option<String>, Header, description = "the original request's method"),
           ("X-Forwarded-Uri" = Option<String>, Header, description = "the original request's path and query")),
    responses((status = 200, description = "let it through; X-User-Id, X-User-Name (and X-User-Roles) when authenticated"),
              (status = 401, description = "bad token, or no token on a protected route"),
              (status = 403, description = "an upload by an account whose email address is not verified (type email-unverified)")))]
#[rocket::get("/user/token_verify")]
async fn token_verify(ctx: &State<Context>, forwarded: Forwarded<'_>) -> ApiResult<Verified> {
    match forwarded.token {
        Some(token) => {
            let claims = ctx.authenticate(token?).await?;
            if ctx.config.mail.upload_requires_verified_email
                && let (Some(method), Some(uri)) = (forwarded.method, forwarded.uri)
                && crate::mail::gate::creates_upload(method, uri)
                && !crate::mail::gate::is_verified(ctx, claims.sub).await?
            {
                return Err(ApiError::EmailUnverified);
            }
            Ok(Verified(Some(claims)))
        }
        None => {
            let public = match (forwarded.method, forwarded.uri) {
                (Some(method), Some(uri)) => ctx.config.public_routes.is_public(method, uri),
                _ => false,
            };
            if public {
                Ok(Verified(None))
            } else {
                Err(ApiError::Unauthorized("this route needs an access token"))
            }
        }
    }
}
