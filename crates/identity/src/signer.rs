use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Claims, SigningKey, claims::Role};

/// Issues EdDSA access tokens.
pub struct Signer {
    kid: String,
    key: EncodingKey,
    issuer: String,
    audience: String,
    ttl: Duration,
}

impl Signer {
    pub fn new(key: &SigningKey, issuer: &str, audience: &str, ttl: Duration) -> Self {
        Self {
            kid: key.kid.clone(),
            key: EncodingKey::from_ed_pem(key.pem.as_bytes())
                .expect("SigningKey holds a valid Ed25519 PEM"),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl,
        }
    }

    /// The same signer, issuing tokens valid for `ttl`.
    pub fn with_ttl(&self, ttl: Duration) -> Self {
        Self {
            ttl,
            kid: self.kid.clone(),
            key: self.key.clone(),
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
        }
    }

    /// A new token for an ordinary `user`; returns the token and its claims (for the jti
    /// and exp).
    pub fn issue(&self, user: Uuid, name: &str) -> (String, Claims) {
        self.issue_with_roles(user, name, &[])
    }

    /// A new token for `user` holding `roles`.
    pub fn issue_with_roles(&self, user: Uuid, name: &str, roles: &[Role]) -> (String, Claims) {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let claims = Claims {
            sub: user,
            name: name.to_owned(),
            jti: Uuid::now_v7(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now,
            exp: now + self.ttl.as_secs() as i64,
            roles: roles.to_vec(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.key)
            .expect("Ed25519 signing does not fail");
        (token, claims)
    }
}
