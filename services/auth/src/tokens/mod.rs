//! Sessions: login, refresh-token rotation with reuse detection, logout; and the `Viewer`
//! request guard that authenticates a bearer access token.

pub mod client_ip;
pub mod prune;
mod refresh;
pub(crate) mod routes;
pub mod throttle;
pub mod viewer;

/// Opaque 256-bit secrets and their stored form (refresh tokens; the mailed links' tokens).
pub(crate) use refresh::{generate as new_secret, hash as secret_hash};
pub use refresh::{live_access_tokens, revoke_families};
pub use routes::{TokenPair, routes};
pub use viewer::Viewer;
