//! The auth service (Rocket): accounts, tokens, profiles and the gateway's ForwardAuth
//! endpoint. This crate is the whole service; `main.rs` only reads the configuration and
//! waits for a signal, so tests run the real thing in-process on a random port.

pub mod config;

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context as _;
use platform::{Readiness, Shutdown, postgres::Postgres};
use rocket::{Build, Rocket};
use tokio::sync::oneshot;

pub use config::Config;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Everything a request handler may need; managed by Rocket as state.
#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
    pub db: Postgres,
    pub redis: platform::redis::ConnectionManager,
    pub rabbit: Arc<events::Rabbit>,
}

impl Context {
    /// Connects lazily to every store: nothing here waits for a store to be up.
    pub fn connect(config: Config, shutdown: &Shutdown) -> anyhow::Result<Self> {
        let db = Postgres::start(&config.postgres, &MIGRATOR, shutdown).context("DATABASE_URL")?;
        let redis = platform::redis::connect(&config.redis_url).context("REDIS_URL")?;
        let rabbit = events::Rabbit::new(&config.amqp_url, "kino-auth");
        Ok(Self {
            config: Arc::new(config),
            db,
            redis,
            rabbit,
        })
    }

    pub fn readiness(&self) -> Readiness {
        Readiness::new()
            .add("postgres", self.db.clone())
            .add("redis", self.redis.clone())
            .add("rabbitmq", self.rabbit.clone())
    }
}

/// The Rocket instance, configured from [`Config`] (not from Rocket.toml or ROCKET_*).
pub fn rocket(ctx: Context, shutdown: Shutdown) -> Rocket<Build> {
    let figment = rocket::Config::figment()
        .merge(("address", ctx.config.http.bind.ip()))
        .merge(("port", ctx.config.http.bind.port()))
        .merge(("ident", "kino-auth"));
    let grace = ctx.config.http.shutdown_grace;
    let readiness = ctx.readiness();
    let app = rocket::custom(figment).manage(ctx);
    platform::rocket::install(app, "/auth", readiness, shutdown, grace)
}

/// Runs the service until `shutdown` fires, then drains and returns. When `bound` is given
/// it receives the address actually listened on (the configured port may be 0).
pub async fn run(
    config: Config,
    shutdown: Shutdown,
    bound: Option<oneshot::Sender<SocketAddr>>,
) -> anyhow::Result<()> {
    let ctx = Context::connect(config, &shutdown)?;
    let rabbit = ctx.rabbit.clone();
    let mut app = rocket(ctx, shutdown);
    if let Some(bound) = bound {
        let bound = std::sync::Mutex::new(Some(bound));
        app = app.attach(rocket::fairing::AdHoc::on_liftoff(
            "report address",
            move |rocket| {
                let addr = SocketAddr::new(rocket.config().address, rocket.config().port);
                if let Some(tx) = bound.lock().unwrap().take() {
                    let _ = tx.send(addr);
                }
                Box::pin(async {})
            },
        ));
    }
    app.launch().await?;
    rabbit.close().await;
    Ok(())
}
