//! What the gateway refuses and hides, as a client sees it: oversized bodies get a 413
//! problem+json every time (never a 502 from a service that refused mid-send), and the
//! services' internals (metrics, the dependency report, the service-to-service user
//! directory) are not reachable through it, while Prometheus and probes still get them
//! from the services directly.

use std::time::Duration;

use e2e::Stack;
use reqwest::{Client, Method, Response};
use serde_json::{Value, json};
use testkit::wait_for;

const PASSWORD: &str = "correct horse battery";
/// Well past every limit (auth 16 KiB, media 64 KiB), and large enough that a service
/// refusing it early used to close the connection while the gateway was still sending.
const OVERSIZED: usize = 3 * 1024 * 1024;

async fn assert_problem(response: Response, status: u16, what: &str) {
    assert_eq!(response.status().as_u16(), status, "{what}");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "{what}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status, "{what}: {body}");
}

/// A JSON body of `size` bytes: a real request of the endpoint, padded in a string field,
/// so that nothing but its size is wrong.
fn padded(mut value: Value, field: &str, size: usize) -> Vec<u8> {
    value[field] = Value::String("x".repeat(size));
    serde_json::to_vec(&value).unwrap()
}

/// curl, as a shell user sends it: `Expect: 100-continue` for large bodies, or a chunked
/// upload with no Content-Length. Returns the status code and the content type.
async fn curl(url: &str, body: &std::path::Path, extra: &[&str]) -> (String, String) {
    let out = tokio::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{content_type}",
        ])
        .args(["-X", "POST", "-H", "Content-Type: application/json"])
        .args(extra)
        .arg("--data-binary")
        .arg(format!("@{}", body.display()))
        .arg(url)
        .output()
        .await
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (code, kind) = text.split_once(' ').unwrap_or((&text, ""));
    (code.to_owned(), kind.to_owned())
}

#[tokio::test]
async fn oversized_bodies_get_413_problem_json_every_time_and_change_nothing() {
    let stack = Stack::start().await;
    let client = Client::new();
    stack.register("sizer", PASSWORD).await;
    let access = stack.login("sizer", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let register = padded(
        json!({"username": "bloated", "email": "bloated@example.com", "password": PASSWORD}),
        "display_name",
        OVERSIZED,
    );
    let login = padded(json!({"login": "sizer"}), "password", OVERSIZED);
    let profile = padded(json!({}), "bio", OVERSIZED);
    let graphql = padded(
        json!({"query": "{ feed { edges { node { id } } } }"}),
        "x",
        OVERSIZED,
    );
    let cases: [(Method, &str, &Vec<u8>, bool); 5] = [
        (Method::POST, "/auth/register", &register, false),
        (Method::POST, "/auth/login", &login, false),
        (Method::PATCH, "/user/profile", &profile, true),
        (Method::POST, "/media/graphql", &graphql, false),
        (Method::POST, "/media/graphql", &graphql, true),
    ];
    for (method, path, body, signed_in) in &cases {
        for attempt in 0..12 {
            let mut request = client
                .request(method.clone(), stack.url(path))
                .header("Content-Type", "application/json")
                .body((*body).clone());
            if *signed_in {
                request = request.bearer_auth(&access);
            }
            let response = request.send().await.unwrap_or_else(|e| {
                panic!("{method} {path} (try {attempt}): the connection failed: {e}")
            });
            assert_problem(response, 413, &format!("{method} {path}, try {attempt}")).await;
        }
    }

    // curl: with `Expect: 100-continue` (its default for large bodies) and chunked.
    let file = std::env::temp_dir().join(format!("kino-oversized-{}.json", stack.env.id));
    std::fs::write(&file, &graphql).unwrap();
    for path in ["/auth/login", "/media/graphql"] {
        for extra in [
            &[][..],
            &["-H", "Expect:"],
            &["-H", "Transfer-Encoding: chunked"],
        ] {
            for _ in 0..5 {
                let (code, kind) = curl(&stack.url(path), &file, extra).await;
                assert_eq!(
                    (code.as_str(), kind.as_str()),
                    ("413", "application/problem+json"),
                    "curl {extra:?} {path}"
                );
            }
        }
    }
    std::fs::remove_file(&file).ok();

    // Nothing changed: the padded registration made no account, the profile kept its bio.
    let response = client
        .post(stack.url("/auth/login"))
        .json(&json!({"login": "bloated", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        401,
        "the oversized registration made nothing"
    );
    let me: Value = client
        .get(stack.url("/user/profile"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(me["bio"].is_null() || me["bio"] == "", "{me}");

    // Just under the limit still reaches the service: a 60 KiB GraphQL request is answered.
    let request = json!({
        "query": "{ feed(first: 1) { edges { node { id } } } }",
        "variables": { "pad": "y".repeat(60 * 1024) },
    });
    let response = client
        .post(stack.url("/media/graphql"))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["data"]["feed"].is_object(), "{body}");
}

#[tokio::test]
async fn internals_are_not_reachable_through_the_gateway() {
    let stack = Stack::start().await;
    let client = Client::new();
    let user = stack.register("curious", PASSWORD).await;
    let access = stack.login("curious", PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    for service in ["auth", "user", "media", "video"] {
        // Wait until ready, then the public readiness is a bare status.
        let url = stack.url(&format!("/{service}/readyz"));
        let body = wait_for(
            &format!("{service} ready"),
            Duration::from_secs(30),
            || async {
                let response = client.get(&url).send().await.ok()?;
                (response.status() == 200).then_some(())?;
                response.json::<Value>().await.ok()
            },
        )
        .await;
        assert_eq!(
            body,
            json!({"status": "ready"}),
            "{service}: no dependency named"
        );

        // Metrics: 404 for everyone, signed in or not.
        let metrics = stack.url(&format!("/{service}/metrics"));
        let anonymous = client.get(&metrics).send().await.unwrap();
        assert_eq!(anonymous.status(), 404, "anonymous {metrics}");
        let signed_in = client
            .get(&metrics)
            .bearer_auth(&access)
            .send()
            .await
            .unwrap();
        assert_eq!(signed_in.status(), 404, "signed-in {metrics}");
    }

    // The user directory is for services only: none of its old HTTP paths, nor its gRPC
    // path, is routed.
    for path in [
        "/user/list",
        "/internal/users",
        "/auth/internal/users",
        "/kino.auth.v1.UserDirectory/GetProfiles",
        "/auth/kino.auth.v1.UserDirectory/GetProfiles",
    ] {
        let response = client
            .post(stack.url(path))
            .bearer_auth(&access)
            .json(&json!({"ids": [user["id"]]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "POST {path} through the gateway");
    }

    // What Prometheus and the probes call, on the services themselves, is all there.
    for addr in [stack.auth_addr, stack.media_addr, stack.video_addr] {
        let text = client
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(text.contains("http_requests_total"), "{addr}/metrics");
        let report: Value = client
            .get(format!("http://{addr}/readyz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            report["checks"]["postgres"]["status"] == "up",
            "{addr}: {report}"
        );
    }
    let id = user["id"].as_str().unwrap().to_owned();
    let listed = stack.profiles(vec![id]).await.unwrap();
    assert_eq!(listed.profiles[0].username, "curious", "{listed:?}");
}

/// Traefik's own 413 is plain text; its `errors` middleware (traefik/dynamic,
/// k8s/base/gateway) replaces the body with what auth answers on `GET /errors/{status}`.
/// (Traefik cannot run here; crates/deployment checks every Traefik route with a body
/// limit has that middleware first.)
#[tokio::test]
async fn the_problem_pages_traefik_fetches_are_problem_json_and_not_routed() {
    let stack = Stack::start().await;
    let client = Client::new();
    let page = |status: &str| format!("http://{}/errors/{status}", stack.auth_addr);
    let too_large = client.get(page("413")).send().await.unwrap();
    assert_eq!(too_large.status(), 413);
    assert_eq!(
        too_large.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = too_large.json().await.unwrap();
    assert_eq!(
        body["type"], "https://kino.dev/problems/too-large",
        "{body}"
    );
    assert_eq!(body["status"], 413, "{body}");
    for not_an_error in ["200", "302", "999", "x"] {
        let response = client.get(page(not_an_error)).send().await.unwrap();
        assert_eq!(response.status(), 404, "/errors/{not_an_error}");
    }
    // Only the gateway asks it; clients cannot reach it through the gateway.
    let routed = client.get(stack.url("/errors/413")).send().await.unwrap();
    assert_eq!(routed.status(), 404);
}
