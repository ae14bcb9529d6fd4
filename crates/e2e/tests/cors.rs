//! CORS at the gateway, as a browser app on another origin meets it: preflights for a tus
//! upload and a GraphQL call from an allowed origin are answered (before the ForwardAuth
//! hop) with the methods and headers they ask for; the real requests carry
//! `Access-Control-Allow-Origin` and expose the headers tus-js-client reads; another origin
//! gets no CORS header at all.

use e2e::Stack;
use reqwest::{Client, Method, Response};
use serde_json::json;

const PASSWORD: &str = "correct horse battery";
/// In the default CORS_ALLOWED_ORIGINS (Vite's dev server).
const ALLOWED: &str = "http://localhost:5173";
const OTHER: &str = "http://evil.example";

fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

/// The comma-separated values of `name`, lower-cased.
fn listed(response: &Response, name: &str) -> Vec<String> {
    header(response, name)
        .unwrap_or_default()
        .split(',')
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
        .collect()
}

async fn preflight(
    stack: &Stack,
    path: &str,
    origin: &str,
    method: &str,
    headers: &str,
) -> Response {
    Client::new()
        .request(Method::OPTIONS, stack.url(path))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", method)
        .header("Access-Control-Request-Headers", headers)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_allowed_origin_gets_preflights_and_exposed_headers_and_another_gets_nothing() {
    let stack = Stack::start().await;
    stack.register("webapp", PASSWORD).await;
    let token = stack.login("webapp", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // Preflights: tus creation and upload, GraphQL, a profile edit, a login.
    let asks = [
        (
            "/video/upload",
            "POST",
            "authorization, tus-resumable, upload-length, upload-metadata",
        ),
        (
            "/video/upload/0190b7c2-0000-7000-8000-000000000000",
            "PATCH",
            "authorization, tus-resumable, upload-offset, content-type",
        ),
        ("/media/graphql", "POST", "authorization, content-type"),
        ("/user/profile", "PATCH", "authorization, content-type"),
        ("/auth/login", "POST", "content-type"),
    ];
    for (path, method, headers) in asks {
        let response = preflight(&stack, path, ALLOWED, method, headers).await;
        assert!(
            response.status().is_success(),
            "{method} {path}: {}",
            response.status()
        );
        assert_eq!(
            header(&response, "access-control-allow-origin"),
            Some(ALLOWED),
            "{path}"
        );
        assert!(
            listed(&response, "access-control-allow-methods")
                .contains(&method.to_ascii_lowercase())
        );
        let allowed = listed(&response, "access-control-allow-headers");
        for asked in headers.split(", ") {
            assert!(
                allowed.contains(&asked.to_owned()),
                "{path}: {asked} not in {allowed:?}"
            );
        }
        assert!(
            listed(&response, "vary").contains(&"origin".to_owned()),
            "{path}"
        );
        assert_eq!(header(&response, "access-control-allow-credentials"), None);

        let refused = preflight(&stack, path, OTHER, method, headers).await;
        for name in [
            "access-control-allow-origin",
            "access-control-allow-methods",
            "access-control-allow-headers",
        ] {
            assert_eq!(header(&refused, name), None, "{path} from {OTHER}: {name}");
        }
    }

    // The real requests: a tus creation exposes what tus-js-client reads.
    let created = Client::new()
        .post(stack.url("/video/upload"))
        .header("Origin", ALLOWED)
        .bearer_auth(&token)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", "1000")
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(
        header(&created, "access-control-allow-origin"),
        Some(ALLOWED)
    );
    let exposed = listed(&created, "access-control-expose-headers");
    for needed in [
        "location",
        "upload-offset",
        "upload-length",
        "tus-resumable",
        "tus-max-size",
        "retry-after",
    ] {
        assert!(
            exposed.contains(&needed.to_owned()),
            "{needed} not exposed: {exposed:?}"
        );
    }

    // GraphQL from both origins: the same answer, CORS headers only for the allowed one.
    for (origin, expected) in [(ALLOWED, Some(ALLOWED)), (OTHER, None)] {
        let answered = Client::new()
            .post(stack.url("/media/graphql"))
            .header("Origin", origin)
            .json(&json!({ "query": "{ feed(first: 1) { edges { node { id } } } }" }))
            .send()
            .await
            .unwrap();
        assert_eq!(answered.status(), 200);
        assert_eq!(
            header(&answered, "access-control-allow-origin"),
            expected,
            "{origin}"
        );
        if expected.is_none() {
            assert_eq!(header(&answered, "access-control-expose-headers"), None);
        }
    }

    // Errors reach the app too: a 401 from the ForwardAuth hop carries the CORS headers,
    // so the app can read it and refresh its token.
    let refused = Client::new()
        .post(stack.url("/media/graphql"))
        .header("Origin", ALLOWED)
        .bearer_auth("not-a-token")
        .json(&json!({ "query": "{ me { id } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(
        header(&refused, "access-control-allow-origin"),
        Some(ALLOWED)
    );
}
