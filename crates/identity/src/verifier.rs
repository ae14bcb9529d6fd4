use std::{collections::HashMap, time::Duration};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};

use crate::{Claims, Jwks, SigningKey};

/// Why a token was refused. Callers answer all of them with 401; the variant is for logs
/// and metrics, never for the client (which learns nothing about which check failed).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("malformed token")]
    Malformed,
    #[error("algorithm not allowed")]
    Algorithm,
    #[error("unknown key id")]
    UnknownKey,
    #[error("bad signature")]
    Signature,
    #[error("expired")]
    Expired,
    #[error("wrong issuer or audience")]
    Audience,
    #[error("revoked")]
    Revoked,
}

/// Verifies access tokens against a set of public keys by `kid`.
#[derive(Clone)]
pub struct Verifier {
    keys: HashMap<String, DecodingKey>,
    validation: Validation,
}

impl Verifier {
    /// `leeway` tolerates clock skew on `exp` (keep it small: seconds).
    pub fn new(
        jwks: &Jwks,
        issuer: &str,
        audience: &str,
        leeway: Duration,
    ) -> Result<Self, crate::KeyError> {
        let mut keys = HashMap::new();
        for jwk in &jwks.keys {
            let public = jwk.public_key()?;
            keys.insert(jwk.kid.clone(), DecodingKey::from_ed_der(&public));
        }
        // The allowlist is EdDSA alone: `none` and HMAC-with-the-public-key tricks fail here.
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = leeway.as_secs();
        validation.validate_exp = true;
        Ok(Self { keys, validation })
    }

    /// A verifier for the tokens `key` signs (plus any older keys in `also`).
    pub fn for_keys<'a>(
        keys: impl IntoIterator<Item = &'a SigningKey>,
        issuer: &str,
        audience: &str,
        leeway: Duration,
    ) -> Self {
        let jwks = Jwks {
            keys: keys.into_iter().map(SigningKey::jwk).collect(),
        };
        Self::new(&jwks, issuer, audience, leeway).expect("our own keys are valid")
    }

    /// Checks signature, algorithm, key id, expiry, issuer and audience. Revocation is a
    /// separate, asynchronous check ([`crate::Revocations`]).
    pub fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(VerifyError::Algorithm);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.get(kid))
            .ok_or(VerifyError::UnknownKey)?;
        jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => VerifyError::Expired,
                ErrorKind::InvalidSignature => VerifyError::Signature,
                ErrorKind::InvalidAlgorithm => VerifyError::Algorithm,
                ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => VerifyError::Audience,
                _ => VerifyError::Malformed,
            })
    }
}

#[cfg(test)]
mod tests {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

    use super::*;
    use crate::Signer;

    const ISS: &str = "kino-auth";
    const AUD: &str = "kino";

    fn setup() -> (SigningKey, Signer, Verifier) {
        let key = SigningKey::generate();
        let signer = Signer::new(&key, ISS, AUD, Duration::from_secs(900));
        let verifier = Verifier::for_keys([&key], ISS, AUD, Duration::from_secs(5));
        (key, signer, verifier)
    }

    fn reencode(
        token: &str,
        header: serde_json::Value,
        claims: Option<serde_json::Value>,
    ) -> String {
        let parts: Vec<&str> = token.split('.').collect();
        let claims = claims.map_or_else(
            || parts[1].to_owned(),
            |c| URL_SAFE_NO_PAD.encode(c.to_string()),
        );
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            claims,
            parts[2]
        )
    }

    #[test]
    fn a_fresh_token_verifies_to_its_claims() {
        let (_, signer, verifier) = setup();
        let user = uuid::Uuid::now_v7();
        let (token, claims) = signer.issue(user, "ada");
        let verified = verifier.verify(&token).unwrap();
        assert_eq!(verified, claims);
        assert_eq!(verified.sub, user);
        assert_eq!(verified.exp - verified.iat, 900);
    }

    #[test]
    fn alg_none_is_refused() {
        let (key, signer, verifier) = setup();
        let (token, _) = signer.issue(uuid::Uuid::now_v7(), "ada");
        let none = reencode(
            &token,
            serde_json::json!({"alg": "none", "kid": key.kid()}),
            None,
        );
        let unsigned = format!("{}.", none.rsplit_once('.').unwrap().0);
        assert!(verifier.verify(&unsigned).is_err());
        let hs = reencode(
            &token,
            serde_json::json!({"alg": "HS256", "kid": key.kid()}),
            None,
        );
        assert_eq!(verifier.verify(&hs), Err(VerifyError::Algorithm));
    }

    #[test]
    fn tampered_claims_break_the_signature() {
        let (key, signer, verifier) = setup();
        let (token, claims) = signer.issue(uuid::Uuid::now_v7(), "ada");
        let mut forged = serde_json::to_value(&claims).unwrap();
        forged["name"] = "admin".into();
        let tampered = reencode(
            &token,
            serde_json::json!({"alg": "EdDSA", "kid": key.kid(), "typ": "JWT"}),
            Some(forged),
        );
        assert_eq!(verifier.verify(&tampered), Err(VerifyError::Signature));
    }

    #[test]
    fn unknown_kid_and_foreign_keys_are_refused() {
        let (_, _, verifier) = setup();
        let other = SigningKey::generate();
        let (token, _) = Signer::new(&other, ISS, AUD, Duration::from_secs(60))
            .issue(uuid::Uuid::now_v7(), "eve");
        assert_eq!(verifier.verify(&token), Err(VerifyError::UnknownKey));
    }

    #[test]
    fn expired_tokens_are_refused_beyond_the_leeway() {
        let key = SigningKey::generate();
        let verifier = Verifier::for_keys([&key], ISS, AUD, Duration::from_secs(5));
        let signer = Signer::new(&key, ISS, AUD, Duration::ZERO);
        let (token, _) = signer.issue(uuid::Uuid::now_v7(), "ada");
        assert!(verifier.verify(&token).is_ok(), "within the leeway");
        let strict = Verifier::for_keys([&key], ISS, AUD, Duration::ZERO);
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(strict.verify(&token), Err(VerifyError::Expired));
    }

    #[test]
    fn wrong_audience_or_issuer_is_refused() {
        let key = SigningKey::generate();
        let verifier = Verifier::for_keys([&key], ISS, AUD, Duration::from_secs(5));
        let (token, _) = Signer::new(&key, ISS, "someone-else", Duration::from_secs(60))
            .issue(uuid::Uuid::now_v7(), "a");
        assert_eq!(verifier.verify(&token), Err(VerifyError::Audience));
        let (token, _) = Signer::new(&key, "evil", AUD, Duration::from_secs(60))
            .issue(uuid::Uuid::now_v7(), "a");
        assert_eq!(verifier.verify(&token), Err(VerifyError::Audience));
    }

    #[test]
    fn garbage_is_malformed() {
        let (_, _, verifier) = setup();
        assert_eq!(verifier.verify("not.a.jwt"), Err(VerifyError::Malformed));
        assert_eq!(verifier.verify(""), Err(VerifyError::Malformed));
    }
}
