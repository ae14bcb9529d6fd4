//! The transcoder worker: takes jobs from `transcode.jobs`, runs one ffmpeg process per
//! source to produce the HLS ladder, uploads it to S3 and reports progress. Besides its
//! consumers it serves only the ops endpoints (`/healthz`, `/readyz`, `/metrics`).

pub mod config;
pub mod ffmpeg;

use std::sync::Arc;

use platform::{Readiness, Shutdown, s3::Bucket};
use tokio::net::TcpListener;

pub use config::Config;

#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
    pub storage: Bucket,
    pub rabbit: Arc<events::Rabbit>,
    pub ffmpeg: ffmpeg::Tools,
}

impl Context {
    pub fn connect(config: Config, shutdown: &Shutdown) -> Self {
        let storage = Bucket {
            client: platform::s3::client(&config.s3),
            name: config.s3.bucket.clone(),
        };
        storage.ensure_in_background(shutdown);
        let rabbit = events::Rabbit::new(&config.amqp_url, "kino-transcoder");
        let ffmpeg = config.ffmpeg.clone();
        Self {
            config: Arc::new(config),
            storage,
            rabbit,
            ffmpeg,
        }
    }

    pub fn readiness(&self) -> Readiness {
        Readiness::new()
            .add("rabbitmq", self.rabbit.clone())
            .add("s3", self.storage.clone())
            .add("ffmpeg", self.ffmpeg.clone())
    }
}

/// Runs the worker until `shutdown` fires, then drains and returns.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let grace = config.http.shutdown_grace;
    let ctx = Context::connect(config, &shutdown);
    platform::http::serve_service(
        listener,
        "/transcoder",
        axum::Router::new(),
        ctx.readiness(),
        shutdown,
        grace,
    )
    .await?;
    ctx.rabbit.close().await;
    Ok(())
}
