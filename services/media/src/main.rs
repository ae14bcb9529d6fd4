use platform::{Shutdown, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init("media");
    let config = media::Config::from_env()?;
    let listener = tokio::net::TcpListener::bind(config.http.bind).await?;
    media::run(config, listener, Shutdown::on_signals()).await
}
