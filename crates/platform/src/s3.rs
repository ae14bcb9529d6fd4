//! S3-compatible object storage (MinIO in production, s3s-fs locally), path-style addressed.

use std::time::Duration;

use aws_sdk_s3::{
    Client,
    config::{BehaviorVersion, Credentials, Region, timeout::TimeoutConfig},
};
use aws_smithy_http_client::tls;

use crate::background::{Backoff, until_ready};

#[derive(Debug, Clone)]
pub struct S3Config {
    /// `S3_ENDPOINT`, e.g. `http://127.0.0.1:9000`.
    pub endpoint: String,
    /// `S3_REGION`.
    pub region: String,
    /// `S3_ACCESS_KEY` / `S3_SECRET_KEY`.
    pub access_key: String,
    pub secret_key: String,
    /// `S3_BUCKET`: the bucket this deployment keeps its media in.
    pub bucket: String,
}

impl S3Config {
    pub fn from_env() -> Result<Self, crate::config::ConfigError> {
        use crate::config::var;
        Ok(Self {
            endpoint: var("S3_ENDPOINT", "http://127.0.0.1:9000")?,
            region: var("S3_REGION", "us-east-1")?,
            access_key: var("S3_ACCESS_KEY", "kino")?,
            secret_key: var("S3_SECRET_KEY", "kino-local-secret")?,
            bucket: var("S3_BUCKET", "kino-media")?,
        })
    }
}

pub fn client(config: &S3Config) -> Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http)
        .endpoint_url(&config.endpoint)
        .region(Region::new(config.region.clone()))
        .credentials_provider(Credentials::new(
            &config.access_key,
            &config.secret_key,
            None,
            None,
            "kino-config",
        ))
        .force_path_style(true)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .build(),
        )
        .build();
    Client::from_conf(conf)
}

/// Creates the bucket unless it exists (idempotent, safe for concurrent replicas).
pub async fn ensure_bucket(client: &Client, bucket: &str) -> Result<(), String> {
    if client.head_bucket().bucket(bucket).send().await.is_ok() {
        return Ok(());
    }
    match client.create_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(()),
        Err(e) => {
            let service = e.as_service_error();
            if service
                .is_some_and(|s| s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists())
            {
                Ok(())
            } else {
                Err(aws_sdk_s3::error::DisplayErrorContext(&e).to_string())
            }
        }
    }
}

/// A client and the bucket it works in.
#[derive(Clone, Debug)]
pub struct Bucket {
    pub client: Client,
    pub name: String,
}

impl crate::health::Check for Bucket {
    /// The bucket is reachable.
    async fn check(&self) -> Result<(), String> {
        self.client
            .head_bucket()
            .bucket(&self.name)
            .send()
            .await
            .map(drop)
            .map_err(|e| aws_sdk_s3::error::DisplayErrorContext(&e).to_string())
    }
}

impl Bucket {
    /// Creates the bucket in the background as soon as the S3 server answers (a service
    /// starts while S3 is down), retrying with backoff until it exists or shutdown.
    pub fn ensure_in_background(&self, shutdown: &crate::Shutdown) {
        let (bucket, shutdown) = (self.clone(), shutdown.clone());
        tokio::spawn(async move {
            let what = format!("bucket {}", bucket.name);
            let ensure = || ensure_bucket(&bucket.client, &bucket.name);
            if until_ready(&what, Backoff::STORE, &shutdown, ensure)
                .await
                .is_some()
            {
                tracing::info!(bucket = bucket.name, "bucket ready");
            }
        });
    }
}
