//! Configuration from environment variables.
//!
//! Every service describes its configuration as a plain struct and fills it with
//! [`var`]/[`var_opt`] in a `from_env` function, so the full list of variables (and their
//! local defaults) is readable in one place per service and in the README.

use std::{fmt::Display, net::SocketAddr, str::FromStr, time::Duration};

/// A variable that does not parse. Its message names the variable and the reason, and
/// shows the value only where that is safe ([`shown`]): a log line about a bad setting
/// must never carry a secret.
#[derive(Debug, thiserror::Error)]
#[error("invalid value for {name}={}: {reason}", shown(name, value))]
pub struct ConfigError {
    pub name: String,
    pub value: String,
    pub reason: String,
}

/// How a variable's value appears in error messages: hidden for secrets (names with
/// `SECRET`, `PASSWORD`, `TOKEN`, or `KEY` other than a `KEY_FILE`/`KEY_ID`), with any
/// `user:password@` of a URL masked, and quoted as given otherwise.
pub fn shown(name: &str, value: &str) -> String {
    let upper = name.to_ascii_uppercase();
    let secret = ["SECRET", "PASSWORD", "TOKEN"]
        .iter()
        .any(|word| upper.contains(word))
        || (upper.contains("KEY") && !upper.ends_with("_FILE") && !upper.ends_with("_ID"));
    if secret {
        return "<hidden>".to_owned();
    }
    format!("{:?}", mask_url_password(value))
}

/// `scheme://user:password@host/…` -> `scheme://user:***@host/…`; anything else unchanged.
fn mask_url_password(value: &str) -> String {
    let Some((scheme, rest)) = value.split_once("://") else {
        return value.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_owned()
            };
            format!("{scheme}://{masked}@{host}{tail}")
        }
        None => value.to_owned(),
    }
}

/// Reads `name`, falling back to `default`, and parses it.
pub fn var<T>(name: &str, default: &str) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    let value = std::env::var(name).unwrap_or_else(|_| default.to_owned());
    parse(name, value)
}

/// Reads `name` if it is set (and not empty) and parses it.
pub fn var_opt<T>(name: &str) -> Result<Option<T>, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => parse(name, value).map(Some),
        _ => Ok(None),
    }
}

/// Reads a duration given in (possibly fractional) seconds, e.g. `SHUTDOWN_GRACE_SECS=2.5`.
pub fn secs(name: &str, default: &str) -> Result<Duration, ConfigError> {
    let value: f64 = var(name, default)?;
    Duration::try_from_secs_f64(value).map_err(|e| ConfigError {
        name: name.to_owned(),
        value: value.to_string(),
        reason: e.to_string(),
    })
}

fn parse<T>(name: &str, value: String) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    value.parse().map_err(|e: T::Err| ConfigError {
        name: name.to_owned(),
        value,
        reason: e.to_string(),
    })
}

/// Settings every HTTP-serving process has.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// `BIND_ADDR`: where the service listens.
    pub bind: SocketAddr,
    /// `SHUTDOWN_GRACE_SECS`: how long in-flight work may take to finish after SIGTERM.
    pub shutdown_grace: Duration,
}

impl HttpConfig {
    /// `default_bind` differs per service so the local stack needs no configuration.
    pub fn from_env(default_bind: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            bind: var("BIND_ADDR", default_bind)?,
            shutdown_grace: secs("SHUTDOWN_GRACE_SECS", "30")?,
        })
    }
}

/// `REDIS_URL`.
pub fn redis_url() -> Result<String, ConfigError> {
    var("REDIS_URL", "redis://127.0.0.1:6379")
}

/// `AMQP_URL`.
pub fn amqp_url() -> Result<String, ConfigError> {
    var("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")
}

/// `MONGODB_URI` and `MONGODB_DATABASE`.
pub fn mongodb() -> Result<(String, String), ConfigError> {
    Ok((
        var(
            "MONGODB_URI",
            "mongodb://127.0.0.1:27017/?directConnection=true",
        )?,
        var("MONGODB_DATABASE", "media")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reports_the_variable_and_the_reason() {
        let err = parse::<u16>("PORT", "eighty".into()).unwrap_err();
        assert_eq!(err.name, "PORT");
        assert!(err.to_string().contains("eighty"), "{err}");
    }

    #[test]
    fn errors_never_show_a_secret() {
        let err = |name: &str, value: &str| {
            ConfigError {
                name: name.into(),
                value: value.into(),
                reason: "bad".into(),
            }
            .to_string()
        };
        assert!(!err("S3_SECRET_KEY", "hunter2").contains("hunter2"));
        assert!(!err("WEBHOOK_TOKEN", "hunter2").contains("hunter2"));
        assert!(!err("S3_ACCESS_KEY", "hunter2").contains("hunter2"));
        let url = err("AMQP_URL", "amqp://guest:hunter2@rabbit:5672/%2f");
        assert!(!url.contains("hunter2"), "{url}");
        assert!(url.contains("amqp://guest:***@rabbit:5672/%2f"), "{url}");
        let shown = err("JWT_SIGNING_KEY_FILE", "/keys/jwt.pem");
        assert!(shown.contains("/keys/jwt.pem"), "{shown}");
        assert!(err("BIND_ADDR", "nowhere").contains("\"nowhere\""));
        assert!(err("REDIS_URL", "redis://cache:6379").contains("redis://cache:6379"));
    }

    #[test]
    fn secs_accepts_fractions() {
        assert_eq!(
            parse::<f64>("X", "2.5".into())
                .map(Duration::from_secs_f64)
                .unwrap(),
            Duration::from_millis(2500)
        );
    }
}
