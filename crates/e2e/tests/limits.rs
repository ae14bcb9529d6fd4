//! Abuse limits through the gateway: registration per IP (auth), creating mutations per
//! user and per IP (media, shared by replicas), upload creation per user, storage quota and
//! concurrent uploads (video). Limits are lowered here through each service's
//! configuration; the rest of the suite runs with them out of reach (e2e::UNREACHABLE).

mod video_common;

use std::time::Duration;

use e2e::Stack;
use events::video::VideoMetadata;
use platform::rate_limit::Rate;
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;
use video_common::{PASSWORD, keys, user};

fn rate(max: u32, secs: u64) -> Option<Rate> {
    Some(Rate {
        max,
        window: Duration::from_secs(secs),
    })
}

/// A `Retry-After` of whole seconds, within the window.
fn retry_after(response: &Response, window_secs: u64) -> u64 {
    let value = response
        .headers()
        .get("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After on {}", response.status()));
    let secs: u64 = value.to_str().unwrap().parse().unwrap();
    assert!(
        (1..=2 * window_secs).contains(&secs),
        "Retry-After {secs} outside 1..={}",
        2 * window_secs
    );
    secs
}

async fn problem(response: Response) -> Value {
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    response.json().await.unwrap()
}

#[tokio::test]
async fn registration_over_the_ip_limit_gets_429_and_creates_nothing() {
    let stack = Stack::start_with(|auth| auth.register_ip_rate = rate(3, 3600)).await;
    for name in ["reg_a", "reg_b", "reg_c"] {
        stack.register(name, PASSWORD).await;
    }
    let response = Client::new()
        .post(stack.url("/auth/register"))
        .json(&json!({ "username": "reg_d", "email": "reg_d@example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    retry_after(&response, 3600);
    let body = problem(response).await;
    assert_eq!(body["status"], 429);

    let db = sqlx::PgPool::connect(&stack.auth_database_url())
        .await
        .unwrap();
    let users: Vec<String> = sqlx::query_scalar("SELECT username::text FROM users ORDER BY 1")
        .fetch_all(&db)
        .await
        .unwrap();
    assert_eq!(
        users,
        ["reg_a", "reg_b", "reg_c"],
        "the refused one is not created"
    );
}

/// GraphQL straight to one media replica, as the gateway would forward `user`'s request.
async fn graphql_at(
    addr: std::net::SocketAddr,
    user: Uuid,
    query: &str,
    variables: Value,
) -> Value {
    let response = Client::new()
        .post(format!("http://{addr}/media/graphql"))
        .header("x-user-id", user.to_string())
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The error of a refused mutation: RATE_LIMITED with a `retryAfter` within the window.
fn assert_rate_limited(body: &Value, window_secs: u64) {
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], "RATE_LIMITED", "{body}");
    let secs = error["extensions"]["retryAfter"]
        .as_u64()
        .unwrap_or_else(|| panic!("no retryAfter in {body}"));
    assert!((1..=2 * window_secs).contains(&secs), "retryAfter {secs}");
}

async fn ready_video(stack: &Stack, owner: Uuid, title: &str) -> Uuid {
    let id = stack
        .publish_video(
            owner,
            VideoMetadata {
                title: title.into(),
                ..Default::default()
            },
        )
        .await;
    stack.wait_video_ready(None, id).await;
    id
}

#[tokio::test]
async fn comments_over_the_user_limit_are_refused_on_every_replica() {
    let stack =
        Stack::start_configured(|_| {}, |media| media.rates.comment.user = rate(3, 60)).await;
    let (replica, _) = stack.spawn_media_replica(|_| {}).await;
    let owner = Uuid::now_v7();
    let video = ready_video(&stack, owner, "Limited").await;
    let (author, other) = (Uuid::now_v7(), Uuid::now_v7());
    let token = stack.token_for(author, "author");
    let add = "mutation($v: ID!, $b: String!) { addComment(videoId: $v, body: $b) { id } }";

    // Three comments, spread over both replicas: the budget is one, in Redis.
    for body in ["one", "two"] {
        stack
            .graphql_ok(Some(&token), add, json!({ "v": video, "b": body }))
            .await;
    }
    let third = graphql_at(replica, author, add, json!({ "v": video, "b": "three" })).await;
    assert!(third.get("errors").is_none(), "{third}");
    let refused = graphql_at(replica, author, add, json!({ "v": video, "b": "four" })).await;
    assert_rate_limited(&refused, 60);
    assert_eq!(refused["data"], Value::Null);
    let refused = stack
        .graphql(Some(&token), add, json!({ "v": video, "b": "five" }))
        .await;
    assert_rate_limited(&refused, 60);

    // Someone else still may: the limit is per user.
    let other_token = stack.token_for(other, "other");
    stack
        .graphql_ok(Some(&other_token), add, json!({ "v": video, "b": "mine" }))
        .await;

    let data = stack
        .graphql_ok(
            None,
            "query($v: ID!) { comments(videoId: $v, first: 20) { edges { node { body } } } }",
            json!({ "v": video }),
        )
        .await;
    let mut bodies: Vec<&str> = data["comments"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["body"].as_str().unwrap())
        .collect();
    bodies.sort();
    assert_eq!(
        bodies,
        ["mine", "one", "three", "two"],
        "nothing refused was written"
    );
}

#[tokio::test]
async fn likes_and_subscriptions_over_their_limits_write_nothing() {
    let stack = Stack::start_configured(
        |_| {},
        |media| {
            media.rates.like.user = rate(2, 60);
            media.rates.subscribe.user = rate(1, 60);
        },
    )
    .await;
    let owner = Uuid::now_v7();
    let mut videos = Vec::new();
    for title in ["a", "b", "c"] {
        videos.push(ready_video(&stack, owner, title).await);
    }
    let fan = Uuid::now_v7();
    let token = stack.token_for(fan, "fan");
    let like = "mutation($id: ID!) { likeVideo(videoId: $id) { likeCount } }";
    for video in &videos[..2] {
        stack
            .graphql_ok(Some(&token), like, json!({ "id": video }))
            .await;
    }
    let refused = stack
        .graphql(Some(&token), like, json!({ "id": videos[2] }))
        .await;
    assert_rate_limited(&refused, 60);
    let data = stack
        .graphql_ok(
            Some(&token),
            "query($id: ID!) { video(id: $id) { likeCount viewerHasLiked } }",
            json!({ "id": videos[2] }),
        )
        .await;
    assert_eq!(
        data["video"],
        json!({ "likeCount": 0, "viewerHasLiked": false })
    );

    // Channels must be real accounts (media asks auth for them).
    let (first, _) = stack_user(&stack, "chan_one").await;
    let (second, _) = stack_user(&stack, "chan_two").await;
    let subscribe =
        "mutation($c: ID!) { subscribe(channelId: $c) { subscriberCount viewerIsSubscribed } }";
    stack
        .graphql_ok(Some(&token), subscribe, json!({ "c": first }))
        .await;
    let refused = stack
        .graphql(Some(&token), subscribe, json!({ "c": second }))
        .await;
    assert_rate_limited(&refused, 60);
    let db = sqlx::PgPool::connect(&format!("{}_media", stack.env.database_url))
        .await
        .unwrap();
    let follows: i64 = sqlx::query_scalar("SELECT count(*) FROM follows WHERE follower_id = $1")
        .bind(fan)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(follows, 1, "the refused subscription is not stored");
}

async fn stack_user(stack: &Stack, name: &str) -> (Uuid, String) {
    let (id, token) = user(stack, name).await;
    (id.parse().unwrap(), token)
}

#[tokio::test]
async fn the_ip_limit_counts_every_user_behind_one_address() {
    let stack = Stack::start_configured(|_| {}, |media| media.rates.like.ip = rate(2, 60)).await;
    let owner = Uuid::now_v7();
    let video = ready_video(&stack, owner, "Popular").await;
    let like = "mutation($id: ID!) { likeVideo(videoId: $id) { likeCount } }";
    // Every request through the gateway comes from 127.0.0.1 here.
    for name in ["u1", "u2"] {
        let token = stack.token_for(Uuid::now_v7(), name);
        stack
            .graphql_ok(Some(&token), like, json!({ "id": video }))
            .await;
    }
    let token = stack.token_for(Uuid::now_v7(), "u3");
    let refused = stack
        .graphql(Some(&token), like, json!({ "id": video }))
        .await;
    assert_rate_limited(&refused, 60);
    let data = stack
        .graphql_ok(
            None,
            "query($id: ID!) { video(id: $id) { likeCount } }",
            json!({ "id": video }),
        )
        .await;
    assert_eq!(data["video"]["likeCount"], 2);
}

/// A tus creation request (no data) of `length` bytes; optional body (creation-with-upload).
async fn create_upload(stack: &Stack, token: &str, length: u64, body: Option<Vec<u8>>) -> Response {
    let mut request = Client::new()
        .post(stack.url("/video/upload"))
        .bearer_auth(token)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", length.to_string())
        .header("upload-metadata", "filename dGVzdC5tcDQ=");
    if let Some(body) = body {
        request = request
            .header("content-type", "application/offset+octet-stream")
            .body(body);
    }
    request.send().await.unwrap()
}

async fn tus_max_size(stack: &Stack, token: Option<&str>) -> u64 {
    let mut request = Client::new().request(reqwest::Method::OPTIONS, stack.url("/video/upload"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    response.headers()["tus-max-size"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn upload_rows(stack: &Stack, owner: &str) -> i64 {
    let db = sqlx::PgPool::connect(&stack.video_database_url())
        .await
        .unwrap();
    sqlx::query_scalar("SELECT count(*) FROM videos WHERE owner_id = $1::uuid")
        .bind(owner)
        .fetch_one(&db)
        .await
        .unwrap()
}

#[tokio::test]
async fn upload_creation_over_the_rate_gets_429() {
    let stack = Stack::start_with_video(|video| video.limits.user_rate = rate(2, 3600)).await;
    let (owner, token) = user(&stack, "rate_uploader").await;
    for _ in 0..2 {
        let response = create_upload(&stack, &token, 1000, None).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let response = create_upload(&stack, &token, 1000, None).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    retry_after(&response, 3600);
    let body = problem(response).await;
    assert_eq!(body["type"], "https://kino.dev/problems/rate-limited");
    assert_eq!(upload_rows(&stack, &owner).await, 2);
}

#[tokio::test]
async fn uploads_past_the_quota_get_413_before_a_byte_is_stored() {
    const QUOTA: u64 = 10_000;
    let max_size = video::UploadConfig::default().max_size;
    let stack = Stack::start_with_video(|video| video.limits.quota_bytes = Some(QUOTA)).await;
    let (owner, token) = user(&stack, "quota_uploader").await;

    assert_eq!(
        tus_max_size(&stack, None).await,
        max_size,
        "anonymous: UPLOAD_MAX_SIZE"
    );
    assert_eq!(tus_max_size(&stack, Some(&token)).await, QUOTA);
    let response = create_upload(&stack, &token, 6_000, None).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        tus_max_size(&stack, Some(&token)).await,
        4_000,
        "an unfinished upload holds its whole length"
    );

    // Past the quota, with the bytes in the creation request: nothing of it is kept.
    let response = create_upload(&stack, &token, 5_000, Some(vec![7; 5_000])).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body = problem(response).await;
    assert_eq!(body["type"], "https://kino.dev/problems/quota-exceeded");
    assert!(body["detail"].as_str().unwrap().contains("4000"), "{body}");
    assert_eq!(upload_rows(&stack, &owner).await, 1);
    assert!(keys(&stack, "").await.is_empty(), "no object stored");

    // What fits still fits.
    let response = create_upload(&stack, &token, 4_000, None).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(tus_max_size(&stack, Some(&token)).await, 0);
}

#[tokio::test]
async fn more_concurrent_uploads_than_the_cap_are_refused_until_one_ends() {
    let stack = Stack::start_with_video(|video| video.limits.max_concurrent = Some(2)).await;
    let (owner, token) = user(&stack, "busy_uploader").await;
    // Four at once: the per-user lock lets none pass on a count another is changing.
    let responses =
        futures::future::join_all((0..4).map(|_| create_upload(&stack, &token, 1000, None))).await;
    let mut locations = Vec::new();
    let mut refused = 0;
    for response in responses {
        match response.status() {
            StatusCode::CREATED => {
                locations.push(response.headers()["location"].to_str().unwrap().to_owned());
            }
            StatusCode::FORBIDDEN => {
                let body = problem(response).await;
                assert_eq!(body["type"], "https://kino.dev/problems/too-many-uploads");
                refused += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((locations.len(), refused), (2, 2));
    assert_eq!(upload_rows(&stack, &owner).await, 2);

    // Terminating one frees its slot.
    let response = Client::new()
        .delete(stack.url(&locations[0]))
        .bearer_auth(&token)
        .header("tus-resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = create_upload(&stack, &token, 1000, None).await;
    assert_eq!(response.status(), StatusCode::CREATED);
}
