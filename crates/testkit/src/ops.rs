//! The shared shape of every service's readiness test: start the service with one
//! dependency unreachable, see `/readyz` answer 503 naming it (and only it) while
//! `/healthz` stays 200, bring the dependency back, see readiness return without a restart.

use std::{future::Future, time::Duration};

use serde_json::Value;

use crate::{Gate, TestEnv, authority, wait_for, with_authority};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    Postgres,
    Redis,
    RabbitMq,
    MongoDb,
    S3,
}

impl Dependency {
    /// The name the services use for it in `/readyz`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Redis => "redis",
            Self::RabbitMq => "rabbitmq",
            Self::MongoDb => "mongodb",
            Self::S3 => "s3",
        }
    }

    fn url(self, env: &mut TestEnv) -> &mut String {
        match self {
            Self::Postgres => &mut env.database_url,
            Self::Redis => &mut env.redis_url,
            Self::RabbitMq => &mut env.amqp_url,
            Self::MongoDb => &mut env.mongodb_uri,
            Self::S3 => &mut env.s3.endpoint,
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Self::Postgres => 5432,
            Self::Redis => 6379,
            Self::RabbitMq => 5672,
            Self::MongoDb => 27017,
            Self::S3 => 80,
        }
    }
}

/// GETs `url` and returns the status and JSON body.
pub async fn get_json(url: &str) -> (u16, Value) {
    let response = reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Runs the scenario for `dependency`. `start` gets the test's environment (with the
/// dependency's URL pointing at a closed gate) and returns the service's base URL, e.g.
/// `http://127.0.0.1:41234/media`. `all` lists every dependency the service reports.
pub async fn readiness_follows<F, Fut>(
    dependency: Dependency,
    all: &[&str],
    mut env: TestEnv,
    start: F,
) where
    F: FnOnce(&TestEnv) -> Fut,
    Fut: Future<Output = String>,
{
    let url = dependency.url(&mut env);
    let gate = Gate::start(&authority(url, dependency.default_port()), false).await;
    *url = with_authority(url, &gate.authority());
    let base = start(&env).await;
    let name = dependency.name();

    // The others come up (the database gets created and migrated, the bucket created);
    // the gated one stays down, named, with a reason.
    let body = wait_for(
        "every other dependency up",
        Duration::from_secs(30),
        || async {
            let (status, body) = get_json(&format!("{base}/readyz")).await;
            assert_eq!(status, 503, "readyz with {name} down: {body}");
            let others_up = all
                .iter()
                .filter(|d| **d != name)
                .all(|d| body["checks"][d]["status"] == "up");
            others_up.then_some(body)
        },
    )
    .await;
    assert_eq!(body["status"], "unready", "{body}");
    assert_eq!(body["checks"][name]["status"], "down", "{body}");
    assert!(
        body["checks"][name]["error"].is_string(),
        "a reason is given: {body}"
    );
    let (status, _) = get_json(&format!("{base}/healthz")).await;
    assert_eq!(status, 200, "healthz must not depend on {name}");

    gate.open();
    let body = wait_for(
        &format!("readiness after {name} returns"),
        Duration::from_secs(40),
        || async {
            let (status, body) = get_json(&format!("{base}/readyz")).await;
            (status == 200).then_some(body)
        },
    )
    .await;
    assert_eq!(body["status"], "ready", "{body}");
    for d in all {
        assert_eq!(body["checks"][d]["status"], "up", "{d}: {body}");
    }
}
