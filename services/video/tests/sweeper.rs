//! Abandoned uploads do not accumulate: an upload untouched for `UPLOAD_EXPIRY_SECS` is
//! removed by the sweeper on its schedule — its row, its staged pieces, and its S3
//! multipart upload, aborted (an unfinished multipart upload keeps its parts, billed,
//! until aborted) — while an upload in progress stays and resumes.

mod common;

use std::time::Duration;

use platform::Shutdown;
use reqwest::{Client, StatusCode};
use testkit::TestEnv;
use uuid::Uuid;

async fn spawn_app(env: &TestEnv) -> String {
    let mut config = common::config(env);
    config.uploads.sweep_interval = Duration::from_millis(200);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(video::run(config, listener, Shutdown::new()));
    let base = format!("http://{addr}/video");
    testkit::wait_for("video ready", Duration::from_secs(30), || async {
        let ready = Client::new().get(format!("{base}/readyz")).send().await;
        ready.is_ok_and(|r| r.status() == 200).then_some(())
    })
    .await;
    base
}

/// A tus upload of `length` bytes with its first 100 bytes stored (a staged piece).
async fn started_upload(base: &str, owner: Uuid, length: usize) -> Uuid {
    let client = Client::new();
    let created = client
        .post(format!("{base}/upload"))
        .header("x-user-id", owner.to_string())
        .header("tus-resumable", "1.0.0")
        .header("upload-length", length.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let id: Uuid = location.rsplit('/').next().unwrap().parse().unwrap();
    assert_eq!(patch(base, owner, id, 0, 100).await, StatusCode::NO_CONTENT);
    id
}

async fn patch(base: &str, owner: Uuid, id: Uuid, offset: usize, n: usize) -> StatusCode {
    Client::new()
        .patch(format!("{base}/upload/{id}"))
        .header("x-user-id", owner.to_string())
        .header("tus-resumable", "1.0.0")
        .header("upload-offset", offset.to_string())
        .header("content-type", "application/offset+octet-stream")
        .body(vec![7u8; n])
        .send()
        .await
        .unwrap()
        .status()
}

async fn staged_objects(s3: &aws_sdk_s3::Client, bucket: &str, id: Uuid) -> usize {
    let listed = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(format!("staging/{id}/"))
        .send()
        .await
        .unwrap();
    listed.contents().len()
}

#[tokio::test]
async fn an_abandoned_upload_is_removed_with_its_multipart_upload_and_a_live_one_stays() {
    let env = TestEnv::new("video");
    let base = spawn_app(&env).await;
    let owner = Uuid::now_v7();
    let abandoned = started_upload(&base, owner, 1000).await;
    let live = started_upload(&base, owner, 1000).await;

    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let upload_id: String = sqlx::query_scalar("SELECT s3_upload_id FROM videos WHERE id = $1")
        .bind(abandoned)
        .fetch_one(&pool)
        .await
        .unwrap();
    let s3 = platform::s3::client(&env.s3);
    let bucket = env.s3.bucket.clone();
    assert_eq!(staged_objects(&s3, &bucket, abandoned).await, 1);

    // Nobody touched it for UPLOAD_EXPIRY_SECS (aged here rather than waited for).
    sqlx::query("UPDATE videos SET expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(abandoned)
        .execute(&pool)
        .await
        .unwrap();
    testkit::wait_for(
        "the abandoned upload removed",
        Duration::from_secs(15),
        || async {
            let left: i64 = sqlx::query_scalar("SELECT count(*) FROM videos WHERE id = $1")
                .bind(abandoned)
                .fetch_one(&pool)
                .await
                .unwrap();
            (left == 0).then_some(())
        },
    )
    .await;
    assert_eq!(staged_objects(&s3, &bucket, abandoned).await, 0);
    // Its multipart upload is gone from S3: a part can no longer be added to it.
    let part = s3
        .upload_part()
        .bucket(&bucket)
        .key(format!("sources/{abandoned}"))
        .upload_id(&upload_id)
        .part_number(1)
        .body(vec![1u8; 10].into())
        .send()
        .await;
    assert!(part.is_err(), "the multipart upload was not aborted");
    // Its owner is told it is gone.
    let status = Client::new()
        .head(format!("{base}/upload/{abandoned}"))
        .header("x-user-id", owner.to_string())
        .header("tus-resumable", "1.0.0")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The upload in progress was left alone, through several sweeps, and resumes.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(staged_objects(&s3, &bucket, live).await, 1);
    assert_eq!(
        patch(&base, owner, live, 100, 100).await,
        StatusCode::NO_CONTENT
    );
    let offset: i64 = sqlx::query_scalar("SELECT upload_offset FROM videos WHERE id = $1")
        .bind(live)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(offset, 200);
}
