//! Public keys and the API description.

use identity::Jwks;
use rocket::{State, serde::json::Json};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use crate::Context;

pub fn routes() -> Vec<rocket::Route> {
    rocket::routes![jwks, openapi]
}

/// The public keys that verify Kino's access tokens (RFC 7517), by `kid`.
#[utoipa::path(get, path = "/auth/.well-known/jwks.json", tag = "tokens",
    responses((status = 200, description = "JWKS document")))]
#[rocket::get("/auth/.well-known/jwks.json")]
fn jwks(ctx: &State<Context>) -> Json<Jwks> {
    Json(ctx.jwks.clone())
}

#[rocket::get("/auth/openapi.json")]
fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The OpenAPI 3 document, generated from the handlers' annotations.
#[derive(OpenApi)]
#[openapi(
    info(title = "Kino auth", description = "Accounts, tokens, profiles and the gateway's ForwardAuth endpoint."),
    paths(
        crate::users::routes::register,
        crate::users::routes::profile,
        crate::users::routes::update_profile,
        crate::users::routes::delete_profile,
        crate::users::roles::moderators,
        crate::users::roles::grant_moderator,
        crate::users::roles::revoke_moderator,
        crate::tokens::routes::login,
        crate::tokens::routes::refresh_tokens,
        crate::tokens::routes::logout,
        crate::mail::routes::forgot,
        crate::mail::routes::reset,
        crate::mail::routes::verify,
        crate::mail::routes::resend,
        crate::gateway::token_verify,
        jwks,
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;
