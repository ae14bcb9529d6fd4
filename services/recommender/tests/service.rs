//! The recommender on real PostgreSQL and RabbitMQ, with the real model: a catalogue of
//! distinct topics gives topical "more like this" and personal feeds; deletions and
//! visibility changes leave every result within 2 s; events are acknowledged while the
//! model is still busy; bad input gets a problem+json 4xx.
//!
//! Other tests' videos may reach this test's queue through the shared `video.events`
//! exchange, so answers are read restricted to this test's own videos.

mod common;

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use common::{of_topic, publish_catalogue, spawn_app};
use events::{
    interaction::Action,
    video::{VideoDeleted, VideoMetadata, VideoUpdated, Visibility},
};
use serde_json::json;
use testkit::TestEnv;
use uuid::Uuid;

/// `list` restricted to `ours`, order kept.
fn only(list: Vec<Uuid>, ours: &HashSet<Uuid>) -> Vec<Uuid> {
    list.into_iter().filter(|id| ours.contains(id)).collect()
}

#[tokio::test]
async fn related_videos_share_the_topic_and_a_liked_topic_leads_the_feed() {
    let env = TestEnv::new("recommender");
    let app = spawn_app(&env).await;
    let catalogue = publish_catalogue(&app).await;
    let ours: HashSet<Uuid> = catalogue.iter().map(|(_, id)| *id).collect();

    for topic in ["cooking", "football", "programming"] {
        let videos = of_topic(&catalogue, topic);
        let related = only(app.related(videos[0], 100).await.unwrap(), &ours);
        assert!(!related.contains(&videos[0]), "never the video itself");
        let same: HashSet<Uuid> = videos[1..].iter().copied().collect();
        assert!(
            related[..3].iter().all(|id| same.contains(id)),
            "{topic}: the three most related are {topic} videos"
        );
    }

    // A user who liked three football videos.
    let football = of_topic(&catalogue, "football");
    let user = Uuid::now_v7();
    for video in &football[..3] {
        app.interaction(user, *video, Action::Like).await;
    }
    let trending = of_topic(&catalogue, "programming");
    let unseen: HashSet<Uuid> = football[3..].iter().copied().collect();
    // The feed turns personal with the first like applied; wait for all three, or a liked
    // video not applied yet may still be recommended back.
    app.wait_signals(user, &football[..3]).await;
    let body = app.recommended(user, 20, &[]).await;
    assert_eq!(body["personalised"], true);
    let feed: Vec<Uuid> = only(common::ids(&body), &ours)
        .into_iter()
        .take(3)
        .collect();
    assert_eq!(
        feed.iter().copied().collect::<HashSet<_>>(),
        unseen,
        "the three football videos not liked yet, nothing already liked"
    );

    // Blended with trending: every fourth slot, still nothing already seen.
    let body = app.recommended(user, 8, &trending).await;
    let picks = body["videos"].as_array().unwrap();
    assert_eq!(picks[3]["source"], "trending");
    assert_eq!(picks[3]["id"], trending[0].to_string());
    assert!(
        football[..3]
            .iter()
            .all(|id| !common::ids(&body).contains(id))
    );

    // Someone who did nothing gets trending only.
    let body = app.recommended(Uuid::now_v7(), 3, &trending).await;
    assert_eq!(body["personalised"], false);
    assert_eq!(common::ids(&body), trending[..3]);
}

#[tokio::test]
async fn deleted_and_private_videos_leave_every_result_within_two_seconds() {
    let env = TestEnv::new("recommender");
    let app = spawn_app(&env).await;
    let catalogue = publish_catalogue(&app).await;
    let cooking = of_topic(&catalogue, "cooking");
    let user = Uuid::now_v7();
    app.interaction(user, cooking[0], Action::Like).await;
    let in_feed = |body: &serde_json::Value, id: Uuid| common::ids(body).contains(&id);
    testkit::wait_for("a cooking feed", Duration::from_secs(20), || async {
        let body = app.recommended(user, 10, &[]).await;
        (in_feed(&body, cooking[1]) && in_feed(&body, cooking[2])).then_some(())
    })
    .await;
    assert!(
        app.related(cooking[0], 100)
            .await
            .unwrap()
            .contains(&cooking[1])
    );

    let private = cooking[1];
    let deleted = cooking[2];
    let started = Instant::now();
    app.video_event(VideoUpdated {
        video_id: private,
        owner_id: Uuid::now_v7(),
        metadata: VideoMetadata {
            title: common::CATALOGUE[1].1.into(),
            visibility: Visibility::Private,
            ..Default::default()
        },
    })
    .await;
    app.video_event(VideoDeleted {
        video_id: deleted,
        owner_id: Uuid::now_v7(),
    })
    .await;
    testkit::wait_for("both gone everywhere", Duration::from_secs(2), || async {
        let related = app.related(cooking[0], 100).await.unwrap();
        let feed = app.recommended(user, 100, &[]).await;
        let gone = [private, deleted]
            .iter()
            .all(|id| !related.contains(id) && !in_feed(&feed, *id));
        gone.then_some(())
    })
    .await;
    println!("removed from results after {:?}", started.elapsed());
    assert_eq!(
        app.related(deleted, 5).await,
        None,
        "a deleted video has no vector"
    );

    // Public again: back in results.
    app.video_event(VideoUpdated {
        video_id: private,
        owner_id: Uuid::now_v7(),
        metadata: VideoMetadata {
            title: common::CATALOGUE[1].1.into(),
            visibility: Visibility::Public,
            ..Default::default()
        },
    })
    .await;
    testkit::wait_for("public again", Duration::from_secs(20), || async {
        app.related(cooking[0], 100)
            .await
            .unwrap()
            .contains(&private)
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn events_are_acknowledged_while_the_model_is_still_busy() {
    let env = TestEnv::new("recommender");
    let app = spawn_app(&env).await;
    // Many texts to embed, then a deletion of the first: the deletion is applied (and
    // its batch acknowledged) long before the model has worked through the backlog.
    let mut videos = Vec::new();
    for i in 0..300 {
        videos.push(
            app.publish(
                &format!("Video number {i} about the sea and sailing boats"),
                &["sailing"],
                "Waves, wind and boats.",
            )
            .await,
        );
    }
    app.video_event(VideoDeleted {
        video_id: videos[0],
        owner_id: Uuid::now_v7(),
    })
    .await;
    let pool = app.ctx.db.pool().clone();
    let (deleted, waiting): (bool, i64) =
        testkit::wait_for("the deletion applied", Duration::from_secs(30), || async {
            let deleted: bool = sqlx::query_scalar("SELECT deleted FROM videos WHERE id = $1")
                .bind(videos[0])
                .fetch_optional(&pool)
                .await
                .ok()??;
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM videos WHERE embedded_version IS DISTINCT FROM text_version
                 AND NOT deleted",
            )
            .fetch_one(&pool)
            .await
            .ok()?;
            deleted.then_some((deleted, waiting))
        })
        .await;
    assert!(deleted);
    assert!(
        waiting > 0,
        "the deletion was applied while {waiting} videos still waited for the model"
    );
}

#[tokio::test]
async fn bad_input_is_a_problem_and_unknown_videos_are_not_found() {
    let env = TestEnv::new("recommender");
    let app = spawn_app(&env).await;
    for (video, first) in [("not-a-uuid", "5"), (&Uuid::now_v7().to_string()[..], "0")] {
        let (status, body, content_type) = app.related_raw(video, first).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(body["status"], 400);
    }
    let (status, body, content_type) = app.related_raw(&Uuid::now_v7().to_string(), "5").await;
    assert_eq!(
        (status, content_type.as_str()),
        (404, "application/problem+json"),
        "{body}"
    );

    for bad in [
        json!({ "first": 5 }),
        json!({ "userId": "nope" }),
        json!({ "userId": Uuid::now_v7(), "first": 1000 }),
        json!({ "userId": Uuid::now_v7(), "trending": ["x"] }),
        json!({ "userId": Uuid::now_v7(), "extra": 1 }),
    ] {
        let (status, body) = app.recommended_raw(bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["detail"].is_string());
    }
}

#[tokio::test]
async fn vectors_survive_a_restart_with_their_model_version() {
    let env = TestEnv::new("recommender");
    let app = spawn_app(&env).await;
    let video = app
        .publish("Fresh pasta from scratch", &["cooking"], "Flour and eggs.")
        .await;
    app.wait_embedded(&[video]).await;
    let (model, version): (String, String) =
        sqlx::query_as("SELECT model, model_version FROM videos WHERE id = $1")
            .bind(video)
            .fetch_one(app.ctx.db.pool())
            .await
            .unwrap();
    assert_eq!(model, "all-MiniLM-L6-v2");
    assert_eq!(version, app.ctx.model.version);
    drop(app);

    // A new instance loads the vector from PostgreSQL at start: no re-embedding needed.
    let again = spawn_app(&env).await;
    assert!(
        again
            .ctx
            .serving
            .get()
            .unwrap()
            .index
            .vector(&video)
            .is_some()
    );
}
