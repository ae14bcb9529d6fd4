use platform::{Shutdown, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init("ranker");
    let config = ranker::Config::from_env()?;
    let listener = tokio::net::TcpListener::bind(config.http.bind).await?;
    ranker::run(config, listener, Shutdown::on_signals()).await
}
