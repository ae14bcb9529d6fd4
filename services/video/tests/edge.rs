//! What the video service makes of the gateway's identity and of input PostgreSQL cannot
//! store, asked directly (as the gateway would, with `X-User-Id` set): the same answers as
//! every other Kino service gives (crates/identity's edge contract, platform's problem).

mod common;

use std::time::Duration;

use base64::{Engine, engine::general_purpose::STANDARD};
use platform::Shutdown;
use reqwest::{Client, StatusCode};
use testkit::TestEnv;
use uuid::Uuid;

async fn spawn_app(env: &TestEnv) -> String {
    let config = common::config(env);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(video::run(config, listener, Shutdown::new()));
    let base = format!("http://{addr}/video");
    // Ready once PostgreSQL is migrated.
    for _ in 0..200 {
        let ready = Client::new().get(format!("{base}/readyz")).send().await;
        if ready.is_ok_and(|r| r.status() == 200) {
            return base;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("video did not become ready");
}

async fn assert_problem(response: reqwest::Response, status: StatusCode) -> serde_json::Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_malformed_user_id_from_the_gateway_is_refused_not_taken_for_anonymous() {
    let env = TestEnv::new("video");
    let base = spawn_app(&env).await;
    let client = Client::new();
    let video = format!("{base}/{}", Uuid::now_v7());

    // Anonymous: an unknown video is simply not found.
    let response = client.get(&video).send().await.unwrap();
    assert_eq!(response.status(), 404);
    // A header that is not a UUID: 400 on reads and on writes, as media answers it.
    let response = client
        .get(&video)
        .header("x-user-id", "not-a-uuid")
        .send()
        .await
        .unwrap();
    let problem = assert_problem(response, StatusCode::BAD_REQUEST).await;
    assert!(problem["detail"].as_str().unwrap().contains("x-user-id"));
    let response = client
        .post(format!("{base}/upload"))
        .header("x-user-id", "not-a-uuid")
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "10")
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn a_value_postgres_cannot_store_is_a_400_and_stores_nothing() {
    let env = TestEnv::new("video");
    let base = spawn_app(&env).await;
    let owner = Uuid::now_v7();
    // A NUL byte is allowed by the metadata rules (descriptions may hold newlines and
    // tabs) but not by PostgreSQL's text: SQLSTATE 22021, the client's input.
    let metadata = format!(
        "title {},description {}",
        STANDARD.encode("nul"),
        STANDARD.encode("a\0b")
    );
    let response = Client::new()
        .post(format!("{base}/upload"))
        .header("x-user-id", owner.to_string())
        .header("tus-resumable", "1.0.0")
        .header("upload-length", "10")
        .header("upload-metadata", metadata)
        .send()
        .await
        .unwrap();
    let problem = assert_problem(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(problem["type"], "https://kino.dev/problems/bad-request");
    assert_eq!(
        problem["detail"],
        platform::postgres::DATA_EXCEPTION_DETAIL,
        "refused by PostgreSQL, not by the metadata rules"
    );
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM videos")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);
}
