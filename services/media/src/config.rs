//! The media service's configuration; every variable has a local default.

use platform::{
    config::{self, ConfigError, HttpConfig},
    postgres::PostgresConfig,
};

#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpConfig,
    pub postgres: PostgresConfig,
    pub mongodb_uri: String,
    pub mongodb_database: String,
    pub redis_url: String,
    pub amqp_url: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let (mongodb_uri, mongodb_database) = config::mongodb()?;
        Ok(Self {
            http: HttpConfig::from_env("0.0.0.0:8082")?,
            postgres: PostgresConfig::from_env("media")?,
            mongodb_uri,
            mongodb_database,
            redis_url: config::redis_url()?,
            amqp_url: config::amqp_url()?,
        })
    }
}
