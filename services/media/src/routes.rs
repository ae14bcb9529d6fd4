//! HTTP: `POST /media/graphql` (and `GET` with query parameters, e.g. persisted queries)
//! runs GraphQL; `GET /media/graphql` without a query serves GraphiQL.

use async_graphql::ParseRequestError;
use async_graphql::{ErrorExtensionValues, Value, http::GraphiQLSource};
use async_graphql_axum::{GraphQLRequest, GraphQLResponse, rejection::GraphQLRejection};
use axum::{
    Json, Router,
    extract::{RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::{Html, IntoResponse, Response},
    routing::get,
};

use platform::client_ip::{self, ClientIp, TrustedProxies};
use tower_http::limit::RequestBodyLimitLayer;

use crate::{
    schema::KinoSchema,
    viewer::{Staff, Viewer},
};

pub const PATH: &str = "/media/graphql";

pub fn router(schema: KinoSchema, max_body_bytes: usize, trusted: TrustedProxies) -> Router {
    let router = Router::new()
        .route(PATH, get(get_graphql).post(post_graphql))
        // Bodies with a Content-Length over the cap are refused before being read; the
        // layer also cuts off streamed (chunked) bodies that grow past it.
        .layer(RequestBodyLimitLayer::new(max_body_bytes))
        .with_state(schema);
    // Every request knows its client's address, for the per-IP limits (crate::rate_limits).
    client_ip::resolving(router, trusted)
}

async fn get_graphql(
    State(schema): State<KinoSchema>,
    ip: ClientIp,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    request: Result<GraphQLRequest, GraphQLRejection>,
) -> Response {
    match (query, request) {
        (None, _) => Html(GraphiQLSource::build().endpoint(PATH).finish()).into_response(),
        (Some(_), Ok(request)) => execute(schema, ip, headers, request).await,
        (Some(_), Err(rejection)) => rejected(rejection),
    }
}

async fn post_graphql(
    State(schema): State<KinoSchema>,
    ip: ClientIp,
    headers: HeaderMap,
    request: Result<GraphQLRequest, GraphQLRejection>,
) -> Response {
    match request {
        Ok(request) => execute(schema, ip, headers, request).await,
        Err(rejection) => rejected(rejection),
    }
}

/// A body that is not a GraphQL request (or too big), in GraphQL's error shape.
fn rejected(rejection: GraphQLRejection) -> Response {
    match rejection.0 {
        ParseRequestError::PayloadTooLarge => error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is too large",
        ),
        other => error_response(
            StatusCode::BAD_REQUEST,
            &format!("not a GraphQL request: {other}"),
        ),
    }
}

async fn execute(
    schema: KinoSchema,
    ip: ClientIp,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> Response {
    let viewer = match Viewer::from_headers(&headers) {
        Ok(viewer) => viewer,
        Err(e) => return bad_request(&e.to_string()),
    };
    // Roles count only with an identity: the gateway sends both or neither.
    let staff = match Staff::from_headers(&headers) {
        Ok(staff) if viewer.id().is_some() => staff,
        Ok(_) => Staff::default(),
        Err(e) => return bad_request(&e.to_string()),
    };
    let mut response = schema
        .execute(request.into_inner().data(viewer).data(staff).data(ip))
        .await;
    with_error_codes(&mut response);
    GraphQLResponse::from(response).into_response()
}

/// Gives every error an `extensions.code`. Resolver errors carry theirs (crate::error);
/// what is left comes from parsing, validation and limits: the client's request is at
/// fault. (Also used for results sent over WebSocket.)
pub fn with_error_codes(response: &mut async_graphql::Response) {
    for error in &mut response.errors {
        let extensions = error
            .extensions
            .get_or_insert_with(ErrorExtensionValues::default);
        if extensions.get("code").is_none() {
            let code = if error.message == "PersistedQueryNotFound" {
                "PERSISTED_QUERY_NOT_FOUND"
            } else {
                "BAD_USER_INPUT"
            };
            extensions.set("code", Value::from(code));
        }
    }
}

/// A request that never reached GraphQL, answered in GraphQL's error shape.
fn bad_request(message: &str) -> Response {
    error_response(StatusCode::BAD_REQUEST, message)
}

fn error_response(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({
            "errors": [{ "message": message, "extensions": { "code": "BAD_USER_INPUT" } }]
        })),
    )
        .into_response()
}
