//! The video service's configuration; every variable has a local default.

use platform::{
    config::{self, ConfigError, HttpConfig},
    postgres::PostgresConfig,
    s3::S3Config,
};

#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpConfig,
    pub postgres: PostgresConfig,
    pub s3: S3Config,
    pub amqp_url: String,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            http: HttpConfig::from_env("0.0.0.0:8083")?,
            postgres: PostgresConfig::from_env("video")?,
            s3: S3Config::from_env()?,
            amqp_url: config::amqp_url()?,
        })
    }
}
