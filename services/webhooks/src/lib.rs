//! The webhooks service: tells other systems what happened in Kino, following the
//! Standard Webhooks specification so receivers verify deliveries with an off-the-shelf
//! library. This crate is the whole service; `main.rs` only reads the configuration and
//! waits for a signal, so tests run the real thing in-process on a random port.
//!
//! Why a service of its own rather than a task inside an existing worker: deliveries
//! wait on other people's servers, for up to a day of retries. Kept apart, a flood of
//! slow endpoints costs this process's slots and its own database's rows, never the
//! transcoder's or the ranker's, and it scales (or is paused) on its own.
//!
//! * [`catalog`]: the event types receivers can subscribe to, and their bodies;
//! * [`endpoints`]: registering, changing and rotating the secrets of endpoints (REST);
//! * [`ingest`]: Kino's events (RabbitMQ) into pending deliveries (PostgreSQL);
//! * [`delivery`]: the dispatcher: claims, signs, sends, retries, records;
//! * [`deliveries`]: the delivery log and replays (REST);
//! * [`retention`]: the log stays bounded.

pub mod catalog;
pub mod config;
pub mod deliveries;
pub mod delivery;
pub mod endpoints;
pub mod error;
pub mod extract;
pub mod ingest;
pub mod retention;

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use events::outbox::Relay;
use platform::{
    Readiness, Shutdown,
    background::{FirstTick, every},
    postgres::Postgres,
};
use tokio::net::TcpListener;

pub use config::{Config, DeliveryConfig};
pub use delivery::Dispatcher;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Everything a request handler or background task may need, cloned cheaply.
#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
    pub db: Postgres,
    pub rabbit: Arc<events::Rabbit>,
    pub dispatcher: Dispatcher,
}

impl Context {
    /// Connects lazily to every store: nothing here waits for a store to be up.
    pub fn connect(config: Config, shutdown: &Shutdown) -> anyhow::Result<Self> {
        let db = Postgres::start(&config.postgres, &MIGRATOR, shutdown).context("DATABASE_URL")?;
        let rabbit = events::Rabbit::new(&config.amqp_url, "kino-webhooks");
        // The outbox relay publishes `webhook.endpoint_disabled` (crate::deliveries::store).
        let relay = Relay::spawn(
            db.pool().clone(),
            Arc::new(events::Publisher::new(rabbit.clone())),
            shutdown,
        );
        let namespace = events::Namespace::new(&config.queue_prefix);
        let dispatcher = Dispatcher::new(db.clone(), config.delivery.clone(), namespace, relay);
        Ok(Self {
            config: Arc::new(config),
            db,
            rabbit,
            dispatcher,
        })
    }

    pub fn readiness(&self) -> Readiness {
        Readiness::new()
            .add("postgres", self.db.clone())
            .add("rabbitmq", self.rabbit.clone())
    }
}

pub fn router(ctx: Context) -> axum::Router {
    axum::Router::new()
        .merge(endpoints::router())
        .merge(deliveries::router())
        .with_state(ctx)
}

/// Runs the service on `listener` until `shutdown` fires, then drains and returns.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let grace = config.http.shutdown_grace;
    let ctx = Context::connect(config, &shutdown)?;
    ingest::spawn(&ctx, &shutdown);
    ctx.dispatcher.spawn(&shutdown);
    platform::retention::spawn(
        ctx.db.clone(),
        retention::prunes(ctx.config.log_retention),
        ctx.config.prune,
        &shutdown,
    );
    spawn_depth_gauge(&ctx, &shutdown);
    let routes = router(ctx.clone());
    platform::http::serve_service(
        listener,
        "/webhooks",
        routes,
        ctx.readiness(),
        shutdown,
        grace,
    )
    .await?;
    ctx.rabbit.close().await;
    Ok(())
}

/// Reports the pending deliveries of the most backed-up endpoints on `/metrics`
/// (`webhook_pending_deliveries{endpoint}`; the top 20, to bound the label count).
fn spawn_depth_gauge(ctx: &Context, shutdown: &Shutdown) {
    const TOP: i64 = 20;
    let (db, stop) = (ctx.db.clone(), shutdown.clone());
    tokio::spawn(async move {
        let reported: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
        every(Duration::from_secs(15), FirstTick::Now, &stop, || {
            let (db, reported) = (db.clone(), reported.clone());
            async move {
                if db.migrated().is_err() {
                    return;
                }
                let Ok(depths) = deliveries::store::pending_by_endpoint(db.pool(), TOP).await
                else {
                    return;
                };
                // Endpoints that left the top (or drained) read 0, not their last value.
                let mut reported = reported.lock().unwrap();
                for endpoint in reported.drain(..) {
                    ::metrics::gauge!("webhook_pending_deliveries", "endpoint" => endpoint)
                        .set(0.0);
                }
                for (endpoint, pending) in depths {
                    let endpoint = endpoint.to_string();
                    ::metrics::gauge!("webhook_pending_deliveries", "endpoint" => endpoint.clone())
                        .set(pending as f64);
                    reported.push(endpoint);
                }
            }
        })
        .await;
    });
}
