//! Shared by media's integration tests.

use std::time::Duration;

use testkit::TestEnv;

/// Media on this test's stores (its own database, MongoDB database, key and queue
/// prefixes), on any free port.
pub fn config(env: &TestEnv) -> media::Config {
    let mut config = media::Config::from_env().unwrap();
    config.http = env.http_config();
    config.postgres = env.postgres_config();
    config.mongodb_uri = env.mongodb_uri.clone();
    config.mongodb_database = env.mongodb_database.clone();
    config.redis_url = env.redis_url.clone();
    config.redis_prefix = env.redis_prefix.clone();
    config.amqp_url = env.amqp_url.clone();
    config.queue_prefix = env.queue_prefix.clone();
    config.queue_expires = Some(Duration::from_secs(60));
    config
}
