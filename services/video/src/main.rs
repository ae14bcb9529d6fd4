use platform::{Shutdown, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init("video");
    let config = video::Config::from_env()?;
    let listener = tokio::net::TcpListener::bind(config.http.bind).await?;
    video::run(config, listener, Shutdown::on_signals()).await
}
