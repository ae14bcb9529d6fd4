use platform::{Shutdown, telemetry};

/// mimalloc instead of glibc's malloc: under load, glibc's allocator was a quarter of the
/// media service's CPU (bench/media, perf), and async services allocate on every request.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `auth` serves. `auth grant-admin <username>` / `auth revoke-admin <username>` make or
/// unmake an admin in the auth database (`DATABASE_URL`) and exit: the only way to an
/// admin (auth::users::roles).
#[rocket::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => {
            telemetry::init("auth");
            let config = auth::Config::from_env()?;
            auth::run(config, Shutdown::on_signals(), None).await
        }
        [command, username] if command == "grant-admin" || command == "revoke-admin" => {
            // Only the database is needed (no signing key, no broker); the one line printed
            // is the outcome (no log lines: this is an operator's command).
            let postgres = platform::postgres::PostgresConfig::from_env("auth")?;
            let change = auth::admin_command(&postgres, username, command == "grant-admin").await?;
            println!("{username}: {change:?}");
            Ok(())
        }
        _ => anyhow::bail!("usage: auth [grant-admin|revoke-admin <username>]"),
    }
}
