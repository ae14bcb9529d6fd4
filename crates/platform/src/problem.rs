//! The one error body of Kino's REST endpoints: an RFC 9457 `application/problem+json`
//! document with a stable `type` (`https://kino.dev/problems/<kind>`), the status's
//! `title`, the `status` and a human `detail`.
//!
//! Each service keeps its own error enum (what can go wrong there) and maps each variant
//! to a [`Problem`]; how a problem is written — body, content type, `WWW-Authenticate` on
//! every 401, `Retry-After` when the client should come back — is decided here once, for
//! axum ([`IntoResponse`]) and Rocket (`Responder`, with the `rocket` feature) alike.
//!
//! Details are for people and must never carry internals (a store's error message, a
//! query): map those to a generic detail and log the cause.

pub use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::{
    Json,
    http::header,
    response::{IntoResponse, Response},
};
use serde::Serialize;

/// The media type of a problem document.
pub const CONTENT_TYPE: &str = "application/problem+json";
/// What a 401 says about how to authenticate (RFC 6750).
pub const WWW_AUTHENTICATE: &str = r#"Bearer realm="kino""#;

/// When a client told a dependency is unavailable (a 503, or media's GraphQL
/// `UNAVAILABLE`) should try again, in seconds: a failover or a restarting dependency
/// takes about that long. One value for every service, so clients see one policy.
pub const UNAVAILABLE_RETRY_AFTER: u64 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// Seconds after which a retry may succeed (`Retry-After`).
    #[serde(skip)]
    pub retry_after: Option<u64>,
    /// Further response headers a protocol needs (e.g. tus's `Tus-Version` on a 412).
    #[serde(skip)]
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Problem {
    /// `kind` is the stable, machine-readable part (`not-found`, `too-large`, …).
    pub fn new(status: StatusCode, kind: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("https://kino.dev/problems/{kind}"),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: detail.into(),
            retry_after: None,
            headers: Vec::new(),
        }
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// Every header the response carries besides the body's content type.
    fn response_headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let mut headers = self.headers.clone();
        if self.status == 401 {
            headers.push((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(WWW_AUTHENTICATE),
            ));
        }
        if let Some(secs) = self.retry_after {
            headers.push((header::RETRY_AFTER, HeaderValue::from(secs)));
        }
        headers
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = (self.status_code(), Json(&self)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        for (name, value) in self.response_headers() {
            headers.insert(name, value);
        }
        response
    }
}

#[cfg(feature = "rocket")]
impl<'r> rocket::response::Responder<'r, 'static> for Problem {
    fn respond_to(self, _: &'r rocket::Request<'_>) -> rocket::response::Result<'static> {
        use rocket::http::{ContentType, Header, Status};
        let body = serde_json::to_vec(&self).expect("a problem serialises");
        let mut response = rocket::Response::build();
        response
            .status(Status::new(self.status))
            .header(ContentType::new("application", "problem+json"))
            .sized_body(body.len(), std::io::Cursor::new(body));
        for (name, value) in self.response_headers() {
            let value = value.to_str().unwrap_or_default().to_owned();
            response.header(Header::new(name.as_str().to_owned(), value));
        }
        response.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_problem_is_problem_json_with_its_headers() {
        let response = Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "no token")
            .retry_after(3)
            .into_response();
        assert_eq!(response.status(), 401);
        let h = response.headers();
        assert_eq!(h[header::CONTENT_TYPE], CONTENT_TYPE);
        assert_eq!(h[header::WWW_AUTHENTICATE], WWW_AUTHENTICATE);
        assert_eq!(h[header::RETRY_AFTER], "3");
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["type"], "https://kino.dev/problems/unauthorized");
        assert_eq!(json["title"], "Unauthorized");
        assert_eq!(json["status"], 401);
        assert_eq!(json["detail"], "no token");
    }

    #[test]
    fn only_401s_say_how_to_authenticate() {
        let p = Problem::new(StatusCode::NOT_FOUND, "not-found", "x");
        assert!(p.response_headers().is_empty());
    }
}
