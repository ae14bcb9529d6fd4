use platform::{Shutdown, telemetry};

/// mimalloc instead of glibc's malloc: under load, glibc's allocator was a quarter of the
/// media service's CPU (bench/media, perf), and async services allocate on every request.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[rocket::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init("auth");
    let config = auth::Config::from_env()?;
    auth::run(config, Shutdown::on_signals(), None).await
}
