//! `processed_events` (the dedupe ids of applied events) stays bounded: ids older than
//! `PROCESSED_EVENTS_RETENTION_SECS` are pruned on the schedule (`PRUNE_INTERVAL_SECS`),
//! recent ones stay, so a redelivery of a recent event is still recognised.

mod common;

use std::time::Duration;

use events::{
    Envelope,
    video::{VideoCreated, VideoEvent, VideoMetadata},
};
use platform::Shutdown;
use sqlx::PgPool;
use testkit::TestEnv;
use uuid::Uuid;

fn config(env: &TestEnv) -> media::Config {
    let mut config = common::config(env);
    config.processed_events_retention = Duration::from_secs(3600);
    config.prune.interval = Duration::from_millis(200);
    config
}

/// A `video.created` as the catalogue consumer applies it (recording its id).
async fn applied(pool: &PgPool) -> Uuid {
    let created = Envelope::new(VideoCreated {
        video_id: Uuid::now_v7(),
        owner_id: Uuid::now_v7(),
        metadata: VideoMetadata::default(),
    });
    // Decoded as the consumer decodes a delivery.
    let envelope = VideoEvent::decode(&serde_json::to_vec(&created).unwrap()).unwrap();
    media::catalogue::events::apply(pool, &events::Namespace::new(""), &envelope)
        .await
        .unwrap();
    envelope.id
}

async fn recorded(pool: &PgPool, id: Uuid) -> bool {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM processed_events WHERE id = $1)")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn old_processed_event_ids_are_pruned_and_recent_ones_stay() {
    let env = TestEnv::new("media");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(media::run(config(&env), listener, Shutdown::new()));
    testkit::wait_for("media ready", Duration::from_secs(30), || async {
        let ready = reqwest::get(format!("http://{addr}/readyz")).await.ok()?;
        ready.status().is_success().then_some(())
    })
    .await;
    let pool = PgPool::connect(&env.database_url).await.unwrap();

    let old = applied(&pool).await;
    let recent = applied(&pool).await;
    assert!(recorded(&pool, old).await && recorded(&pool, recent).await);
    sqlx::query(
        "UPDATE processed_events SET processed_at = now() - interval '2 hours' WHERE id = $1",
    )
    .bind(old)
    .execute(&pool)
    .await
    .unwrap();

    testkit::wait_for("the old id pruned", Duration::from_secs(15), || async {
        (!recorded(&pool, old).await).then_some(())
    })
    .await;
    // A few more rounds: the recent id is never taken.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(recorded(&pool, recent).await);
}
