//! The video service as its tests start it: in-process, on a random port, against the
//! test's own database, bucket and queue prefix.

use std::time::Duration;

use platform::{config::HttpConfig, postgres::PostgresConfig};
use testkit::TestEnv;

pub fn config(env: &TestEnv) -> video::Config {
    video::Config {
        http: HttpConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            shutdown_grace: Duration::from_secs(5),
        },
        postgres: PostgresConfig {
            url: env.database_url.clone(),
            max_connections: 4,
        },
        s3: env.s3.clone(),
        amqp_url: env.amqp_url.clone(),
        uploads: video::UploadConfig::default(),
        // The limits have their own tests, through the gateway (crates/e2e tests/limits.rs).
        limits: video::LimitConfig::unlimited(),
        redis_url: env.redis_url.clone(),
        redis_prefix: env.redis_prefix.clone(),
        trusted_proxies: platform::client_ip::DEFAULT_TRUSTED_PROXIES
            .parse()
            .unwrap(),
        queue_prefix: env.queue_prefix.clone(),
        playback_key: None,
        delivery: video::Delivery::Proxy,
        hls_cache_bytes: 24 * 1024 * 1024,
    }
}
