//! What an access token must say, read once for every service that checks tokens.
//!
//! Auth (which issues and verifies tokens) and media (which verifies tokens presented on
//! WebSockets) read the same variables; they must agree, so they read them here:
//!
//! * `JWT_ISSUER` (default `kino-auth`) and `JWT_AUDIENCE` (default `kino`);
//! * `JWT_LEEWAY_SECS` (default 5): tolerated clock skew on `exp`, in **whole** seconds.
//!   JWT times are whole seconds and the checks compare whole seconds, so a fraction
//!   would be silently cut; it is refused instead.

use std::time::Duration;

use platform::config::{ConfigError, var};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSettings {
    pub issuer: String,
    pub audience: String,
    pub leeway: Duration,
}

impl JwtSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let leeway: String = var("JWT_LEEWAY_SECS", "5")?;
        let leeway = parse_leeway(&leeway).map_err(|reason| ConfigError {
            name: "JWT_LEEWAY_SECS".into(),
            value: leeway.clone(),
            reason,
        })?;
        Ok(Self {
            issuer: var("JWT_ISSUER", "kino-auth")?,
            audience: var("JWT_AUDIENCE", "kino")?,
            leeway,
        })
    }
}

fn parse_leeway(raw: &str) -> Result<Duration, String> {
    raw.trim()
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| "expected whole seconds (JWT times are whole seconds), e.g. 5".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leeway_is_whole_seconds() {
        assert_eq!(parse_leeway("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_leeway("0"), Ok(Duration::ZERO));
        for bad in ["2.5", "-1", "five", ""] {
            assert!(parse_leeway(bad).is_err(), "{bad:?}");
        }
    }
}
