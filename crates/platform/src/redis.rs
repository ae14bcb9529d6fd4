//! Redis through a lazily connecting, self-reconnecting [`ConnectionManager`]: a service
//! starts without Redis and recovers when it comes back, without a restart.

use std::time::Duration;

pub use redis::aio::ConnectionManager;
use redis::aio::ConnectionManagerConfig;

/// A multiplexed connection shared by the whole service. Cheap to clone.
pub fn connect(url: &str) -> redis::RedisResult<ConnectionManager> {
    let client = redis::Client::open(url)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(1));
    ConnectionManager::new_lazy_with_config(client, config)
}

impl crate::health::Check for ConnectionManager {
    /// A PING round trip.
    async fn check(&self) -> Result<(), String> {
        let mut conn = self.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }
}
