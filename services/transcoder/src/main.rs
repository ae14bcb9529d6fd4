use platform::{Shutdown, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init("transcoder");
    let config = transcoder::Config::from_env()?;
    let listener = tokio::net::TcpListener::bind(config.http.bind).await?;
    transcoder::run(config, listener, Shutdown::on_signals()).await
}
