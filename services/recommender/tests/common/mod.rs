//! What the recommender's tests share: a configuration on the test's own database and
//! queues, the service started in-process, events delivered straight into its queues, and
//! a small catalogue of distinct topics.
#![allow(dead_code)]

use std::{sync::Arc, time::Duration};

use events::{
    Envelope, Event,
    interaction::{Action, Interaction, ViewerKey},
    video::{VideoCreated, VideoMetadata, VideoReady, Visibility},
};
use platform::{Shutdown, config::HttpConfig, postgres::PostgresConfig};
use recommender::config::{IndexConfig, ModelConfig, TasteConfig};
use rpc::recommender::v1::{
    Recommendations, RecommendedRequest, RelatedRequest, recommender_client::RecommenderClient,
};
use testkit::TestEnv;
use tonic::transport::Channel;
use uuid::Uuid;

pub fn config(env: &TestEnv) -> recommender::Config {
    recommender::Config {
        http: HttpConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            shutdown_grace: Duration::from_secs(5),
        },
        grpc: rpc::server::GrpcConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
        },
        postgres: PostgresConfig {
            url: env.database_url.clone(),
            max_connections: 4,
        },
        amqp_url: env.amqp_url.clone(),
        queue_prefix: env.queue_prefix.clone(),
        queue_expires: Some(Duration::from_secs(600)),
        model: ModelConfig {
            dir: std::env::var("RECOMMENDER_MODEL_DIR")
                .expect("RECOMMENDER_MODEL_DIR (source deploy/local/lib.sh)")
                .into(),
            name: "all-MiniLM-L6-v2".into(),
            batch_size: 32,
            max_tokens: 256,
        },
        index: IndexConfig::default(),
        snapshots: None,
        follow_interval: Duration::from_millis(200),
        taste: TasteConfig::default(),
        trending_share: 0.25,
        batch_size: 100,
        batch_wait: Duration::from_millis(10),
        prefetch: 64,
        processed_events_retention: Duration::from_secs(7 * 86_400),
        prune: platform::retention::PruneConfig::default(),
    }
}

/// A running recommender and a way to feed it.
pub struct App {
    /// The HTTP root of the ops endpoints (`…/recommender`).
    pub base: String,
    /// The gRPC API's address.
    pub grpc: std::net::SocketAddr,
    pub config: recommender::Config,
    pub ctx: recommender::Context,
    pub shutdown: Shutdown,
    publisher: events::Publisher,
    /// A client of the gRPC API, as media makes calls.
    pub client: RecommenderClient<Channel>,
}

impl Drop for App {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// Starts the recommender on `env` and waits until it is ready (index loaded).
pub async fn spawn_app(env: &TestEnv) -> App {
    spawn_with(config(env)).await
}

pub async fn spawn_with(config: recommender::Config) -> App {
    platform::telemetry::init("recommender-tests");
    let shutdown = Shutdown::new();
    let rabbit = events::Rabbit::new(&config.amqp_url, "recommender-tests");
    // The queues exist before anything is delivered to them.
    let channel = rabbit.channel().await.unwrap();
    config.videos_queue().declare(&channel).await.unwrap();
    config.interactions_queue().declare(&channel).await.unwrap();
    let ctx = recommender::Context::connect(config.clone(), &shutdown)
        .await
        .unwrap();
    let listeners = recommender::Listeners::bind(&config).await.unwrap();
    let addr = listeners.http.local_addr().unwrap();
    let grpc = listeners.grpc.local_addr().unwrap();
    tokio::spawn(recommender::serve(ctx.clone(), listeners, shutdown.clone()));
    let base = format!("http://{addr}/recommender");
    let ready = format!("{base}/readyz");
    testkit::wait_for("recommender ready", Duration::from_secs(30), || {
        let ready = ready.clone();
        async move {
            let response = reqwest::get(ready).await.ok()?;
            response.status().is_success().then_some(())
        }
    })
    .await;
    let channel = Channel::from_shared(format!("http://{grpc}"))
        .unwrap()
        .connect_lazy();
    App {
        base,
        grpc,
        config,
        ctx,
        shutdown,
        publisher: events::Publisher::new(rabbit),
        client: RecommenderClient::new(channel),
    }
}

impl App {
    /// Delivers a video event straight into the recommender's videos queue.
    pub async fn video_event<T: Event>(&self, data: T) -> Envelope<T> {
        let envelope = Envelope::new(data);
        self.deliver(&self.config.videos_queue().name, &envelope)
            .await;
        envelope
    }

    /// Delivers a signed-in user's interaction straight into the interactions queue.
    pub async fn interaction(&self, user: Uuid, video: Uuid, action: Action) {
        let envelope = Envelope::new(Interaction {
            video_id: video,
            owner_id: Uuid::nil(),
            category: None,
            viewer: ViewerKey::user(user),
            action,
        });
        self.deliver(&self.config.interactions_queue().name, &envelope)
            .await;
    }

    pub async fn deliver<T: Event>(&self, queue: &str, envelope: &Envelope<T>) {
        let payload = serde_json::to_vec(envelope).unwrap();
        self.publisher
            .publish_raw("", queue, &envelope.id.to_string(), &payload)
            .await
            .unwrap();
    }

    /// Publishes a ready, public video; returns its id.
    pub async fn publish(&self, title: &str, tags: &[&str], description: &str) -> Uuid {
        let video_id = Uuid::now_v7();
        self.video_event(VideoCreated {
            video_id,
            owner_id: Uuid::now_v7(),
            metadata: VideoMetadata {
                title: title.into(),
                description: description.into(),
                tags: tags.iter().map(|t| (*t).to_owned()).collect(),
                category: None,
                visibility: Visibility::Public,
            },
        })
        .await;
        self.video_event(VideoReady {
            video_id,
            owner_id: Uuid::now_v7(),
            manifest_key: format!("hls/{video_id}/master.m3u8"),
            thumbnail_key: None,
            duration_seconds: 60.0,
            renditions: vec![],
            posters: vec![],
            storyboard: None,
        })
        .await;
        video_id
    }

    /// `Related` as sent: the answer or the status.
    pub async fn related_raw(
        &self,
        video: &str,
        first: u32,
    ) -> Result<Recommendations, tonic::Status> {
        let request = RelatedRequest {
            video_id: video.to_owned(),
            first,
        };
        let answer = self.client.clone().related(request).await?;
        Ok(answer.into_inner())
    }

    /// The ids `Related` answers (none while the video has no vector).
    pub async fn related(&self, video: Uuid, first: u32) -> Vec<Uuid> {
        let answer = self.related_raw(&video.to_string(), first).await;
        ids(&answer.unwrap_or_else(|status| panic!("related: {status}")))
    }

    /// `Recommended` as sent: the answer or the status.
    pub async fn recommended_raw(
        &self,
        request: RecommendedRequest,
    ) -> Result<Recommendations, tonic::Status> {
        Ok(self.client.clone().recommended(request).await?.into_inner())
    }

    pub async fn recommended(&self, user: Uuid, first: u32, trending: &[Uuid]) -> Recommendations {
        let request = RecommendedRequest {
            user_id: user.to_string(),
            first,
            trending: trending.iter().map(Uuid::to_string).collect(),
        };
        self.recommended_raw(request)
            .await
            .unwrap_or_else(|status| panic!("recommended: {status}"))
    }

    /// Waits until `user`'s interactions with every one of `videos` are applied.
    pub async fn wait_signals(&self, user: Uuid, videos: &[Uuid]) {
        let serving = self.ctx.serving.get().unwrap().clone();
        let videos = videos.to_vec();
        testkit::wait_for("every interaction applied", Duration::from_secs(20), || {
            let done = videos
                .iter()
                .all(|v| serving.tastes.get(user, *v).is_some());
            async move { done.then_some(()) }
        })
        .await;
    }

    /// Waits until every one of `videos` has a vector.
    pub async fn wait_embedded(&self, videos: &[Uuid]) {
        let index = self.ctx.serving.get().unwrap().clone();
        let videos = videos.to_vec();
        testkit::wait_for("every video embedded", Duration::from_secs(120), || {
            let done = videos.iter().all(|v| index.index.vector(v).is_some());
            async move { done.then_some(()) }
        })
        .await;
    }
}

pub fn ids(answer: &Recommendations) -> Vec<Uuid> {
    answer
        .videos
        .iter()
        .map(|pick| Uuid::parse_str(&pick.id).unwrap())
        .collect()
}

/// A catalogue of distinct topics: (topic, title, tags, description).
pub const CATALOGUE: &[(&str, &str, &[&str], &str)] = &[
    (
        "cooking",
        "Fresh pasta from scratch",
        &["cooking", "recipe", "italian"],
        "Knead flour and eggs into dough and cut tagliatelle.",
    ),
    (
        "cooking",
        "The perfect roast chicken",
        &["cooking", "dinner"],
        "Season, roast and rest a whole chicken for crispy skin.",
    ),
    (
        "cooking",
        "Baking sourdough bread at home",
        &["baking", "bread"],
        "Feed your starter, shape the loaf and bake it in a dutch oven.",
    ),
    (
        "cooking",
        "Easy vegetable curry recipe",
        &["cooking", "vegan", "recipe"],
        "Simmer vegetables in coconut milk with spices and rice.",
    ),
    (
        "cooking",
        "Chocolate cake for beginners",
        &["baking", "dessert"],
        "Mix cocoa, butter and sugar, then bake and frost the cake.",
    ),
    (
        "cooking",
        "Knife skills every cook needs",
        &["cooking", "kitchen"],
        "Chop onions, dice carrots and julienne peppers like a chef.",
    ),
    (
        "football",
        "Champions League final highlights",
        &["football", "soccer"],
        "Every goal and save from the final match of the season.",
    ),
    (
        "football",
        "Top 10 free kicks of all time",
        &["football", "goals"],
        "Curling free kicks that beat the wall and the goalkeeper.",
    ),
    (
        "football",
        "How pressing tactics win matches",
        &["football", "tactics"],
        "Why teams press high up the pitch to win the ball back.",
    ),
    (
        "football",
        "Premier League goalkeeper saves",
        &["football", "soccer", "saves"],
        "Diving stops and reflex saves by the league's keepers.",
    ),
    (
        "football",
        "World Cup penalty shootouts",
        &["football", "world cup"],
        "Nerves, misses and winning penalties in knockout games.",
    ),
    (
        "football",
        "Training drills for young strikers",
        &["football", "training"],
        "Finishing, first touch and shooting drills for forwards.",
    ),
    (
        "programming",
        "Rust ownership explained",
        &["programming", "rust"],
        "Borrowing, lifetimes and moves in the Rust compiler.",
    ),
    (
        "programming",
        "Async Python with asyncio",
        &["programming", "python"],
        "Coroutines, event loops and await in Python code.",
    ),
    (
        "programming",
        "Building a REST API in Go",
        &["programming", "golang", "backend"],
        "Routing HTTP requests and writing handlers in Go.",
    ),
    (
        "programming",
        "Git branching for teams",
        &["programming", "git"],
        "Merge, rebase and pull requests in a software team.",
    ),
    (
        "programming",
        "Debugging JavaScript in the browser",
        &["programming", "javascript"],
        "Breakpoints and the console in browser developer tools.",
    ),
    (
        "programming",
        "SQL joins visualised",
        &["programming", "databases", "sql"],
        "Inner, left and outer joins across database tables.",
    ),
];

/// Publishes the catalogue; returns (topic, id) per video, and waits until all are
/// embedded.
pub async fn publish_catalogue(app: &App) -> Vec<(&'static str, Uuid)> {
    let mut out = Vec::new();
    for (topic, title, tags, description) in CATALOGUE {
        out.push((*topic, app.publish(title, tags, description).await));
    }
    let ids: Vec<Uuid> = out.iter().map(|(_, id)| *id).collect();
    app.wait_embedded(&ids).await;
    out
}

pub fn of_topic(catalogue: &[(&str, Uuid)], topic: &str) -> Vec<Uuid> {
    catalogue
        .iter()
        .filter(|(t, _)| *t == topic)
        .map(|(_, id)| *id)
        .collect()
}

pub fn shared<T>(value: T) -> Arc<T> {
    Arc::new(value)
}
