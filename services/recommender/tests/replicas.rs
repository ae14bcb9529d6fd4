//! Two recommender replicas on one database, and starts from an index snapshot in S3:
//! a replica restored from a snapshot catches up with what changed after it and answers
//! as the replica that built the index; events taken by either replica reach both; a
//! snapshot taken on another database is never loaded.
//!
//! Other tests' videos may reach this test's queues through the shared exchanges, so
//! answers are compared on this test's own videos.

mod common;

use std::{collections::HashSet, time::Duration};

use common::{App, of_topic, publish_catalogue, spawn_with};
use events::{
    interaction::Action,
    video::{VideoDeleted, VideoMetadata, VideoUpdated, Visibility},
};
use recommender::config::SnapshotConfig;
use testkit::TestEnv;
use uuid::Uuid;

fn with_snapshots(
    env: &TestEnv,
    s3: &platform::s3::S3Config,
    every: Duration,
) -> recommender::Config {
    let mut config = common::config(env);
    config.snapshots = Some(SnapshotConfig {
        s3: s3.clone(),
        prefix: "recommender/index".into(),
        interval: every,
    });
    config.follow_interval = Duration::from_millis(200);
    config
}

fn only(list: Vec<Uuid>, ours: &HashSet<Uuid>) -> Vec<Uuid> {
    list.into_iter().filter(|id| ours.contains(id)).collect()
}

/// The snapshot this replica's index was restored from.
fn restored_from(app: &App) -> Option<Uuid> {
    app.ctx.serving.get().unwrap().snapshot
}

#[tokio::test]
async fn a_replica_starts_from_the_snapshot_catches_up_and_follows_the_other() {
    let env = TestEnv::new("recommender");
    // A: builds the index from PostgreSQL and snapshots it within a second of a change.
    let a = spawn_with(with_snapshots(&env, &env.s3, Duration::from_secs(1))).await;
    assert_eq!(restored_from(&a), None, "nothing to restore yet");
    let catalogue = publish_catalogue(&a).await;
    let ours: HashSet<Uuid> = catalogue.iter().map(|(_, id)| *id).collect();
    let cooking = of_topic(&catalogue, "cooking");
    let football = of_topic(&catalogue, "football");
    let pool = a.ctx.db.pool().clone();
    let embedded: i64 =
        sqlx::query_scalar("SELECT max(embedding_seq) FROM videos WHERE id = ANY($1)")
            .bind(ours.iter().copied().collect::<Vec<_>>())
            .fetch_one(&pool)
            .await
            .unwrap();
    let store = a.ctx.snapshots.clone().unwrap();
    let first = testkit::wait_for("a snapshot of our vectors", Duration::from_secs(30), || {
        let store = store.clone();
        async move {
            let manifest = store.manifest().await.unwrap()?;
            (manifest.cursor.0 >= embedded).then_some(manifest)
        }
    })
    .await;
    assert!(first.vectors >= ours.len(), "{first:?}");
    let related_before = only(a.related(cooking[0], 100).await, &ours);
    drop(a);

    // B restores that snapshot; its snapshots are hourly, so what follows is not in one.
    let b = spawn_with(with_snapshots(&env, &env.s3, Duration::from_secs(3600))).await;
    assert_eq!(restored_from(&b), Some(first.id));
    assert_eq!(
        only(b.related(cooking[0], 100).await, &ours),
        related_before
    );

    // Changes after the snapshot, applied by B: a video made private, one deleted, a new one.
    let private = cooking[1];
    let deleted = cooking[2];
    b.video_event(VideoUpdated {
        video_id: private,
        owner_id: Uuid::now_v7(),
        metadata: VideoMetadata {
            title: common::CATALOGUE[1].1.into(),
            tags: common::CATALOGUE[1]
                .2
                .iter()
                .map(|t| (*t).to_owned())
                .collect(),
            description: common::CATALOGUE[1].3.into(),
            visibility: Visibility::Private,
            ..Default::default()
        },
    })
    .await;
    b.video_event(VideoDeleted {
        video_id: deleted,
        owner_id: Uuid::now_v7(),
    })
    .await;
    let late = b
        .publish(
            "Homemade gnocchi with butter and sage",
            &["cooking", "italian", "recipe"],
            "Potatoes, flour and a hot pan of brown butter.",
        )
        .await;
    b.wait_embedded(&[late]).await;
    let mut ours = ours;
    ours.insert(late);
    testkit::wait_for("B applied the changes", Duration::from_secs(20), || async {
        let related = b.related(cooking[0], 100).await;
        (related.contains(&late) && !related.contains(&private) && !related.contains(&deleted))
            .then_some(())
    })
    .await;

    // C restores the same snapshot and catches up from PostgreSQL: it answers as B does.
    let c = spawn_with(with_snapshots(&env, &env.s3, Duration::from_secs(3600))).await;
    assert_eq!(restored_from(&c), Some(first.id));
    for video in [cooking[0], late, football[0]] {
        assert_eq!(
            only(c.related(video, 100).await, &ours),
            only(b.related(video, 100).await, &ours),
            "related to {video}"
        );
    }
    assert!(
        c.related(deleted, 5).await.is_empty(),
        "a deleted video has no vector"
    );

    // Both replicas consume the same queues: whichever takes an event, both apply it.
    let user = Uuid::now_v7();
    for video in &football[..4] {
        b.interaction(user, *video, Action::Like).await;
    }
    b.wait_signals(user, &football[..4]).await;
    c.wait_signals(user, &football[..4]).await;
    let feed_b = only(common::ids(&b.recommended(user, 20, &[]).await), &ours);
    let feed_c = only(common::ids(&c.recommended(user, 20, &[]).await), &ours);
    assert_eq!(feed_b, feed_c);
    assert!(
        football[4..].iter().any(|v| feed_b.contains(v)),
        "{feed_b:?}"
    );
    // Scores are read from PostgreSQL, not from the consuming replica's memory: eight
    // likes of one video, split between the replicas, count eight times.
    let liked = football[0];
    for _ in 0..8 {
        c.interaction(user, liked, Action::Like).await;
    }
    let stored: f64 = testkit::wait_for("nine likes stored", Duration::from_secs(20), || {
        let pool = pool.clone();
        async move {
            let score: f64 = sqlx::query_scalar(
                "SELECT score FROM user_signals WHERE user_id = $1 AND video_id = $2",
            )
            .bind(user)
            .bind(liked)
            .fetch_one(&pool)
            .await
            .ok()?;
            (score > 26.9).then_some(score)
        }
    })
    .await;
    assert!(stored < 27.1, "nine likes of weight 3: {stored}");
    for app in [&b, &c] {
        testkit::wait_for(
            "the replica has the score",
            Duration::from_secs(5),
            || async {
                let (score, _) = app.ctx.serving.get().unwrap().tastes.get(user, liked)?;
                ((score.value - stored).abs() < 1e-6).then_some(())
            },
        )
        .await;
    }

    // A recommender on another database, pointed at this bucket, builds its own index.
    let elsewhere = TestEnv::new("recommender");
    let d = spawn_with(with_snapshots(
        &elsewhere,
        &env.s3,
        Duration::from_secs(3600),
    ))
    .await;
    assert_eq!(restored_from(&d), None);
}
