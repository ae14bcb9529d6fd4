use platform::{Shutdown, telemetry};

/// mimalloc, as in every service binary (see services/video/src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init("webhooks");
    let config = webhooks::Config::from_env()?;
    let listener = tokio::net::TcpListener::bind(config.http.bind).await?;
    webhooks::run(config, listener, Shutdown::on_signals()).await
}
