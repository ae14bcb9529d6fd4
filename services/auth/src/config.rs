//! The auth service's configuration; every variable has a local default (see README).

use std::time::Duration;

use identity::{JwtSettings, SigningKey};
use platform::{
    client_ip::TrustedProxies,
    config::{self, ConfigError, HttpConfig, secs, var},
    postgres::PostgresConfig,
    rate_limit::{self, Rate},
    retention::PruneConfig,
};

use crate::{
    gateway::policy::{DEFAULT_PUBLIC_ROUTES, Policy},
    mail::MailConfig,
    tokens::throttle::Limits,
    users::passwords::HashParams,
};

#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpConfig,
    /// `GRPC_BIND_ADDR`: the user directory's gRPC port (other services only).
    pub grpc: rpc::server::GrpcConfig,
    pub postgres: PostgresConfig,
    pub redis_url: String,
    /// `REDIS_PREFIX`: namespace of every Redis key (the revocation list is shared with
    /// media, so both must agree).
    pub redis_prefix: String,
    pub amqp_url: String,
    /// `QUEUE_PREFIX`: prepended to the routing keys of the `user.*` events auth publishes
    /// (events::Namespace), so a stack under a prefix (a test) reaches only the queues of
    /// its own media. Empty in production; every service of a stack shares it.
    pub queue_prefix: String,
    pub tokens: TokenConfig,
    pub hashing: HashParams,
    pub login_limits: Limits,
    /// `TRUSTED_PROXIES`: peers whose `X-Forwarded-For` is believed (comma-separated CIDRs).
    pub trusted_proxies: TrustedProxies,
    /// `RATE_LIMIT_REGISTER_IP`: registrations per client IP (`<count>/<period>` or `off`).
    /// Per IP only: before registering there is no user to count.
    pub register_ip_rate: Option<Rate>,
    /// `PUBLIC_ROUTES`: see [`crate::gateway::policy`].
    pub public_routes: Policy,
    /// `MAX_BODY_BYTES`: larger JSON bodies get 413.
    pub max_body_bytes: u64,
    /// `PRUNE_INTERVAL_SECS`, `PRUNE_BATCH_SIZE`: how often and how much old refresh
    /// tokens are deleted (`tokens::prune`).
    pub prune: PruneConfig,
    /// SMTP, links, email tokens, the upload gate, mail limits ([`crate::mail`]).
    pub mail: MailConfig,
}

#[derive(Debug, Clone)]
pub struct TokenConfig {
    /// Loaded from `JWT_SIGNING_KEY_FILE` (PKCS#8 PEM).
    pub signing_key: SigningKey,
    /// `JWT_ISSUER`, `JWT_AUDIENCE`, `JWT_LEEWAY_SECS` (read as media reads them).
    pub jwt: JwtSettings,
    /// `ACCESS_TOKEN_TTL_SECS`.
    pub access_ttl: Duration,
    /// `REFRESH_TOKEN_TTL_SECS`.
    pub refresh_ttl: Duration,
    /// `REFRESH_TOKEN_RETENTION_SECS`: how long a refresh token is kept after it expired
    /// or its family was revoked (`tokens::prune`); at least the access-token lifetime.
    pub refresh_retention: Duration,
}

impl Config {
    /// Reads the environment; the signing key comes from `JWT_SIGNING_KEY_FILE`
    /// (default `.kino/keys/jwt-ed25519.pem`, which deploy/local/deps creates).
    pub fn from_env() -> Result<Self, ConfigError> {
        let path: String = var("JWT_SIGNING_KEY_FILE", ".kino/keys/jwt-ed25519.pem")?;
        let error = |reason: String| ConfigError {
            name: "JWT_SIGNING_KEY_FILE".into(),
            value: path.clone(),
            reason,
        };
        let pem = std::fs::read_to_string(&path)
            .map_err(|e| error(format!("{e} (deploy/local/deps creates a development key)")))?;
        let key = SigningKey::from_pem(&pem).map_err(|e| error(e.to_string()))?;
        Self::from_env_with_key(key)
    }

    /// Reads the environment, with the signing key given (tests).
    pub fn from_env_with_key(signing_key: SigningKey) -> Result<Self, ConfigError> {
        // Half the CPUs at most: a login storm must leave CPU for token verification,
        // which every request through the gateway needs.
        let cpus = std::thread::available_parallelism().map_or(2, usize::from);
        let cpus = (cpus / 2).max(1).to_string();
        let hashing = HashParams {
            memory_kib: var("ARGON2_MEMORY_KIB", "19456")?,
            iterations: var("ARGON2_ITERATIONS", "2")?,
            concurrency: var("ARGON2_CONCURRENCY", &cpus)?,
        };
        if hashing.memory_kib < 19_456 || hashing.iterations < 2 {
            return Err(ConfigError {
                name: "ARGON2_MEMORY_KIB/ARGON2_ITERATIONS".into(),
                value: format!("{}/{}", hashing.memory_kib, hashing.iterations),
                reason: "below OWASP's minimum (19456 KiB, 2 iterations)".into(),
            });
        }
        let tokens = TokenConfig {
            signing_key,
            jwt: JwtSettings::from_env()?,
            access_ttl: secs("ACCESS_TOKEN_TTL_SECS", "900")?,
            refresh_ttl: secs("REFRESH_TOKEN_TTL_SECS", "2592000")?,
            refresh_retention: secs("REFRESH_TOKEN_RETENTION_SECS", "604800")?,
        };
        if tokens.refresh_retention < tokens.access_ttl {
            // Logout and account deletion find live access tokens through these rows.
            return Err(ConfigError {
                name: "REFRESH_TOKEN_RETENTION_SECS".into(),
                value: tokens.refresh_retention.as_secs_f64().to_string(),
                reason: "must be at least ACCESS_TOKEN_TTL_SECS".into(),
            });
        }
        Ok(Self {
            http: HttpConfig::from_env("0.0.0.0:8081")?,
            grpc: rpc::server::GrpcConfig::from_env("0.0.0.0:9081")?,
            postgres: PostgresConfig::from_env("auth")?,
            redis_url: config::redis_url()?,
            redis_prefix: var("REDIS_PREFIX", "kino:")?,
            amqp_url: config::amqp_url()?,
            queue_prefix: var("QUEUE_PREFIX", "")?,
            tokens,
            hashing,
            login_limits: Limits {
                account_failures: var("LOGIN_ACCOUNT_FAILURES", "10")?,
                ip_attempts: var("LOGIN_IP_ATTEMPTS", "100")?,
                window_secs: var("LOGIN_WINDOW_SECS", "900")?,
            },
            trusted_proxies: TrustedProxies::from_env()?,
            // Generous enough for a household or an office behind one address, far too
            // few for a script creating accounts by the thousand.
            register_ip_rate: rate_limit::rate("RATE_LIMIT_REGISTER_IP", "20/1h")?,
            public_routes: var::<String>("PUBLIC_ROUTES", DEFAULT_PUBLIC_ROUTES)?
                .parse()
                .map_err(|reason| ConfigError {
                    name: "PUBLIC_ROUTES".into(),
                    value: String::new(),
                    reason,
                })?,
            max_body_bytes: var("MAX_BODY_BYTES", "16384")?,
            prune: PruneConfig::from_env()?,
            mail: MailConfig::from_env()?,
        })
    }
}
