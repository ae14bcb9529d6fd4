//! The transcoder's configuration; every variable has a local default.

use std::{path::PathBuf, time::Duration};

use platform::{
    config::{self, ConfigError, HttpConfig, var},
    s3::S3Config,
};

use crate::{ffmpeg::Tools, limits::Timeout};

#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpConfig,
    pub s3: S3Config,
    pub amqp_url: String,
    pub ffmpeg: Tools,
    pub jobs: JobConfig,
}

#[derive(Debug, Clone)]
pub struct JobConfig {
    /// `QUEUE_PREFIX`: the transcode queues' names and the routing keys of the video
    /// events it publishes start with it; the same as every service of the stack (empty in
    /// production).
    pub queue_prefix: String,
    /// `TRANSCODE_WORK_DIR`: where sources and outputs live while a job runs. Each job
    /// gets a subdirectory, removed when it ends; leftovers of a killed process are
    /// removed at start, so give each worker process its own directory.
    pub work_dir: PathBuf,
    /// `TRANSCODE_MAX_ATTEMPTS`: attempts before a job goes to `transcode.dead` and the
    /// video is marked failed.
    pub max_attempts: u32,
    /// `TRANSCODE_RETRY_BACKOFF_SECS`: the wait before the second attempt; doubles after.
    pub retry_backoff: Duration,
    /// `TRANSCODE_PRESET`: the x264 preset (speed against size).
    pub preset: String,
    /// `TRANSCODE_PROGRESS_INTERVAL_SECS`: the least time between two progress events.
    pub progress_interval: Duration,
    /// `TRANSCODE_TIMEOUT_*`: how long one attempt may take, from its source's duration.
    pub timeout: Timeout,
}

impl Default for JobConfig {
    fn default() -> Self {
        Self {
            queue_prefix: String::new(),
            work_dir: std::env::temp_dir().join("kino-transcoder"),
            max_attempts: 3,
            retry_backoff: Duration::from_secs(10),
            preset: "veryfast".into(),
            progress_interval: Duration::from_millis(500),
            timeout: Timeout::default(),
        }
    }
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        let defaults = JobConfig::default();
        Ok(Self {
            http: HttpConfig::from_env("0.0.0.0:8084")?,
            s3: S3Config::from_env()?,
            amqp_url: config::amqp_url()?,
            ffmpeg: Tools {
                ffmpeg: var("FFMPEG_PATH", "ffmpeg")?,
                ffprobe: var("FFPROBE_PATH", "ffprobe")?,
            },
            jobs: JobConfig {
                queue_prefix: var("QUEUE_PREFIX", "")?,
                work_dir: var(
                    "TRANSCODE_WORK_DIR",
                    defaults.work_dir.to_str().unwrap_or("/tmp/kino-transcoder"),
                )?,
                max_attempts: var("TRANSCODE_MAX_ATTEMPTS", "3")?,
                retry_backoff: config::secs("TRANSCODE_RETRY_BACKOFF_SECS", "10")?,
                preset: var("TRANSCODE_PRESET", "veryfast")?,
                progress_interval: config::secs("TRANSCODE_PROGRESS_INTERVAL_SECS", "0.5")?,
                timeout: timeout_from_env()?,
            },
        })
    }
}

fn timeout_from_env() -> Result<Timeout, ConfigError> {
    let factor: f64 = var("TRANSCODE_TIMEOUT_FACTOR", "4")?;
    if !factor.is_finite() || factor < 0.0 {
        return Err(ConfigError {
            name: "TRANSCODE_TIMEOUT_FACTOR".into(),
            value: factor.to_string(),
            reason: "must be a number of at least 0".into(),
        });
    }
    let max = config::secs("TRANSCODE_TIMEOUT_MAX_SECS", "21600")?;
    if max.is_zero() {
        return Err(ConfigError {
            name: "TRANSCODE_TIMEOUT_MAX_SECS".into(),
            value: "0".into(),
            reason: "must be more than 0".into(),
        });
    }
    Ok(Timeout {
        floor: config::secs("TRANSCODE_TIMEOUT_FLOOR_SECS", "300")?,
        factor,
        max,
    })
}
