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
    /// What the user may do beyond their own things (absent: an ordinary user).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Role>,
}

impl Claims {
    /// Moderators and admins may act on others' content.
    pub fn may_moderate(&self) -> bool {
        self.roles
            .iter()
            .any(|r| matches!(r, Role::Moderator | Role::Admin))
    }
}

/// A role granted to a user. Every account is a user; these are given by an admin (or,
/// for the first admin, by the `auth grant-admin` command), never taken by a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Works the report queue: hides videos, deletes comments, bans users.
    Moderator,
    /// Grants and revokes moderator; reads the audit log. Moderates too.
    Admin,
}

impl Role {
    pub const ALL: [Self; 2] = [Self::Moderator, Self::Admin];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Moderator => "moderator",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}
