//! The auth service (Rocket): accounts, tokens, profiles and the gateway's ForwardAuth
//! endpoint. This crate is the whole service; `main.rs` only reads the configuration and
//! waits for a signal, so tests run the real thing in-process on a random port.
//!
//! * [`users`]: registration, profile, and the user directory other services call over
//!   gRPC (`/auth/register`, `/user/profile`; `kino.auth.v1.UserDirectory` on
//!   `GRPC_BIND_ADDR`, never routed by the gateway);
//! * [`tokens`]: login, refresh rotation, logout, login throttling, the `Viewer` guard;
//! * [`mail`]: email verification and password reset (links mailed over SMTP), and
//!   the upload gate for unverified accounts;
//! * [`gateway`]: `GET /user/token_verify` and its public-route policy;
//! * [`keys`]: the JWKS document and the OpenAPI description.

pub mod config;
pub mod error;
pub mod gateway;
pub mod keys;
pub mod mail;
pub mod tokens;
pub mod users;

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context as _;
use events::{Publisher, outbox::Relay};
use identity::{Authenticator, Jwks, Revocations, Signer, Verifier};
use platform::{Readiness, Shutdown, postgres::Postgres};
use rocket::{Build, Rocket, data::ToByteUnit};
use tokio::sync::oneshot;

pub use config::Config;

use crate::{tokens::throttle::Throttle, users::passwords::Hasher};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Everything a request handler may need; managed by Rocket as state.
#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
    pub db: Postgres,
    pub redis: platform::redis::Redis,
    pub rabbit: Arc<events::Rabbit>,
    /// Where auth's events go (`QUEUE_PREFIX`).
    pub events: events::Namespace,
    pub relay: Relay,
    pub hasher: Hasher,
    pub signer: Arc<Signer>,
    /// Verifies access tokens (with caches) and revokes them.
    pub authenticator: Arc<Authenticator>,
    pub jwks: Jwks,
    pub throttle: Throttle,
    /// Registration and mail-request limits (platform::rate_limit).
    pub limiter: platform::rate_limit::Limiter,
    /// Wakes the mail sender after a request enqueued a mail.
    pub mail: mail::Sender,
}

impl Context {
    /// Connects lazily to every store: nothing here waits for a store to be up.
    pub fn connect(config: Config, shutdown: &Shutdown) -> anyhow::Result<Self> {
        let db = Postgres::start(&config.postgres, &MIGRATOR, shutdown).context("DATABASE_URL")?;
        let redis = platform::redis::connect(&config.redis_url).context("REDIS_URL")?;
        let rabbit = events::Rabbit::new(&config.amqp_url, "kino-auth");
        let relay = Relay::spawn(
            db.pool().clone(),
            Arc::new(Publisher::new(rabbit.clone())),
            shutdown,
        );
        let t = &config.tokens;
        let mut prunes = tokens::prune::prunes(t.refresh_retention);
        prunes.extend(mail::prunes());
        platform::retention::spawn(db.clone(), prunes, config.prune, shutdown);
        let mail = mail::Sender::spawn(db.pool().clone(), config.mail.clone(), shutdown);
        let jwt = &t.jwt;
        let signer = Signer::new(&t.signing_key, &jwt.issuer, &jwt.audience, t.access_ttl);
        let jwks = Jwks {
            keys: vec![t.signing_key.jwk()],
        };
        let verifier =
            Verifier::new(&jwks, &jwt.issuer, &jwt.audience, jwt.leeway).context("JWT keys")?;
        let events = events::Namespace::new(&config.queue_prefix);
        Ok(Self {
            hasher: Hasher::new(config.hashing),
            authenticator: Arc::new(Authenticator::new(
                verifier,
                Revocations::new(redis.clone(), &config.redis_prefix),
                jwt.leeway,
            )),
            throttle: Throttle::new(redis.clone(), &config.redis_prefix, config.login_limits),
            limiter: platform::rate_limit::Limiter::new(redis.clone(), &config.redis_prefix),
            signer: Arc::new(signer),
            mail,
            jwks,
            config: Arc::new(config),
            db,
            redis,
            rabbit,
            events,
            relay,
        })
    }

    pub fn readiness(&self) -> Readiness {
        Readiness::new()
            .add("postgres", self.db.clone())
            .add("redis", self.redis.clone())
            .add("rabbitmq", self.rabbit.clone())
    }
}

/// Runs `auth grant-admin` / `revoke-admin` (main.rs): migrates the database if needed,
/// then changes the role (users::roles::grant_admin).
pub async fn admin_command(
    postgres: &platform::postgres::PostgresConfig,
    username: &str,
    admin: bool,
) -> anyhow::Result<users::roles::AdminChange> {
    let pool = sqlx::PgPool::connect(&postgres.url)
        .await
        .context("DATABASE_URL")?;
    MIGRATOR.run(&pool).await.context("migrations")?;
    users::roles::grant_admin(&pool, username, admin).await
}

/// The Rocket instance, configured from [`Config`] (not from Rocket.toml or ROCKET_*).
pub fn rocket(ctx: Context, shutdown: Shutdown) -> Rocket<Build> {
    let limits = rocket::data::Limits::default().limit("json", ctx.config.max_body_bytes.bytes());
    let figment = rocket::Config::figment()
        .merge(("address", ctx.config.http.bind.ip()))
        .merge(("port", ctx.config.http.bind.port()))
        .merge(("ident", "kino-auth"))
        .merge(("limits", limits));
    let grace = ctx.config.http.shutdown_grace;
    let readiness = ctx.readiness();
    let app = rocket::custom(figment)
        .manage(ctx)
        .mount("/", users::routes())
        .mount("/", users::roles::routes())
        .mount("/", tokens::routes())
        .mount("/", mail::routes())
        .mount("/", gateway::routes())
        .mount("/", keys::routes())
        .register("/", rocket::catchers![error::default_catcher]);
    let app = platform::rocket::install(app, "/auth", readiness.clone(), shutdown.clone(), grace);
    // The public ops endpoints under /user too, so the gateway's /user prefix has them.
    app.mount("/user", platform::rocket::public_ops_routes())
}

/// Where a running auth listens (either configured port may be 0).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    /// The HTTP API (Rocket).
    pub http: SocketAddr,
    /// The gRPC user directory.
    pub grpc: SocketAddr,
}

/// Runs the service until `shutdown` fires, then drains and returns. When `bound` is given
/// it receives the addresses actually listened on.
pub async fn run(
    config: Config,
    shutdown: Shutdown,
    bound: Option<oneshot::Sender<Bound>>,
) -> anyhow::Result<()> {
    let grpc_listener = tokio::net::TcpListener::bind(config.grpc.bind)
        .await
        .with_context(|| format!("GRPC_BIND_ADDR {}", config.grpc.bind))?;
    let grpc_addr = grpc_listener.local_addr()?;
    let grace = config.http.shutdown_grace;
    let ctx = Context::connect(config, &shutdown)?;
    users::bans::spawn(&ctx, &shutdown);
    let rabbit = ctx.rabbit.clone();
    let grpc = tokio::spawn(rpc::server::serve(
        grpc_listener,
        rpc::server::Services::new(users::directory::Directory::server(ctx.clone())),
        ctx.readiness(),
        shutdown.clone(),
    ));
    let mut app = rocket(ctx, shutdown.clone());
    if let Some(bound) = bound {
        let bound = std::sync::Mutex::new(Some(bound));
        app = app.attach(rocket::fairing::AdHoc::on_liftoff(
            "report address",
            move |rocket| {
                let http = SocketAddr::new(rocket.config().address, rocket.config().port);
                if let Some(tx) = bound.lock().unwrap().take() {
                    let _ = tx.send(Bound {
                        http,
                        grpc: grpc_addr,
                    });
                }
                Box::pin(async {})
            },
        ));
    }
    let launched = app.launch().await;
    if launched.is_err() {
        shutdown.trigger(); // Rocket could not start: the gRPC server goes too
    }
    // Rocket has drained; the gRPC server stopped on the same signal.
    grpc.await??;
    // The mail sender finishes the delivery it is in (Shutdown::spawn).
    shutdown.drain(grace, shutdown.finished()).await;
    rabbit.close().await;
    launched?;
    Ok(())
}
