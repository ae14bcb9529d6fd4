//! The transcoder's configuration; every variable has a local default.

use platform::{
    config::{self, ConfigError, HttpConfig, var},
    s3::S3Config,
};

use crate::ffmpeg::Tools;

#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpConfig,
    pub s3: S3Config,
    pub amqp_url: String,
    pub ffmpeg: Tools,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            http: HttpConfig::from_env("0.0.0.0:8084")?,
            s3: S3Config::from_env()?,
            amqp_url: config::amqp_url()?,
            ffmpeg: Tools {
                ffmpeg: var("FFMPEG_PATH", "ffmpeg")?,
                ffprobe: var("FFPROBE_PATH", "ffprobe")?,
            },
        })
    }
}
