use platform::{Shutdown, telemetry};

#[rocket::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init("auth");
    let config = auth::Config::from_env()?;
    auth::run(config, Shutdown::on_signals(), None).await
}
