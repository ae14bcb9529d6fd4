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
    /// Media's configuration as started (its queue names, limits).
    pub media_config: media::Config,
    /// Issues access tokens as auth would (same key, issuer and audience), for tests that
    /// need many users without paying for their password hashes.
    pub signer: identity::Signer,
    publisher: tokio::sync::OnceCell<events::Publisher>,
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
        Self::start_configured(adjust_auth, |_| {}).await
    }

    /// Like [`Stack::start`], adjusting auth's and media's configuration first.
    pub async fn start_configured(
        adjust_auth: impl FnOnce(&mut auth::Config),
        adjust_media: impl FnOnce(&mut media::Config),
    ) -> Self {
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
        let signer = identity::Signer::new(
            &signing_key,
            &auth.tokens.issuer,
            &auth.tokens.audience,
            auth.tokens.access_ttl,
        );
        tokio::spawn(auth::run(auth, shutdown.clone(), Some(tx)));
        let auth_addr = rx.await.expect("auth started");

        let mut media = media::Config::from_env().unwrap();
        media.http = http();
        media.postgres = postgres(&env, "media");
        media.mongodb_uri = env.mongodb_uri.clone();
        media.mongodb_database = env.mongodb_database.clone();
        media.redis_url = env.redis_url.clone();
        media.redis_prefix = env.redis_prefix.clone();
        media.amqp_url = env.amqp_url.clone();
        media.auth_url = format!("http://{auth_addr}");
        media.queue_prefix = format!("{}.", env.id);
        media.queue_expires = Some(Duration::from_secs(60));
        adjust_media(&mut media);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let media_addr = listener.local_addr().unwrap();
        let media_config = media.clone();
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
            media_config,
            signer,
            publisher: tokio::sync::OnceCell::new(),
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

/// GraphQL through the gateway.
impl Stack {
    /// Runs a GraphQL operation through the gateway, as `token`'s user (or anonymously),
    /// and returns the whole response body (`data` and `errors`). Panics unless HTTP 200.
    pub async fn graphql(
        &self,
        token: Option<&str>,
        query: &str,
        variables: serde_json::Value,
    ) -> serde_json::Value {
        let mut request = reqwest::Client::new()
            .post(self.url("/media/graphql"))
            .json(&serde_json::json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Like [`Stack::graphql`], but panics on any GraphQL error and returns `data`.
    pub async fn graphql_ok(
        &self,
        token: Option<&str>,
        query: &str,
        variables: serde_json::Value,
    ) -> serde_json::Value {
        let body = self.graphql(token, query, variables).await;
        assert!(body.get("errors").is_none(), "{query}: {body}");
        body["data"].clone()
    }

    /// An access token for a user that auth need not know (signed with auth's key).
    pub fn token_for(&self, user: uuid::Uuid, name: &str) -> String {
        self.signer.issue(user, name).0
    }

    /// Delivers a video event straight into this stack's catalogue queue (other stacks on
    /// the same broker do not see it), waiting for the broker's confirm.
    pub async fn deliver_video_event<T: events::Event>(&self, data: T) -> events::Envelope<T> {
        let envelope = events::Envelope::new(data);
        self.deliver_raw_video_event(T::TYPE, &envelope).await;
        envelope
    }

    /// Delivers an already-built envelope (to deliver the same event twice).
    pub async fn deliver_raw_video_event(&self, kind: &str, envelope: &impl serde::Serialize) {
        let queue = self.media_config.queue("media.catalogue");
        let publisher = self.publisher().await;
        let payload = serde_json::to_vec(envelope).unwrap();
        publisher
            .publish_raw("", &queue.name, &uuid::Uuid::now_v7().to_string(), &payload)
            .await
            .unwrap_or_else(|e| panic!("deliver {kind}: {e}"));
    }

    async fn publisher(&self) -> &events::Publisher {
        self.publisher
            .get_or_init(|| async {
                let rabbit = events::Rabbit::new(&self.env.amqp_url, "e2e");
                // The queue may not exist yet if media's consumer has not started.
                let channel = rabbit.channel().await.unwrap();
                let queue = self.media_config.queue("media.catalogue");
                queue.declare(&channel).await.unwrap();
                events::Publisher::new(rabbit)
            })
            .await
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}
