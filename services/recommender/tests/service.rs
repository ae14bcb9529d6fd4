//! The recommender on real PostgreSQL and RabbitMQ, with the real model: a catalogue of
//! distinct topics gives topical "more like this" and personal feeds; deletions and
//! visibility changes leave every result within 2 s; events are acknowledged while the
//! model is still busy; bad input is INVALID_ARGUMENT, and the gRPC health service follows
//! the stores.
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
use rpc::recommender::v1::{Recommendations, RecommendedRequest, Source};
use testkit::TestEnv;
use tonic::{Code, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
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
        let related = only(app.related(videos[0], 100).await, &ours);
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
    assert!(body.personalised);
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
    let picks = &body.videos;
    assert_eq!(picks[3].source(), Source::Trending);
    assert_eq!(picks[3].id, trending[0].to_string());
    assert!(
        football[..3]
            .iter()
            .all(|id| !common::ids(&body).contains(id))
    );

    // Someone who did nothing gets trending only.
    let body = app.recommended(Uuid::now_v7(), 3, &trending).await;
    assert!(!body.personalised);
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
    let in_feed = |body: &Recommendations, id: Uuid| common::ids(body).contains(&id);
    testkit::wait_for("a cooking feed", Duration::from_secs(20), || async {
        let body = app.recommended(user, 10, &[]).await;
        (in_feed(&body, cooking[1]) && in_feed(&body, cooking[2])).then_some(())
    })
    .await;
    assert!(app.related(cooking[0], 100).await.contains(&cooking[1]));

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
        let related = app.related(cooking[0], 100).await;
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
        Vec::<Uuid>::new(),
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
async fn bad_input_is_invalid_argument_and_unknown_videos_get_an_empty_answer() {
    let env = TestEnv::new("recommender");
    let app = spawn_app(&env).await;
    let unknown = Uuid::now_v7().to_string();
    for (video, first) in [("not-a-uuid", 5), ("", 5), (&unknown[..], 101)] {
        let status = app.related_raw(video, first).await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{video:?} {first}: {status}"
        );
        assert!(!status.message().is_empty());
    }
    let answer = app.related_raw(&unknown, 5).await.unwrap();
    assert!(
        answer.videos.is_empty() && !answer.personalised,
        "{answer:?}"
    );
    // 0 is "unset": the default.
    assert!(app.related_raw(&unknown, 0).await.is_ok());

    let user = Uuid::now_v7().to_string();
    let request = |user_id: &str, first: u32, trending: Vec<String>| RecommendedRequest {
        user_id: user_id.to_owned(),
        first,
        trending,
    };
    for bad in [
        request("", 5, vec![]),
        request("nope", 5, vec![]),
        request(&user, 1000, vec![]),
        request(&user, 5, vec!["x".into()]),
        request(
            &user,
            5,
            (0..501).map(|_| Uuid::now_v7().to_string()).collect(),
        ),
    ] {
        let status = app.recommended_raw(bad.clone()).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    }
    let trending: Vec<String> = (0..500).map(|_| Uuid::now_v7().to_string()).collect();
    let answer = app
        .recommended_raw(request(&user, 100, trending.clone()))
        .await
        .unwrap();
    let ids: Vec<String> = answer.videos.iter().map(|p| p.id.clone()).collect();
    assert_eq!(
        ids,
        trending[..100],
        "no taste yet: the trending ids, in order"
    );

    // Each call is counted per method and code.
    let root = app.base.trim_end_matches("/recommender");
    let metrics = reqwest::get(format!("{root}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = metrics
        .lines()
        .find(|l| {
            l.starts_with("grpc_server_handled_total")
                && l.contains(r#"grpc_method="Related""#)
                && l.contains(r#"grpc_code="InvalidArgument""#)
        })
        .unwrap_or_else(|| panic!("no Related InvalidArgument series in\n{metrics}"));
    assert!(series.ends_with(" 3"), "{series}");
    assert!(metrics.contains("grpc_server_handling_seconds_bucket"));
}

#[tokio::test]
async fn grpc_health_follows_the_database() {
    let mut env = TestEnv::new("recommender");
    let gate = testkit::Gate::start(&testkit::authority(&env.database_url, 5432), true).await;
    env.database_url = testkit::with_authority(&env.database_url, &gate.authority());
    let app = spawn_app(&env).await;
    let health = |service: &'static str| {
        let channel = Channel::from_shared(format!("http://{}", app.grpc))
            .unwrap()
            .connect_lazy();
        async move {
            let mut client = HealthClient::new(channel);
            let request = HealthCheckRequest {
                service: service.into(),
            };
            client.check(request).await.map(|r| r.into_inner().status())
        }
    };
    // Ready over HTTP (the index loaded); the health service follows within its interval.
    testkit::wait_for("SERVING", Duration::from_secs(10), || async {
        (health("").await.ok()? == ServingStatus::Serving).then_some(())
    })
    .await;
    let status = health("kino.recommender.v1.Recommender").await.unwrap();
    assert_eq!(status, ServingStatus::Serving);
    assert_eq!(health("liveness").await.unwrap(), ServingStatus::Serving);
    assert_eq!(
        health("kino.nope").await.unwrap_err().code(),
        Code::NotFound
    );

    gate.close();
    testkit::wait_for("NOT_SERVING", Duration::from_secs(20), || async {
        (health("").await.ok()? == ServingStatus::NotServing).then_some(())
    })
    .await;
    gate.open();
    testkit::wait_for("SERVING again", Duration::from_secs(30), || async {
        (health("kino.recommender.v1.Recommender").await.ok()? == ServingStatus::Serving)
            .then_some(())
    })
    .await;
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
