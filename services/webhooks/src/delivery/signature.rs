//! Signing as the Standard Webhooks specification says (standardwebhooks.com), so that a
//! receiver verifies a delivery with an off-the-shelf library:
//!
//! * the secret is shown to its owner as `whsec_` + base64 of its bytes;
//! * the signed content is `{webhook-id}.{webhook-timestamp}.{body}`, the timestamp in
//!   Unix seconds, the body byte for byte as sent;
//! * `webhook-signature` is `v1,` + base64 of HMAC-SHA256 over that content. Several
//!   signatures are separated by spaces: during a secret rotation's overlap each delivery
//!   carries one per valid secret, so a receiver holding either verifies it.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use sha2::Sha256;

/// The prefix of a secret as shown to its owner.
const PREFIX: &str = "whsec_";
/// Bytes of a new secret (the specification asks for 24 to 64).
const SECRET_BYTES: usize = 32;

/// An endpoint's signing key.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

impl Secret {
    /// A new random secret.
    pub fn generate() -> Self {
        let mut bytes = vec![0; SECRET_BYTES];
        OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// A secret as stored.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// `whsec_…`: the form the owner is shown once, and gives their verifying library.
    pub fn reveal(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// The `v1,` signature of one delivery.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header value: one signature per secret, space-separated.
pub fn header(secrets: &[&Secret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|s| s.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specification's own example (standard-webhooks, spec/standard-webhooks.md).
    #[test]
    fn matches_the_specifications_example() {
        let secret =
            Secret::from_bytes(STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap());
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_are_random_shown_with_their_prefix_and_one_signature_per_secret() {
        let (a, b) = (Secret::generate(), Secret::generate());
        assert_ne!(a, b);
        assert!(a.reveal().starts_with("whsec_"));
        assert_eq!(STANDARD.decode(&a.reveal()[6..]).unwrap(), a.as_bytes());
        let both = header(&[&a, &b], "id", 1, b"{}");
        let parts: Vec<&str> = both.split(' ').collect();
        assert_eq!(parts, [a.sign("id", 1, b"{}"), b.sign("id", 1, b"{}")]);
        assert_eq!(format!("{a:?}"), "Secret(<hidden>)");
    }
}
