//! Ed25519 keys: loaded from PKCS#8 PEM, identified by their RFC 7638 JWK thumbprint, and
//! published as a JWKS document so any JWT library can verify Kino's tokens.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, spki::der::pem::LineEnding};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not an Ed25519 PKCS#8 PEM private key: {0}")]
    Pem(String),
    #[error("JWK is not an Ed25519 public key: {0}")]
    Jwk(String),
}

/// A private signing key with its key id.
#[derive(Clone)]
pub struct SigningKey {
    pub(crate) kid: String,
    pub(crate) pem: String,
    pub(crate) public: [u8; 32],
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let key = ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
            .map_err(|e| KeyError::Pem(e.to_string()))?;
        let public = key.verifying_key().to_bytes();
        Ok(Self {
            kid: thumbprint(&public),
            pem: pem.to_owned(),
            public,
        })
    }

    /// A fresh random key (development and tests); returns it with its PEM encoding.
    pub fn generate() -> Self {
        let key = ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng);
        // PKCS#8 v1 (no embedded public key), as `openssl genpkey` writes it: the form
        // every library reads (v2 trips some, e.g. Python's cryptography).
        let bytes = ed25519_dalek::pkcs8::KeypairBytes {
            secret_key: key.to_bytes(),
            public_key: None,
        };
        let pem = bytes
            .to_pkcs8_pem(LineEnding::LF)
            .expect("encode Ed25519 key")
            .to_string();
        Self::from_pem(&pem).expect("a generated key parses")
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The PKCS#8 PEM text (to store a generated development key).
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The public half, as a JWK.
    pub fn jwk(&self) -> Jwk {
        Jwk::ed25519(&self.kid, &self.public)
    }
}

/// RFC 7638 thumbprint of an Ed25519 public key: the `kid`, stable for a given key.
fn thumbprint(public: &[u8; 32]) -> String {
    // Members in lexicographic order, no whitespace, as the RFC requires.
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(public)
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// One public key in JWKS form (RFC 8037 `OKP`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
}

impl Jwk {
    fn ed25519(kid: &str, public: &[u8; 32]) -> Self {
        Self {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: URL_SAFE_NO_PAD.encode(public),
            kid: kid.into(),
            alg: "EdDSA".into(),
            use_: "sig".into(),
        }
    }

    /// The raw public key, checked to be an Ed25519 signing key.
    pub fn public_key(&self) -> Result<[u8; 32], KeyError> {
        if self.kty != "OKP" || self.crv != "Ed25519" {
            return Err(KeyError::Jwk(format!("kty {} crv {}", self.kty, self.crv)));
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(&self.x)
            .map_err(|e| KeyError::Jwk(e.to_string()))?;
        bytes
            .try_into()
            .map_err(|_| KeyError::Jwk("x is not 32 bytes".into()))
    }
}

/// The JWKS document served at `/auth/.well-known/jwks.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_round_trips_through_pem_with_a_stable_kid() {
        let key = SigningKey::generate();
        let again = SigningKey::from_pem(key.pem()).unwrap();
        assert_eq!(key.kid(), again.kid());
        assert_eq!(key.jwk(), again.jwk());
        assert_eq!(key.jwk().public_key().unwrap(), key.public);
    }

    #[test]
    fn different_keys_have_different_kids() {
        assert_ne!(SigningKey::generate().kid(), SigningKey::generate().kid());
    }

    #[test]
    fn garbage_is_not_a_key() {
        assert!(
            SigningKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
                .is_err()
        );
    }

    /// RFC 8037 appendix A.3 gives the thumbprint of its example key.
    #[test]
    fn thumbprint_matches_rfc_8037() {
        let x = URL_SAFE_NO_PAD
            .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
            .unwrap();
        assert_eq!(
            thumbprint(&x.try_into().unwrap()),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }
}
