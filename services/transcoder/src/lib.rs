//! The transcoder worker: takes jobs from `transcode.jobs`, runs one ffmpeg process per
//! source to produce the HLS ladder, uploads it to S3 and reports progress. Besides its
//! consumer it serves only the ops endpoints (`/healthz`, `/readyz`, `/metrics`).
//!
//! [`job`] is one job end to end; [`ladder`] chooses the renditions; [`ffmpeg`] builds the
//! commands; [`progress`] parses and throttles progress; [`queues`] holds the retry and
//! dead-letter design; [`limits`] the job's timeout and its hand-back at shutdown;
//! [`workdir`] keeps scratch files from outliving their job.

pub mod config;
pub mod ffmpeg;
pub mod job;
pub mod ladder;
pub mod limits;
pub mod progress;
pub mod queues;
pub mod stills;
pub mod workdir;

use std::sync::Arc;

use aws_sdk_s3::config::RequestChecksumCalculation;
use events::{Publisher, consumer};
use platform::{
    Readiness, Shutdown,
    background::{Backoff, until_ready},
    s3::Bucket,
};
use tokio::net::TcpListener;

pub use config::{Config, JobConfig};

#[derive(Clone)]
pub struct Context {
    pub config: Arc<Config>,
    pub storage: Bucket,
    pub rabbit: Arc<events::Rabbit>,
    pub ffmpeg: ffmpeg::Tools,
    pub publisher: Arc<Publisher>,
    /// Where the video events this service publishes go (`QUEUE_PREFIX`).
    pub events: events::Namespace,
    pub queues: Arc<queues::JobQueues>,
    /// The service's shutdown: a job still running near the end of the grace period is
    /// handed back (limits).
    pub shutdown: Shutdown,
}

/// Declares the dead and retry queues (until the broker answers, or shutdown).
fn declare_in_background(ctx: &Context) {
    let (rabbit, names, shutdown) = (
        ctx.rabbit.clone(),
        ctx.queues.names.clone(),
        ctx.shutdown.clone(),
    );
    tokio::spawn(async move {
        let declare = || async {
            let channel = rabbit.channel().await?;
            names.dead_queue().declare(&channel).await?;
            names.retry_queue().declare(&channel).await?;
            channel.close(200, "declared".into()).await.ok();
            Ok::<_, events::Error>(())
        };
        until_ready("the transcode queues", Backoff::STORE, &shutdown, declare).await;
    });
}

impl Context {
    pub fn connect(config: Config, shutdown: &Shutdown) -> Self {
        let client = platform::s3::client(&config.s3);
        let client = aws_sdk_s3::Client::from_conf(
            client
                .config()
                .to_builder()
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .build(),
        );
        let storage = Bucket {
            client,
            name: config.s3.bucket.clone(),
        };
        storage.ensure_in_background(shutdown);
        let rabbit = events::Rabbit::new(&config.amqp_url, "kino-transcoder");
        let ffmpeg = config.ffmpeg.clone();
        let publisher = Arc::new(Publisher::new(rabbit.clone()));
        let queues = Arc::new(queues::JobQueues::new(
            rabbit.clone(),
            queues::Names::new(&config.jobs.queue_prefix),
        ));
        Self {
            events: events::Namespace::new(&config.jobs.queue_prefix),
            config: Arc::new(config),
            storage,
            rabbit,
            ffmpeg,
            publisher,
            queues,
            shutdown: shutdown.clone(),
        }
    }

    pub fn readiness(&self) -> Readiness {
        Readiness::new()
            .add("rabbitmq", self.rabbit.clone())
            .add("s3", self.storage.clone())
            .add("ffmpeg", self.ffmpeg.clone())
    }
}

/// Runs the worker until `shutdown` fires, then drains and returns: the job in progress
/// at shutdown goes on and is acknowledged when done; one that cannot finish within the
/// grace period is stopped (ffmpeg killed, scratch removed) and handed back to the queue
/// for another worker (limits::handback_after). The dead and retry queues are declared at
/// start, so the broker has somewhere to dead-letter a job even before the first failure.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let grace = config.http.shutdown_grace;
    let work_dir = config.jobs.work_dir.clone();
    tokio::task::spawn_blocking(move || workdir::clear(&work_dir)).await??;
    job::metrics::register();
    let ctx = Context::connect(config, &shutdown);
    let spec = ctx.queues.names.jobs_queue();
    declare_in_background(&ctx);
    let worker = ctx.clone();
    // Prefetch 1: a worker holds one job; others wait in the queue for free workers.
    consumer::spawn(ctx.rabbit.clone(), spec, 1, &shutdown, move |delivery| {
        let ctx = worker.clone();
        async move { job::handle(&ctx, delivery).await }
    });
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
