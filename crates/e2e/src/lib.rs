//! The whole platform in one test process: every service on a random port with the test's
//! own databases and bucket, behind the real gateway. [`Stack::start`] is the end-to-end
//! `spawn_app()`.

use std::time::Duration;

use platform::{Shutdown, config::HttpConfig, postgres::PostgresConfig};
use testkit::{
    TestEnv,
    gateway::{Gateway, Upstreams},
};

pub struct Stack {
    pub gateway: Gateway,
    pub env: TestEnv,
    pub shutdown: Shutdown,
    /// The key auth signs with (tests forge tokens with it).
    pub signing_key: identity::SigningKey,
    /// Direct addresses of the services, bypassing the gateway.
    pub auth_addr: std::net::SocketAddr,
    pub media_addr: std::net::SocketAddr,
}

fn http() -> HttpConfig {
    HttpConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        shutdown_grace: Duration::from_secs(3),
    }
}

fn postgres(env: &TestEnv, service: &str) -> PostgresConfig {
    // One database per service, as in production.
    PostgresConfig {
        url: format!("{}_{service}", env.database_url),
        max_connections: 4,
    }
}

impl Stack {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Like [`Stack::start`], with a chance to adjust auth's configuration first.
    pub async fn start_with(adjust_auth: impl FnOnce(&mut auth::Config)) -> Self {
        // Service logs land in the test's output, which nextest shows when a test fails.
        platform::telemetry::init("e2e");
        let env = TestEnv::with_databases("e2e", &["auth", "media", "video"]);
        let shutdown = Shutdown::new();

        let (tx, rx) = tokio::sync::oneshot::channel();
        let signing_key = identity::SigningKey::generate();
        let mut auth = auth::Config::from_env_with_key(signing_key.clone()).unwrap();
        auth.http = http();
        auth.postgres = postgres(&env, "auth");
        auth.redis_url = env.redis_url.clone();
        auth.redis_prefix = env.redis_prefix.clone();
        auth.amqp_url = env.amqp_url.clone();
        adjust_auth(&mut auth);
        tokio::spawn(auth::run(auth, shutdown.clone(), Some(tx)));
        let auth_addr = rx.await.expect("auth started");

        let media = media::Config {
            http: http(),
            postgres: postgres(&env, "media"),
            mongodb_uri: env.mongodb_uri.clone(),
            mongodb_database: env.mongodb_database.clone(),
            redis_url: env.redis_url.clone(),
            amqp_url: env.amqp_url.clone(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let media_addr = listener.local_addr().unwrap();
        tokio::spawn(media::run(media, listener, shutdown.clone()));

        let video = video::Config {
            http: http(),
            postgres: postgres(&env, "video"),
            s3: env.s3.clone(),
            amqp_url: env.amqp_url.clone(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let video_addr = listener.local_addr().unwrap();
        tokio::spawn(video::run(video, listener, shutdown.clone()));

        let gateway = Gateway::start(Upstreams {
            auth: Some(auth_addr.to_string()),
            media: Some(media_addr.to_string()),
            video: Some(video_addr.to_string()),
        })
        .await;
        // Like an orchestrator, send no traffic before every service reports ready (its
        // database created and migrated, its broker connection up).
        for addr in [auth_addr, media_addr, video_addr] {
            testkit::wait_for(
                &format!("{addr} ready"),
                Duration::from_secs(30),
                || async move {
                    let response = reqwest::get(format!("http://{addr}/readyz")).await.ok()?;
                    response.status().is_success().then_some(())
                },
            )
            .await;
        }
        Self {
            gateway,
            env,
            shutdown,
            signing_key,
            auth_addr,
            media_addr,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway.base)
    }

    /// The URL of auth's own database, for tests that check nothing changed.
    pub fn auth_database_url(&self) -> String {
        format!("{}_auth", self.env.database_url)
    }

    /// Registers `username` (email `<username>@example.com`); panics unless 201.
    pub async fn register(&self, username: &str, password: &str) -> serde_json::Value {
        let response = reqwest::Client::new()
            .post(self.url("/auth/register"))
            .json(&serde_json::json!({
                "username": username, "email": format!("{username}@example.com"), "password": password
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "register {username}");
        response.json().await.unwrap()
    }

    /// Logs in; panics unless 200. Returns the token pair.
    pub async fn login(&self, login: &str, password: &str) -> serde_json::Value {
        let response = reqwest::Client::new()
            .post(self.url("/auth/login"))
            .json(&serde_json::json!({ "login": login, "password": password }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "login {login}");
        response.json().await.unwrap()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}
