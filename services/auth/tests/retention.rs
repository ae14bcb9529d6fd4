//! `refresh_tokens` stays bounded: tokens expired, or revoked, longer than
//! `REFRESH_TOKEN_RETENTION_SECS` ago are pruned on the schedule (`PRUNE_INTERVAL_SECS`),
//! while a live session and the rows it still needs stay: its current token (which still
//! refreshes), a rotated token within its retention (so its reuse is still detected), and
//! a family revoked recently.

mod common;

use std::time::Duration;

use platform::Shutdown;
use reqwest::Client;
use serde_json::{Value, json};
use sqlx::PgPool;
use testkit::TestEnv;
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery";

async fn spawn_app(env: &TestEnv) -> String {
    let mut config = common::config(env);
    config.tokens.refresh_retention = Duration::from_secs(3600);
    config.prune.interval = Duration::from_millis(200);
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(auth::run(config, Shutdown::new(), Some(tx)));
    let addr = rx.await.expect("auth started").http;
    let base = format!("http://{addr}/auth");
    testkit::wait_for("auth ready", Duration::from_secs(30), || async {
        let ready = reqwest::get(format!("{base}/readyz")).await.ok()?;
        ready.status().is_success().then_some(())
    })
    .await;
    base
}

async fn post(base: &str, path: &str, body: Value, bearer: Option<&str>) -> reqwest::Response {
    let mut request = Client::new().post(format!("{base}{path}")).json(&body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

async fn login(base: &str) -> Value {
    let response = post(
        base,
        "/login",
        json!({ "login": "keeper", "password": PASSWORD }),
        None,
    )
    .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn refresh(base: &str, pair: &Value) -> reqwest::Response {
    let token = pair["refresh_token"].as_str().unwrap();
    post(base, "/refresh", json!({ "refresh_token": token }), None).await
}

/// The token hashes of a family, oldest first.
async fn family(pool: &PgPool, family: Uuid) -> Vec<Vec<u8>> {
    sqlx::query_scalar(
        "SELECT token_hash FROM refresh_tokens WHERE family_id = $1 ORDER BY created_at, token_hash",
    )
    .bind(family)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// The family of the newest row (the one the last login or refresh created).
async fn newest_family(pool: &PgPool) -> Uuid {
    sqlx::query_scalar("SELECT family_id FROM refresh_tokens ORDER BY created_at DESC LIMIT 1")
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn exists(pool: &PgPool, hash: &[u8]) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM refresh_tokens WHERE token_hash = $1)")
        .bind(hash)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn age(pool: &PgPool, column: &str, hash: &[u8], ago: &str) {
    sqlx::query(&format!(
        "UPDATE refresh_tokens SET {column} = now() - interval '{ago}' WHERE token_hash = $1"
    ))
    .bind(hash)
    .execute(pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn expired_and_revoked_refresh_tokens_are_pruned_and_live_sessions_keep_what_they_need() {
    let env = TestEnv::new("auth");
    let base = spawn_app(&env).await;
    let registered = post(
        &base,
        "/register",
        json!({ "username": "keeper", "email": "keeper@example.com", "password": PASSWORD }),
        None,
    )
    .await;
    assert_eq!(registered.status(), 201);
    let pool = PgPool::connect(&env.database_url).await.unwrap();

    // A live session refreshed twice: rotated, rotated, current.
    let first = login(&base).await;
    let session = newest_family(&pool).await;
    let second: Value = refresh(&base, &first).await.json().await.unwrap();
    let third: Value = refresh(&base, &second).await.json().await.unwrap();
    let rows = family(&pool, session).await;
    assert_eq!(rows.len(), 3);
    let (old_rotated, recent_rotated, current) = (&rows[0], &rows[1], &rows[2]);
    // The first rotated token expired two hours ago (retention: one hour); the second
    // only half an hour ago, so presenting it must still count as reuse.
    age(&pool, "expires_at", old_rotated, "2 hours").await;
    age(&pool, "expires_at", recent_rotated, "30 minutes").await;

    // A session logged out two hours ago, and one logged out just now.
    let gone = login(&base).await;
    let gone_family = newest_family(&pool).await;
    let access = gone["access_token"].as_str().unwrap();
    assert_eq!(
        post(&base, "/logout", json!({}), Some(access))
            .await
            .status(),
        204
    );
    let gone_row = family(&pool, gone_family).await.remove(0);
    age(&pool, "revoked_at", &gone_row, "2 hours").await;
    let recent = login(&base).await;
    let recent_family = newest_family(&pool).await;
    let access = recent["access_token"].as_str().unwrap();
    assert_eq!(
        post(&base, "/logout", json!({}), Some(access))
            .await
            .status(),
        204
    );
    let recent_row = family(&pool, recent_family).await.remove(0);

    testkit::wait_for("old tokens pruned", Duration::from_secs(15), || async {
        (!exists(&pool, old_rotated).await && !exists(&pool, &gone_row).await).then_some(())
    })
    .await;
    // A few more rounds: what is still needed is never taken.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        exists(&pool, recent_rotated).await,
        "a rotated token within its retention"
    );
    assert!(exists(&pool, current).await, "the live session's token");
    assert!(
        exists(&pool, &recent_row).await,
        "a recently revoked family"
    );

    // The live session still refreshes.
    let fourth = refresh(&base, &third).await;
    assert_eq!(fourth.status(), 200);
    // And reuse of its recent rotated token is still detected: the family is revoked.
    assert_eq!(refresh(&base, &second).await.status(), 401);
    let fourth: Value = fourth.json().await.unwrap();
    assert_eq!(
        refresh(&base, &fourth).await.status(),
        401,
        "family revoked on reuse"
    );
}
