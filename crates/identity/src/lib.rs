//! Identity shared by the services.
//!
//! * [`Claims`]: what an access token says (`sub`, `name`, `jti`, `iss`, `aud`, `iat`, `exp`);
//! * [`SigningKey`]: an Ed25519 key from PKCS#8 PEM, its `kid` (RFC 7638 thumbprint) and JWK;
//! * [`Signer`]: issues EdDSA access tokens;
//! * [`Verifier`]: checks them with a fixed algorithm allowlist (EdDSA only, so `alg: none`
//!   and algorithm confusion are impossible), `kid` lookup, and required `iss`/`aud`/`exp`;
//! * [`Revocations`]: the Redis denylist of revoked token ids, kept until the token expires;
//! * [`Authenticator`]: all of the above with bounded caches, for hot paths, and the one
//!   freshness rule for revocations ([`Freshness`]);
//! * [`edge`]: the gateway's identity headers and bearer credentials, parsed one way;
//! * [`JwtSettings`]: `JWT_ISSUER`, `JWT_AUDIENCE`, `JWT_LEEWAY_SECS`, read one way;
//! * [`playback`]: signed playback tokens (HMAC), issued by media and checked by video.
//!
//! The auth service issues tokens with it; media verifies WebSocket tokens with it; media
//! and video read the gateway's headers with it.

mod authenticator;
mod claims;
pub mod edge;
mod keys;
pub mod playback;
mod revocation;
mod settings;
mod signer;
mod verifier;

pub use authenticator::{AuthError, Authenticator, Freshness};
pub use claims::{Claims, Role};
pub use keys::{Jwk, Jwks, KeyError, SigningKey};
pub use revocation::Revocations;
pub use settings::JwtSettings;
pub use signer::Signer;
pub use verifier::{Verifier, VerifyError};
