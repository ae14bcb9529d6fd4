//! Tokens presented in `connection_init`.
//!
//! Browsers cannot set headers on a WebSocket handshake, so a browser's upgrade request
//! reaches us through the gateway anonymously (the route is public) and the access token
//! arrives in the first protocol message instead: `{"authorization": "Bearer <jwt>"}`. We
//! check it exactly as the gateway's ForwardAuth hop would, with the same
//! [`identity::Authenticator`]: Ed25519 signature against auth's published keys (JWKS),
//! issuer, audience and leeway ([`identity::JwtSettings`], the variables auth reads), expiry,
//! and the shared revocation list in Redis — asked fresh ([`Freshness::Now`]): a connection
//! is opened once and then lives long, so a token logged out a moment ago must not open one.
//!
//! The keys are fetched from auth (`AUTH_URL` + `/auth/.well-known/jwks.json`) on first use
//! and again when a token names a key we do not know (auth rotated its key), at most once
//! per [`REFRESH_EVERY`] so garbage tokens cannot make us hammer auth.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use identity::{
    AuthError, Authenticator, Claims, Freshness, Jwks, JwtSettings, Revocations, Verifier,
    VerifyError,
};

const REFRESH_EVERY: Duration = Duration::from_secs(10);

/// Why a token was refused (the client only learns "forbidden").
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("invalid token: {0}")]
    Invalid(#[from] VerifyError),
    #[error("cannot check the token now: {0}")]
    Unavailable(String),
}

pub struct TokenAuth {
    jwks_url: String,
    http: reqwest::Client,
    redis: platform::redis::Redis,
    redis_prefix: String,
    jwt: JwtSettings,
    current: Mutex<Option<(Arc<Authenticator>, Instant)>>,
    refresh: tokio::sync::Mutex<()>,
}

impl TokenAuth {
    pub fn new(
        auth_url: &str,
        redis: platform::redis::Redis,
        redis_prefix: &str,
        jwt: &JwtSettings,
    ) -> Self {
        Self {
            jwks_url: format!(
                "{}/auth/.well-known/jwks.json",
                auth_url.trim_end_matches('/')
            ),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("HTTP client"),
            redis,
            redis_prefix: redis_prefix.to_owned(),
            jwt: jwt.clone(),
            current: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    /// Signature, claims, expiry and revocation, the revocation list asked now (one Redis
    /// `EXISTS`; see the module docs).
    pub async fn authenticate(&self, token: &str) -> Result<Claims, TokenError> {
        let authenticator = match self.authenticator() {
            Some(a) => a,
            None => self.reload(None).await?,
        };
        match authenticator.authenticate_with(token, Freshness::Now).await {
            Err(AuthError::Invalid(VerifyError::UnknownKey)) => {
                // Perhaps auth rotated its key since we fetched the set.
                let fresh = self.reload(Some(&authenticator)).await?;
                fresh
                    .authenticate_with(token, Freshness::Now)
                    .await
                    .map_err(into_token_error)
            }
            other => other.map_err(into_token_error),
        }
    }

    fn authenticator(&self) -> Option<Arc<Authenticator>> {
        self.current
            .lock()
            .unwrap()
            .as_ref()
            .map(|(a, _)| a.clone())
    }

    /// Fetches the keys again unless another task just did (or did so recently), and
    /// returns the authenticator to use.
    async fn reload(
        &self,
        stale: Option<&Arc<Authenticator>>,
    ) -> Result<Arc<Authenticator>, TokenError> {
        let _one_at_a_time = self.refresh.lock().await;
        if let Some((current, fetched)) = self.current.lock().unwrap().clone() {
            let replaced = stale.is_none_or(|s| !Arc::ptr_eq(s, &current));
            if replaced || fetched.elapsed() < REFRESH_EVERY {
                return Ok(current);
            }
        }
        let jwks: Jwks = self
            .http
            .get(&self.jwks_url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| TokenError::Unavailable(format!("JWKS: {e}")))?
            .json()
            .await
            .map_err(|e| TokenError::Unavailable(format!("JWKS: {e}")))?;
        let jwt = &self.jwt;
        let verifier = Verifier::new(&jwks, &jwt.issuer, &jwt.audience, jwt.leeway)
            .map_err(|e| TokenError::Unavailable(format!("JWKS: {e}")))?;
        let authenticator = Arc::new(Authenticator::new(
            verifier,
            Revocations::new(self.redis.clone(), &self.redis_prefix),
            jwt.leeway,
        ));
        *self.current.lock().unwrap() = Some((authenticator.clone(), Instant::now()));
        Ok(authenticator)
    }
}

fn into_token_error(e: AuthError) -> TokenError {
    match e {
        AuthError::Invalid(e) => TokenError::Invalid(e),
        AuthError::Unavailable(e) => TokenError::Unavailable(e.to_string()),
    }
}

/// The token in a `connection_init` payload: `{"authorization": "Bearer <jwt>"}` (the key
/// in any case; the value read as an `Authorization` header is, [`identity::edge::bearer`]).
/// `Ok(None)` when the payload carries none; `Err` when it carries something that is not a
/// bearer token.
pub(crate) fn bearer_from_payload(payload: Option<&serde_json::Value>) -> Result<Option<&str>, ()> {
    let Some(payload) = payload else {
        return Ok(None);
    };
    let serde_json::Value::Object(map) = payload else {
        return Err(());
    };
    let Some(value) = map
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v)
    else {
        return Ok(None);
    };
    let value = value.as_str().ok_or(())?;
    identity::edge::bearer(value).map(Some).map_err(drop)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn bearer_tokens_are_read_from_the_payload() {
        let p = json!({"authorization": "Bearer abc"});
        assert_eq!(bearer_from_payload(Some(&p)), Ok(Some("abc")));
        let p = json!({"Authorization": "bearer  abc "});
        assert_eq!(bearer_from_payload(Some(&p)), Ok(Some("abc")));
        assert_eq!(bearer_from_payload(None), Ok(None));
        assert_eq!(bearer_from_payload(Some(&json!({}))), Ok(None));
        assert_eq!(bearer_from_payload(Some(&json!({"other": 1}))), Ok(None));
        assert!(bearer_from_payload(Some(&json!({"authorization": "Basic x"}))).is_err());
        assert!(bearer_from_payload(Some(&json!({"authorization": "Bearer "}))).is_err());
        assert!(bearer_from_payload(Some(&json!({"authorization": 5}))).is_err());
        assert!(bearer_from_payload(Some(&json!("Bearer x"))).is_err());
    }
}
