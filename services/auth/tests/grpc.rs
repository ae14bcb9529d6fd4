//! auth's gRPC user directory (`kino.auth.v1.UserDirectory`), called as media calls it:
//! public profiles only, bad input INVALID_ARGUMENT, a database outage UNAVAILABLE (never
//! INTERNAL), the standard health service following the database, and per-method metrics.

mod common;

use std::time::Duration;

use platform::Shutdown;
use rpc::auth::v1::{GetProfilesRequest, user_directory_client::UserDirectoryClient};
use serde_json::{Value, json};
use testkit::{Gate, TestEnv, authority, with_authority};
use tonic::{Code, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use uuid::Uuid;

struct App {
    http: String,
    channel: Channel,
}

impl App {
    async fn profiles(
        &self,
        ids: Vec<String>,
    ) -> Result<Vec<rpc::auth::v1::Profile>, tonic::Status> {
        let mut client = UserDirectoryClient::new(self.channel.clone());
        let answer = client.get_profiles(GetProfilesRequest { ids }).await?;
        Ok(answer.into_inner().profiles)
    }

    async fn health(&self, service: &str) -> ServingStatus {
        let mut client = HealthClient::new(self.channel.clone());
        let request = HealthCheckRequest {
            service: service.into(),
        };
        client.check(request).await.unwrap().into_inner().status()
    }
}

/// auth with its database behind `gate`.
async fn spawn_app(env: &TestEnv) -> App {
    let config = common::config(env);
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(auth::run(config, Shutdown::new(), Some(tx)));
    let bound = rx.await.expect("auth started");
    let channel = Channel::from_shared(format!("http://{}", bound.grpc))
        .unwrap()
        .connect_lazy();
    App {
        http: format!("http://{}", bound.http),
        channel,
    }
}

#[tokio::test]
async fn the_directory_answers_public_profiles_and_its_health_follows_the_database() {
    let mut env = TestEnv::new("auth");
    let gate = Gate::start(&authority(&env.database_url, 5432), false).await;
    env.database_url = with_authority(&env.database_url, &gate.authority());
    let app = spawn_app(&env).await;

    // The database unreachable: alive, not serving, and a lookup is UNAVAILABLE.
    assert_eq!(app.health("liveness").await, ServingStatus::Serving);
    for service in ["", "kino.auth.v1.UserDirectory"] {
        assert_eq!(
            app.health(service).await,
            ServingStatus::NotServing,
            "{service:?}"
        );
    }
    let status = app
        .profiles(vec![Uuid::now_v7().to_string()])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status}");

    gate.open();
    testkit::wait_for("SERVING", Duration::from_secs(40), || async {
        (app.health("kino.auth.v1.UserDirectory").await == ServingStatus::Serving).then_some(())
    })
    .await;
    assert_eq!(app.health("").await, ServingStatus::Serving);

    let registered: Value = reqwest::Client::new()
        .post(format!("{}/auth/register", app.http))
        .json(&json!({
            "username": "grace_h",
            "email": "grace@example.com",
            "password": "correct horse battery",
            "display_name": "Grace Hopper",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = registered["id"].as_str().unwrap().to_owned();

    // Unknown ids are omitted, duplicates answered once, and no email ever.
    let unknown = Uuid::now_v7().to_string();
    let profiles = app
        .profiles(vec![id.clone(), unknown, id.clone()])
        .await
        .unwrap();
    assert_eq!(profiles.len(), 1, "{profiles:?}");
    let profile = &profiles[0];
    assert_eq!(
        (profile.id.as_str(), profile.username.as_str()),
        (id.as_str(), "grace_h")
    );
    assert_eq!(profile.display_name.as_deref(), Some("Grace Hopper"));
    let created = rpc::from_timestamp(profile.created_at.as_ref()).unwrap();
    assert!(
        (time::OffsetDateTime::now_utc() - created)
            .whole_seconds()
            .abs()
            < 60
    );
    assert!(!format!("{profiles:?}").contains("grace@example.com"));
    assert!(app.profiles(vec![]).await.unwrap().is_empty());
    // Staff roles come along (media weighs them before a ban), as they are now.
    assert!(profile.roles.is_empty(), "{profile:?}");
    let db = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    sqlx::query("UPDATE users SET roles = '{moderator}' WHERE id = $1::uuid")
        .bind(&id)
        .execute(&db)
        .await
        .unwrap();
    let profiles = app.profiles(vec![id.clone()]).await.unwrap();
    assert_eq!(profiles[0].roles, ["moderator"]);

    // Bad input: INVALID_ARGUMENT, saying why.
    let too_many: Vec<String> = (0..101).map(|_| Uuid::now_v7().to_string()).collect();
    let exactly: Vec<String> = too_many[..100].to_vec();
    assert!(app.profiles(exactly).await.is_ok());
    for (bad, why) in [
        (too_many, "at most 100"),
        (vec![id.clone(), "not-a-uuid".into()], "not a UUID"),
        (vec![String::new()], "not a UUID"),
        (vec!["'; DROP TABLE users; --".into()], "not a UUID"),
    ] {
        let status = app.profiles(bad).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status}");
        assert!(status.message().contains(why), "{status}");
    }

    // Per method and code on /metrics.
    let metrics = reqwest::get(format!("{}/metrics", app.http))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let count = |code: &str| {
        metrics
            .lines()
            .find(|l| {
                l.starts_with("grpc_server_handled_total{")
                    && l.contains(r#"grpc_service="kino.auth.v1.UserDirectory""#)
                    && l.contains(r#"grpc_method="GetProfiles""#)
                    && l.contains(&format!(r#"grpc_code="{code}""#))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
    };
    assert_eq!(count("InvalidArgument"), Some(4), "{metrics}");
    assert_eq!(count("Unavailable"), Some(1), "{metrics}");
    assert_eq!(count("OK"), Some(4), "{metrics}");
}
