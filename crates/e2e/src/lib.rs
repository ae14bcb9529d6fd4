//! The whole platform in one test process: every service on a random port with the test's
//! own databases and bucket, behind the real gateway. [`Stack::start`] is the end-to-end
//! `spawn_app()`.

pub mod local_up;
pub mod ws;

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
    /// auth's gRPC user directory (what media calls).
    pub auth_grpc_addr: std::net::SocketAddr,
    pub media_addr: std::net::SocketAddr,
    /// Media's configuration as started (its queue names, limits).
    pub media_config: media::Config,
    /// The running media replica's context (its realtime hub, stores).
    pub media: media::Context,
    /// Issues access tokens as auth would (same key, issuer and audience), for tests that
    /// need many users without paying for their password hashes.
    pub signer: identity::Signer,
    publisher: tokio::sync::OnceCell<events::Publisher>,
    pub video_addr: std::net::SocketAddr,
    /// The video service's configuration as started (and restarted).
    pub video_config: video::Config,
    /// The video service's own shutdown, so a test can restart it alone.
    video_shutdown: Shutdown,
    video_task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

/// The webhooks service beside a [`Stack`] ([`Stack::start_webhooks`]).
pub struct Webhooks {
    pub addr: std::net::SocketAddr,
    pub config: webhooks::Config,
    /// A gateway routing every prefix, `/webhooks` included.
    pub gateway: Gateway,
    /// Stops this service alone.
    pub shutdown: Shutdown,
}

/// The workspace's build of service binary `name`, next to the running test's own
/// executable (tests run from `<target>/<profile>/deps/`; `cargo build --workspace
/// --tests` builds the binaries too).
pub fn service_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("the test runs from <target>/<profile>/deps")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (cargo build --workspace --tests)",
        path.display()
    );
    path
}

/// Waits until the service at `addr` answers `/readyz` with a success, as an
/// orchestrator would before sending it traffic.
pub async fn wait_ready(addr: std::net::SocketAddr) {
    wait_ready_within(addr, Duration::from_secs(30)).await;
}

/// [`wait_ready`] for services that take longer to become ready (a model to load).
pub async fn wait_ready_within(addr: std::net::SocketAddr, within: Duration) {
    testkit::wait_for(&format!("{addr} ready"), within, || async move {
        let response = reqwest::get(format!("http://{addr}/readyz")).await.ok()?;
        response.status().is_success().then_some(())
    })
    .await;
}

fn http() -> HttpConfig {
    HttpConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        shutdown_grace: Duration::from_secs(3),
    }
}

/// Any free port on loopback, for a gRPC server.
fn grpc() -> rpc::server::GrpcConfig {
    rpc::server::GrpcConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
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
        Self::start_all(adjust_auth, adjust_media, |_| {}).await
    }

    /// Like [`Stack::start`], with media's recommender client pointed at a port where
    /// nothing listens: `related` is UNAVAILABLE and `recommended` falls back to trending.
    pub async fn start_without_recommender() -> Self {
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        Self::start_configured(
            |_| {},
            |media| media.recommender_url = format!("http://{closed}"),
        )
        .await
    }

    /// Like [`Stack::start`], adjusting the video service's configuration first.
    pub async fn start_with_video(adjust_video: impl FnOnce(&mut video::Config)) -> Self {
        Self::start_all(|_| {}, |_| {}, adjust_video).await
    }

    /// Like [`Stack::start`], adjusting auth's, media's and video's configuration first.
    ///
    /// Every abuse limit is set out of reach ([`UNREACHABLE`]) before `adjust_*` run: the
    /// suite registers many users and posts many comments from one address (127.0.0.1),
    /// and only the tests of the limits themselves (tests/limits.rs, and
    /// tests/account_recovery.rs for mail) lower them. Uploads do not need a verified
    /// email address here (`UPLOAD_REQUIRES_VERIFIED_EMAIL` off) unless `adjust_auth` says.
    pub async fn start_all(
        adjust_auth: impl FnOnce(&mut auth::Config),
        adjust_media: impl FnOnce(&mut media::Config),
        adjust_video: impl FnOnce(&mut video::Config),
    ) -> Self {
        // Service logs land in the test's output, which nextest shows when a test fails.
        platform::telemetry::init("e2e");
        let env =
            TestEnv::with_databases("e2e", &["auth", "media", "video", "recommend", "webhooks"]);
        let shutdown = Shutdown::new();

        let (tx, rx) = tokio::sync::oneshot::channel();
        let signing_key = identity::SigningKey::generate();
        let mut auth = auth::Config::from_env_with_key(signing_key.clone()).unwrap();
        auth.http = http();
        auth.grpc = grpc();
        auth.postgres = postgres(&env, "auth");
        auth.redis_url = env.redis_url.clone();
        auth.redis_prefix = env.redis_prefix.clone();
        auth.amqp_url = env.amqp_url.clone();
        auth.queue_prefix = queue_prefix(&env);
        auth.register_ip_rate = UNREACHABLE;
        auth.mail.ip_rate = UNREACHABLE;
        auth.mail.address_rate = UNREACHABLE;
        // The suite's users upload without verifying their address; the gate's own test
        // (tests/account_recovery.rs) turns it on.
        auth.mail.upload_requires_verified_email = false;
        adjust_auth(&mut auth);
        let signer = identity::Signer::new(
            &signing_key,
            &auth.tokens.jwt.issuer,
            &auth.tokens.jwt.audience,
            auth.tokens.access_ttl,
        );
        tokio::spawn(auth::run(auth, shutdown.clone(), Some(tx)));
        let auth::Bound {
            http: auth_addr,
            grpc: auth_grpc_addr,
        } = rx.await.expect("auth started");

        let mut media = media::Config::from_env().unwrap();
        media.http = http();
        media.postgres = postgres(&env, "media");
        media.mongodb_uri = env.mongodb_uri.clone();
        media.mongodb_database = env.mongodb_database.clone();
        media.redis_url = env.redis_url.clone();
        media.redis_prefix = env.redis_prefix.clone();
        media.amqp_url = env.amqp_url.clone();
        media.auth_url = format!("http://{auth_addr}");
        media.auth_grpc_url = format!("http://{auth_grpc_addr}");
        media.queue_prefix = queue_prefix(&env);
        media.queue_expires = Some(Duration::from_secs(60));
        media.rates = media::rate_limits::Rates::all(UNREACHABLE);
        media.playback_key = Some(playback_key());
        adjust_media(&mut media);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let media_addr = listener.local_addr().unwrap();
        let media_config = media.clone();
        let media_ctx = media::Context::connect(media, &shutdown).await.unwrap();
        tokio::spawn(media::serve(media_ctx.clone(), listener, shutdown.clone()));

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let video_addr = listener.local_addr().unwrap();
        let video_shutdown = Shutdown::new();
        let mut video_config = video_config(&env);
        adjust_video(&mut video_config);
        let video_task = tokio::spawn(video::run(
            video_config.clone(),
            listener,
            video_shutdown.clone(),
        ));

        let gateway = Gateway::start(Upstreams {
            auth: Some(auth_addr.to_string()),
            media: Some(media_addr.to_string()),
            video: Some(video_addr.to_string()),
            webhooks: None,
        })
        .await;
        // Like an orchestrator, send no traffic before every service reports ready (its
        // database created and migrated, its broker connection up).
        for addr in [auth_addr, media_addr, video_addr] {
            wait_ready(addr).await;
        }
        Self {
            gateway,
            env,
            shutdown,
            signing_key,
            auth_addr,
            auth_grpc_addr,
            media_addr,
            media_config,
            media: media_ctx,
            signer,
            publisher: tokio::sync::OnceCell::new(),
            video_addr,
            video_config,
            video_shutdown,
            video_task: Some(video_task),
        }
    }

    /// Stops the video service (gracefully, as on SIGTERM) and starts a new instance on
    /// the same address with the same stores: what a rolling restart looks like.
    pub async fn restart_video(&mut self) {
        self.video_shutdown.trigger();
        if let Some(task) = self.video_task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        let listener = testkit::wait_for(
            "the video port to be free",
            Duration::from_secs(10),
            || async { tokio::net::TcpListener::bind(self.video_addr).await.ok() },
        )
        .await;
        self.video_shutdown = Shutdown::new();
        self.video_task = Some(tokio::spawn(video::run(
            self.video_config.clone(),
            listener,
            self.video_shutdown.clone(),
        )));
        wait_ready(self.video_addr).await;
    }

    /// Starts another media replica with the same stores (and, unless `adjust` changes
    /// them, the same queues), as a second pod would run; ready when this returns.
    pub async fn spawn_media_replica(
        &self,
        adjust: impl FnOnce(&mut media::Config),
    ) -> (std::net::SocketAddr, media::Context) {
        let mut config = self.media_config.clone();
        adjust(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let ctx = media::Context::connect(config, &self.shutdown)
            .await
            .unwrap();
        tokio::spawn(media::serve(ctx.clone(), listener, self.shutdown.clone()));
        wait_ready(addr).await;
        (addr, ctx)
    }

    /// Delivers an event straight into one of media's queues (`media.progress`…) as
    /// `config` names it, waiting for the broker's confirm.
    pub async fn deliver_to_media_queue<T: events::Event>(
        &self,
        config: &media::Config,
        queue: &str,
        data: T,
    ) -> events::Envelope<T> {
        let envelope = events::Envelope::new(data);
        let payload = serde_json::to_vec(&envelope).unwrap();
        self.deliver_raw_to_queue(config, queue, &payload).await;
        envelope
    }

    /// Delivers a message body as it was sent (the same event again: a redelivery) into
    /// one of this stack's media queues, waiting for the broker's confirm.
    pub async fn deliver_raw_to_media_queue(&self, queue: &str, payload: &[u8]) {
        self.deliver_raw_to_queue(&self.media_config, queue, payload)
            .await;
    }

    async fn deliver_raw_to_queue(&self, config: &media::Config, queue: &str, payload: &[u8]) {
        let publisher = self.publisher().await;
        let name = config.queue(queue).name;
        self.wait_queue_declared(&name).await;
        publisher
            .publish_raw("", &name, &uuid::Uuid::now_v7().to_string(), payload)
            .await
            .unwrap_or_else(|e| panic!("deliver to {name}: {e}"));
    }

    /// Waits until queue `name` exists on this stack's broker (a consumer declares its
    /// queue when it starts), so what is published from now on reaches it.
    pub async fn wait_queue_declared(&self, name: &str) {
        testkit::wait_for(
            &format!("queue {name} declared"),
            Duration::from_secs(20),
            || async {
                let channel = events::Rabbit::new(&self.env.amqp_url, "e2e-probe")
                    .channel()
                    .await
                    .ok()?;
                channel
                    .queue_declare(
                        name.into(),
                        lapin::options::QueueDeclareOptions {
                            passive: true,
                            ..Default::default()
                        },
                        Default::default(),
                    )
                    .await
                    .ok()
            },
        )
        .await;
    }

    /// Starts the webhooks service on this stack's broker (its queue under this stack's
    /// prefix) with a database of its own, deliveries to loopback allowed unless `adjust`
    /// says otherwise, and a gateway that routes `/webhooks` to it besides the other
    /// prefixes. Ready when this returns.
    pub async fn start_webhooks(&self, adjust: impl FnOnce(&mut webhooks::Config)) -> Webhooks {
        let mut config = self.webhooks_config();
        adjust(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        tokio::spawn(webhooks::run(config.clone(), listener, shutdown.clone()));
        wait_ready(addr).await;
        let gateway = Gateway::start(Upstreams {
            auth: Some(self.auth_addr.to_string()),
            media: Some(self.media_addr.to_string()),
            video: Some(self.video_addr.to_string()),
            webhooks: Some(addr.to_string()),
        })
        .await;
        Webhooks {
            addr,
            config,
            gateway,
            shutdown,
        }
    }

    /// The webhooks service's configuration for this stack (see [`Stack::start_webhooks`]):
    /// deliveries to loopback allowed, quick polling.
    pub fn webhooks_config(&self) -> webhooks::Config {
        let mut config = webhooks::Config::from_env().unwrap();
        config.http = http();
        config.postgres = postgres(&self.env, "webhooks");
        config.amqp_url = self.env.amqp_url.clone();
        config.queue_prefix = self.queue_prefix();
        config.queue_expires = Some(Duration::from_secs(60));
        config.delivery.allow_private = true;
        config.delivery.poll = Duration::from_millis(100);
        config
    }

    /// The URL of the video service's own database.
    pub fn video_database_url(&self) -> String {
        format!("{}_video", self.env.database_url)
    }

    /// The `QUEUE_PREFIX` every service of this stack uses: its queues' names and its
    /// events' routing keys start with it, so stacks on one broker never meet.
    pub fn queue_prefix(&self) -> String {
        queue_prefix(&self.env)
    }

    /// This stack's share of the broker (see [`Stack::queue_prefix`]).
    pub fn namespace(&self) -> events::Namespace {
        events::Namespace::new(self.queue_prefix())
    }

    /// A transcoder configuration for this stack's bucket and queues, with a scratch
    /// directory of its own (`name` tells several apart) and quick retries.
    pub fn transcoder_config(&self, name: &str) -> transcoder::Config {
        transcoder::Config {
            http: http(),
            s3: self.env.s3.clone(),
            amqp_url: self.env.amqp_url.clone(),
            ffmpeg: transcoder::ffmpeg::Tools {
                ffmpeg: "ffmpeg".into(),
                ffprobe: "ffprobe".into(),
            },
            jobs: transcoder::JobConfig {
                queue_prefix: self.queue_prefix(),
                work_dir: std::env::temp_dir()
                    .join(format!("kino-transcoder-{}-{name}", self.env.id)),
                max_attempts: 2,
                retry_backoff: Duration::from_millis(200),
                preset: "ultrafast".into(),
                ..Default::default()
            },
        }
    }

    /// Runs a transcoder in-process until the stack is dropped.
    pub async fn start_transcoder(&self) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        tokio::spawn(transcoder::run(
            self.transcoder_config("in-process"),
            listener,
            self.shutdown.clone(),
        ));
    }

    /// A ranker configuration on this stack's stores and media's queue prefix (so it sees
    /// this stack's interactions only), with quick counter reports.
    pub fn ranker_config(&self) -> ranker::Config {
        let mut config = ranker::Config::from_env().unwrap();
        config.http = http();
        config.redis_url = self.env.redis_url.clone();
        config.redis_prefix = self.env.redis_prefix.clone();
        config.mongodb_uri = self.env.mongodb_uri.clone();
        config.mongodb_database = self.env.mongodb_database.clone();
        config.amqp_url = self.env.amqp_url.clone();
        config.queue_prefix = self.media_config.queue_prefix.clone();
        config.queue_expires = Some(Duration::from_secs(60));
        config.ingest.counter_flush = Duration::from_millis(200);
        config.ingest.batch_wait = Duration::from_millis(5);
        config
    }

    /// Runs a ranker in-process until the stack is dropped; waits until it is ready.
    pub async fn start_ranker(&self, config: ranker::Config) {
        // Its queues exist before the first interaction is published (an unbound
        // interaction would be dropped by the broker).
        let rabbit = events::Rabbit::new(&config.amqp_url, "e2e-ranker-queues");
        let channel = rabbit.channel().await.unwrap();
        for name in ["ranker.interactions", "ranker.archive"] {
            config.queue(name).declare(&channel).await.unwrap();
        }
        rabbit.close().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(ranker::run(config, listener, self.shutdown.clone()));
        wait_ready(addr).await;
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

    /// Logs out with `access_token` (revoking it everywhere); panics unless auth answers 204.
    pub async fn logout(&self, access_token: &str) {
        let response = reqwest::Client::new()
            .post(self.url("/auth/logout"))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204, "logout");
    }
}

/// The `video.ready` event of a test video, shaped as the transcoder announces one (its
/// files are not in the bucket: crates/e2e/tests/stills.rs checks real ones): what
/// [`Stack::publish_video`] sends.
pub fn ready_event(video_id: uuid::Uuid, owner: uuid::Uuid) -> events::video::VideoReady {
    events::video::VideoReady {
        video_id,
        owner_id: owner,
        manifest_key: format!("hls/{video_id}/master.m3u8"),
        thumbnail_key: Some(format!("hls/{video_id}/poster-1280.jpg")),
        duration_seconds: 12.5,
        renditions: vec![],
        posters: [(320, 180), (1280, 720)]
            .map(|(width, height)| events::video::Still {
                key: format!("hls/{video_id}/poster-{width}.jpg"),
                width,
                height,
            })
            .to_vec(),
        storyboard: Some(events::video::Storyboard {
            vtt_key: format!("hls/{video_id}/storyboard.vtt"),
            interval_seconds: 1.0,
            tile_width: 160,
            tile_height: 90,
        }),
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

    /// Like [`Stack::token_for`], valid for `ttl` only (auth's key, issuer and audience).
    pub fn token_expiring_in(&self, user: uuid::Uuid, name: &str, ttl: Duration) -> String {
        self.signer.with_ttl(ttl).issue(user, name).0
    }

    /// Delivers a video event straight into this stack's catalogue queue (other stacks on
    /// the same broker do not see it), waiting for the broker's confirm.
    pub async fn deliver_video_event<T: events::Event>(&self, data: T) -> events::Envelope<T> {
        let envelope = events::Envelope::new(data);
        self.deliver_raw_video_event(T::TYPE, &envelope).await;
        envelope
    }

    /// A new video of `owner` through its whole lifecycle (created, uploaded, ready), as
    /// the video service would announce it. Returns at once: see [`Stack::wait_video_ready`].
    pub async fn publish_video(
        &self,
        owner: uuid::Uuid,
        metadata: events::video::VideoMetadata,
    ) -> uuid::Uuid {
        let seconds = ready_event(uuid::Uuid::nil(), owner).duration_seconds;
        self.publish_video_lasting(owner, metadata, seconds).await
    }

    /// Like [`Stack::publish_video`], with the duration the transcoder reports.
    pub async fn publish_video_lasting(
        &self,
        owner: uuid::Uuid,
        metadata: events::video::VideoMetadata,
        seconds: f64,
    ) -> uuid::Uuid {
        let video_id = uuid::Uuid::now_v7();
        self.deliver_video_event(events::video::VideoCreated {
            video_id,
            owner_id: owner,
            metadata,
        })
        .await;
        self.deliver_video_event(events::video::VideoUploaded {
            video_id,
            owner_id: owner,
            size_bytes: 1000,
        })
        .await;
        let mut ready = ready_event(video_id, owner);
        ready.duration_seconds = seconds;
        self.deliver_video_event(ready).await;
        video_id
    }

    /// Waits until `video(id)` answers READY to `token`'s user (or anyone, without one).
    pub async fn wait_video_ready(&self, token: Option<&str>, video_id: uuid::Uuid) {
        testkit::wait_for("the video ready", Duration::from_secs(30), || async move {
            let body = self
                .graphql(
                    token,
                    "query($id: ID!) { video(id: $id) { status } }",
                    serde_json::json!({ "id": video_id }),
                )
                .await;
            (body["data"]["video"]["status"] == "READY").then_some(())
        })
        .await;
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

/// auth's gRPC user directory, called directly as media calls it.
impl Stack {
    pub async fn profiles(
        &self,
        ids: Vec<String>,
    ) -> Result<rpc::auth::v1::GetProfilesResponse, tonic::Status> {
        let channel =
            tonic::transport::Channel::from_shared(format!("http://{}", self.auth_grpc_addr))
                .unwrap()
                .connect_lazy();
        let mut client = rpc::auth::v1::user_directory_client::UserDirectoryClient::new(channel);
        let request = rpc::auth::v1::GetProfilesRequest { ids };
        Ok(client.get_profiles(request).await?.into_inner())
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.trigger();
        self.video_shutdown.trigger();
    }
}

/// The recommender (services/recommender) on this stack.
impl Stack {
    /// A recommender configuration on this stack's database server and media's queue
    /// prefix (so it sees this stack's interactions only), with the real model
    /// (`RECOMMENDER_MODEL_DIR`).
    pub fn recommender_config(&self) -> recommender::Config {
        let mut config = recommender::Config::from_env().unwrap();
        config.http = http();
        config.grpc = grpc();
        config.postgres = postgres(&self.env, "recommend");
        config.amqp_url = self.env.amqp_url.clone();
        config.queue_prefix = self.media_config.queue_prefix.clone();
        config.queue_expires = Some(Duration::from_secs(60));
        config.batch_wait = Duration::from_millis(5);
        // Its index snapshots in this stack's own bucket.
        if let Some(snapshots) = config.snapshots.as_mut() {
            snapshots.s3 = self.env.s3.clone();
        }
        config
    }

    /// Runs a recommender in-process, its gRPC API on `grpc` (its HTTP ops on any port),
    /// until the stack is dropped; waits until it is ready. Media reaches it when it was
    /// started with `recommender_url` pointing at `grpc` (see [`Stack::start_configured`]).
    pub async fn start_recommender(
        &self,
        config: recommender::Config,
        grpc: tokio::net::TcpListener,
    ) {
        // Its queues exist before the first event is delivered or published.
        let rabbit = events::Rabbit::new(&config.amqp_url, "e2e-recommender-queues");
        let channel = rabbit.channel().await.unwrap();
        config.videos_queue().declare(&channel).await.unwrap();
        config.interactions_queue().declare(&channel).await.unwrap();
        rabbit.close().await;
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = http.local_addr().unwrap();
        let listeners = recommender::Listeners { http, grpc };
        tokio::spawn(recommender::run(config, listeners, self.shutdown.clone()));
        // Loading the embedding model takes a while.
        wait_ready_within(addr, Duration::from_secs(60)).await;
    }

    /// Delivers a video event straight into the recommender's video queue (as
    /// [`Stack::deliver_video_event`] does for media's catalogue).
    pub async fn deliver_to_recommender<T: events::Event>(
        &self,
        config: &recommender::Config,
        data: T,
    ) {
        let envelope = events::Envelope::new(data);
        let publisher = self.publisher().await;
        let payload = serde_json::to_vec(&envelope).unwrap();
        publisher
            .publish_raw(
                "",
                &config.videos_queue().name,
                &envelope.id.to_string(),
                &payload,
            )
            .await
            .unwrap_or_else(|e| panic!("deliver {} to the recommender: {e}", T::TYPE));
    }
}

fn queue_prefix(env: &TestEnv) -> String {
    env.queue_prefix.clone()
}

/// An abuse limit no test reaches by accident (see [`Stack::start_all`]).
pub const UNREACHABLE: Option<platform::rate_limit::Rate> = Some(platform::rate_limit::Rate {
    max: 1_000_000,
    window: Duration::from_secs(60),
});

fn video_config(env: &TestEnv) -> video::Config {
    video::Config {
        http: http(),
        postgres: postgres(env, "video"),
        s3: env.s3.clone(),
        amqp_url: env.amqp_url.clone(),
        uploads: video::UploadConfig::default(),
        limits: video::LimitConfig {
            user_rate: UNREACHABLE,
            ip_rate: UNREACHABLE,
            max_concurrent: Some(1000),
            ..video::LimitConfig::default()
        },
        redis_url: env.redis_url.clone(),
        redis_prefix: env.redis_prefix.clone(),
        trusted_proxies: platform::client_ip::DEFAULT_TRUSTED_PROXIES
            .parse()
            .unwrap(),
        queue_prefix: queue_prefix(env),
        playback_key: Some(playback_key()),
        delivery: video::Delivery::Proxy,
        hls_cache_bytes: 24 * 1024 * 1024,
    }
}

/// The `PLAYBACK_SIGNING_KEY` of every test stack (media signs, video checks).
pub fn playback_key() -> identity::playback::PlaybackKey {
    identity::playback::PlaybackKey::new("e2e playback signing key: 32 bytes or more")
        .expect("a long enough key")
}
