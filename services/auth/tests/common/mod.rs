//! Shared by auth's integration tests.

use testkit::TestEnv;

/// Auth on this test's stores (its own database, key and queue prefixes), with a fresh
/// signing key, on any free port.
pub fn config(env: &TestEnv) -> auth::Config {
    let mut config = auth::Config::from_env_with_key(identity::SigningKey::generate()).unwrap();
    config.http = env.http_config();
    config.grpc.bind = "127.0.0.1:0".parse().unwrap();
    config.postgres = env.postgres_config();
    config.redis_url = env.redis_url.clone();
    config.redis_prefix = env.redis_prefix.clone();
    config.amqp_url = env.amqp_url.clone();
    config.queue_prefix = env.queue_prefix.clone();
    config
}
