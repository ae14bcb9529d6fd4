//! PostgreSQL: one database per service, created if missing, migrated at start.
//!
//! The pool is lazy, so a service starts (and answers `/healthz`) while PostgreSQL is still
//! down. A background task creates the database and runs the service's migrations as soon
//! as the server answers, retrying with backoff. Readiness is "migrated and answering".
//! Concurrent replicas are safe: sqlx takes an advisory lock around migrations, and a lost
//! `CREATE DATABASE` race is treated as success.

use std::{
    str::FromStr,
    sync::{Arc, Mutex},
    time::Duration,
};

use sqlx::{
    Connection, PgPool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgConnection, PgPoolOptions},
};

use crate::{
    Shutdown,
    background::{Backoff, until_ready},
};

/// Whether a failed query was the client's input rather than an outage: SQLSTATE class 22
/// (data exception: a NUL byte in text, a value out of range, an invalid encoding). Every
/// service answers these with a 4xx ("the request contains a value that cannot be
/// stored") and everything else from the database as unavailable.
pub fn is_data_exception(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|code| code.starts_with("22"))
}

/// What a client is told when [`is_data_exception`] holds.
pub const DATA_EXCEPTION_DETAIL: &str = "the request contains a value that cannot be stored";

#[derive(Clone)]
pub struct Postgres {
    pool: PgPool,
    /// `Ok` once migrated; `Err(why not yet)` before.
    setup: Arc<Mutex<Result<(), String>>>,
}

#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// `DATABASE_URL`: the service's own database, e.g. `postgres://postgres@127.0.0.1:5432/auth`.
    pub url: String,
    /// `DATABASE_MAX_CONNECTIONS`.
    pub max_connections: u32,
}

impl PostgresConfig {
    /// `DATABASE_URL` defaults to the local server and a database named after the service.
    pub fn from_env(default_database: &str) -> Result<Self, crate::config::ConfigError> {
        use crate::config::var;
        Ok(Self {
            url: var(
                "DATABASE_URL",
                &format!("postgres://postgres@127.0.0.1:5432/{default_database}"),
            )?,
            max_connections: var("DATABASE_MAX_CONNECTIONS", "10")?,
        })
    }
}

impl Postgres {
    /// Builds the lazy pool and starts the create-and-migrate task. Fails only on a
    /// malformed URL.
    pub fn start(
        config: &PostgresConfig,
        migrator: &'static Migrator,
        shutdown: &Shutdown,
    ) -> Result<Self, sqlx::Error> {
        let options = PgConnectOptions::from_str(&config.url)?;
        let database = options
            .get_database()
            .ok_or_else(|| sqlx::Error::Configuration("DATABASE_URL names no database".into()))?
            .to_owned();
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(Duration::from_secs(3))
            .connect_lazy_with(options.clone());
        let postgres = Self {
            pool,
            setup: Arc::new(Mutex::new(Err("not connected yet".into()))),
        };

        let task = postgres.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let what = format!("database {database}");
            let set_up = until_ready(&what, Backoff::STORE, &shutdown, || async {
                let outcome = async {
                    create_database_if_missing(&options, &database).await?;
                    migrator.run(&task.pool).await?;
                    Ok::<_, sqlx::Error>(())
                }
                .await;
                if let Err(e) = &outcome {
                    *task.setup.lock().unwrap() = Err(format!("setup pending: {e}"));
                }
                outcome
            })
            .await;
            if set_up.is_some() {
                tracing::info!(database, "database ready (migrations applied)");
                *task.setup.lock().unwrap() = Ok(());
            }
        });
        Ok(postgres)
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// `Ok` once the database exists and the migrations ran (upkeep waits for it).
    pub fn migrated(&self) -> Result<(), String> {
        self.setup.lock().unwrap().clone()
    }
}

impl crate::health::Check for Postgres {
    /// Migrated, and a round trip succeeds now.
    async fn check(&self) -> Result<(), String> {
        self.setup.lock().unwrap().clone()?;
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

/// `CREATE DATABASE` cannot take a bind parameter, so the name is checked instead.
fn is_plain_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

async fn create_database_if_missing(
    options: &PgConnectOptions,
    name: &str,
) -> Result<(), sqlx::Error> {
    if !is_plain_identifier(name) {
        return Err(sqlx::Error::Configuration(
            format!("database name {name:?} must match [a-z0-9_]{{1,63}}").into(),
        ));
    }
    let mut conn = PgConnection::connect_with(&options.clone().database("postgres")).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        match sqlx::query(&format!(r#"CREATE DATABASE "{name}""#))
            .execute(&mut conn)
            .await
        {
            Ok(_) => tracing::info!(database = name, "created database"),
            // Another replica won the race: fine.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e),
        }
    }
    conn.close().await
}

#[cfg(test)]
mod tests {
    use super::is_plain_identifier;

    #[test]
    fn only_plain_identifiers_reach_create_database() {
        assert!(is_plain_identifier("auth"));
        assert!(is_plain_identifier("auth_test_0192"));
        assert!(!is_plain_identifier("Auth"));
        assert!(!is_plain_identifier("a\"; DROP DATABASE x; --"));
        assert!(!is_plain_identifier(""));
    }
}
