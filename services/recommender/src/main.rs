use platform::{Shutdown, telemetry};

/// mimalloc instead of glibc's malloc: under load, glibc's allocator was a quarter of the
/// media service's CPU (bench/media, perf), and async services allocate on every request.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init("recommender");
    let config = recommender::Config::from_env()?;
    let listeners = recommender::Listeners::bind(&config).await?;
    recommender::run(config, listeners, Shutdown::on_signals()).await
}
