//! The ranker's configuration; every variable has a local default.

use platform::config::{self, ConfigError, HttpConfig};

#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpConfig,
    pub redis_url: String,
    pub mongodb_uri: String,
    pub mongodb_database: String,
    pub amqp_url: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let (mongodb_uri, mongodb_database) = config::mongodb()?;
        Ok(Self {
            http: HttpConfig::from_env("0.0.0.0:8085")?,
            redis_url: config::redis_url()?,
            mongodb_uri,
            mongodb_database,
            amqp_url: config::amqp_url()?,
        })
    }
}
