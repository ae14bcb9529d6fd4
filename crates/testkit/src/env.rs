//! Each test's own slice of the real stores: a fresh PostgreSQL database, a fresh S3 bucket,
//! a unique Redis key prefix, and the shared servers' URLs (from the same environment
//! variables the services read, with the same local defaults). Dropping a [`TestEnv`]
//! removes its database and bucket, so tests run in parallel and leave nothing behind.

use std::sync::Arc;

use uuid::Uuid;

#[derive(Clone)]
pub struct TestEnv {
    /// Unique per test, usable in names (`[a-z0-9_]`).
    pub id: String,
    /// A database URL for a fresh database `<prefix>_<id>` (created by the service).
    pub database_url: String,
    pub redis_url: String,
    /// Prefix for every Redis key the test's services write.
    pub redis_prefix: String,
    pub amqp_url: String,
    /// The `QUEUE_PREFIX` for every service of the test: its queues and its events'
    /// routing keys (events::Namespace), so tests and a running platform sharing the broker
    /// never see each other's messages.
    pub queue_prefix: String,
    pub mongodb_uri: String,
    /// A fresh MongoDB database name.
    pub mongodb_database: String,
    pub s3: platform::s3::S3Config,
    _cleanup: Arc<Cleanup>,
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// The PostgreSQL server (no database) tests create their databases on.
pub fn postgres_server() -> String {
    env_or("KINO_POSTGRES", "postgres://postgres@127.0.0.1:5432")
}

impl TestEnv {
    /// A service's HTTP settings for a test: any free port, a 5 s shutdown grace.
    pub fn http_config(&self) -> platform::config::HttpConfig {
        platform::config::HttpConfig {
            bind: "127.0.0.1:0".parse().expect("an address"),
            shutdown_grace: std::time::Duration::from_secs(5),
        }
    }

    /// A service's database settings for this test's database.
    pub fn postgres_config(&self) -> platform::postgres::PostgresConfig {
        platform::postgres::PostgresConfig {
            url: self.database_url.clone(),
            max_connections: 4,
        }
    }

    /// `prefix` names the service or test family (`auth`, `media`…), for humans reading
    /// `\l` while a test runs.
    pub fn new(prefix: &str) -> Self {
        Self::with_databases(prefix, &[""])
    }

    /// Like [`TestEnv::new`], for several services in one test: service `s` uses the
    /// database `<database_url>_<s>`, and all of them are dropped at the end.
    pub fn with_databases(prefix: &str, suffixes: &[&str]) -> Self {
        let id = Uuid::now_v7().simple().to_string();
        let database = format!("{prefix}_test_{id}");
        let s3 = platform::s3::S3Config {
            endpoint: env_or("S3_ENDPOINT", "http://127.0.0.1:9000"),
            region: env_or("S3_REGION", "us-east-1"),
            access_key: env_or("S3_ACCESS_KEY", "kino"),
            secret_key: env_or("S3_SECRET_KEY", "kino-local-secret"),
            bucket: format!("test-{id}"),
        };
        let mongodb_database = format!("{prefix}_test_{id}");
        let mongodb_uri = env_or(
            "MONGODB_URI",
            "mongodb://127.0.0.1:27017/?directConnection=true",
        );
        let redis_url = env_or("REDIS_URL", "redis://127.0.0.1:6379");
        let redis_prefix = format!("test:{id}:");
        Self {
            database_url: format!("{}/{database}", postgres_server()),
            redis_url: redis_url.clone(),
            redis_prefix: redis_prefix.clone(),
            amqp_url: env_or("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f"),
            queue_prefix: format!("test-{id}."),
            mongodb_uri: mongodb_uri.clone(),
            mongodb_database: mongodb_database.clone(),
            _cleanup: Arc::new(Cleanup {
                databases: suffixes
                    .iter()
                    .map(|s| {
                        if s.is_empty() {
                            database.clone()
                        } else {
                            format!("{database}_{s}")
                        }
                    })
                    .collect(),
                s3: s3.clone(),
                mongodb_uri,
                mongodb_database,
                redis_url,
                redis_prefix,
            }),
            s3,
            id,
        }
    }
}

struct Cleanup {
    databases: Vec<String>,
    s3: platform::s3::S3Config,
    mongodb_uri: String,
    mongodb_database: String,
    redis_url: String,
    redis_prefix: String,
}

impl Drop for Cleanup {
    /// Runs on a thread of its own: `Drop` cannot be async, and the test's runtime may be
    /// shutting down.
    fn drop(&mut self) {
        let (databases, s3) = (self.databases.clone(), self.s3.clone());
        let (mongodb_uri, mongodb_database) =
            (self.mongodb_uri.clone(), self.mongodb_database.clone());
        let (redis_url, redis_prefix) = (self.redis_url.clone(), self.redis_prefix.clone());
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok(pool) =
                    sqlx::PgPool::connect(&format!("{}/postgres", postgres_server())).await
                {
                    for database in databases {
                        let drop = format!(r#"DROP DATABASE IF EXISTS "{database}" WITH (FORCE)"#);
                        let _ = sqlx::query(&drop).execute(&pool).await;
                    }
                }
                delete_bucket(&s3).await;
                if let Ok(client) = platform::mongo::connect(&mongodb_uri, "kino-tests").await {
                    let _ = client.database(&mongodb_database).drop().await;
                }
                delete_redis_keys(&redis_url, &redis_prefix).await;
            });
        });
        let _ = done.join();
    }
}

/// Deletes every Redis key under the test's prefix (some carry a TTL of an hour, like the
/// ranker's dedupe marks, and would otherwise outlive the test by that long).
async fn delete_redis_keys(url: &str, prefix: &str) {
    let Ok(redis) = platform::redis::connect(url) else {
        return;
    };
    let Ok(keys) = redis.keys(&format!("{prefix}*")).await else {
        return;
    };
    // A cluster client splits a multi-key UNLINK by slot.
    for chunk in keys.chunks(1000) {
        let _: redis::RedisResult<i64> = redis::cmd("UNLINK")
            .arg(chunk)
            .query_async(&mut redis.clone())
            .await;
    }
}

async fn delete_bucket(s3: &platform::s3::S3Config) {
    let client = platform::s3::client(s3);
    let mut token = None;
    loop {
        let Ok(page) = client
            .list_objects_v2()
            .bucket(&s3.bucket)
            .set_continuation_token(token.take())
            .send()
            .await
        else {
            return; // no bucket: nothing to clean
        };
        for object in page.contents() {
            if let Some(key) = object.key() {
                let _ = client
                    .delete_object()
                    .bucket(&s3.bucket)
                    .key(key)
                    .send()
                    .await;
            }
        }
        match page.next_continuation_token() {
            Some(next) => token = Some(next.to_owned()),
            None => break,
        }
    }
    let _ = client.delete_bucket().bucket(&s3.bucket).send().await;
}
