//! Live-update settings (environment variables, with local defaults).

use std::time::Duration;

use platform::config::{ConfigError, var};

#[derive(Debug, Clone)]
pub struct RealtimeConfig {
    /// `REALTIME_INIT_TIMEOUT_MILLIS`: a connection that sends no `connection_init` within
    /// this long is closed with 4408.
    pub init_timeout: Duration,
    /// `REALTIME_KEEPALIVE_SECS`: the server pings this often; a client that has sent
    /// nothing (not even a pong) for two intervals is closed.
    pub keepalive: Duration,
    /// `REALTIME_SEND_TIMEOUT_SECS`: a frame the client's socket does not take within this
    /// long ends the connection (a client that stopped reading entirely).
    pub send_timeout: Duration,
    /// `REALTIME_CHANNEL_CAPACITY`: messages a channel buffers for its slowest local
    /// subscriber; further behind, the subscriber is told to resynchronise.
    pub channel_capacity: usize,
    /// `REALTIME_STATS_INTERVAL_MILLIS`: `videoStats` updates are coalesced to at most one
    /// per this interval (per replica when published, per subscriber when delivered).
    pub stats_interval: Duration,
    /// `REALTIME_TRENDING_INTERVAL_MILLIS`: `trendingChanged` lists are re-read (and pushed,
    /// if they changed) at most once per this interval.
    pub trending_interval: Duration,
    /// `REALTIME_TRENDING_REFRESH_SECS`: without announcements from the ranker, the lists are
    /// still re-read this often (catches listing changes: a video made private or deleted).
    pub trending_refresh: Duration,
    /// `REALTIME_REPLAY_MAX`: the most comments `commentEvents(after:)` replays; further
    /// behind, the client is told to resynchronise (reload the comments).
    pub replay_max: usize,
    /// `REALTIME_MAX_SUBSCRIPTIONS`: subscriptions one connection may run at once.
    pub max_subscriptions: usize,
    /// `REALTIME_MAX_MESSAGE_BYTES`: the largest client message accepted.
    pub max_message_bytes: usize,
    /// `JWT_ISSUER` / `JWT_AUDIENCE` / `JWT_LEEWAY_SECS`: what tokens in `connection_init`
    /// must say (read as auth reads them).
    pub jwt: identity::JwtSettings,
}

impl RealtimeConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            init_timeout: Duration::from_millis(var("REALTIME_INIT_TIMEOUT_MILLIS", "3000")?),
            keepalive: Duration::from_secs(var("REALTIME_KEEPALIVE_SECS", "15")?),
            send_timeout: Duration::from_secs(var("REALTIME_SEND_TIMEOUT_SECS", "30")?),
            channel_capacity: var("REALTIME_CHANNEL_CAPACITY", "256")?,
            stats_interval: Duration::from_millis(var("REALTIME_STATS_INTERVAL_MILLIS", "250")?),
            trending_interval: Duration::from_millis(var(
                "REALTIME_TRENDING_INTERVAL_MILLIS",
                "1000",
            )?),
            trending_refresh: Duration::from_secs(var("REALTIME_TRENDING_REFRESH_SECS", "10")?),
            replay_max: var("REALTIME_REPLAY_MAX", "1000")?,
            max_subscriptions: var("REALTIME_MAX_SUBSCRIPTIONS", "100")?,
            max_message_bytes: var("REALTIME_MAX_MESSAGE_BYTES", "65536")?,
            jwt: identity::JwtSettings::from_env()?,
        })
    }
}
