use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The claims of a Kino access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: Uuid,
    /// The username, so the gateway can pass it on without a database read.
    pub name: String,
    /// The token id: what logout puts on the denylist.
    pub jti: Uuid,
    pub iss: String,
    pub aud: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
}
