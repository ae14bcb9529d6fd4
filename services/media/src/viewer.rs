//! Who is asking: the gateway's identity headers, read as every service reads them
//! ([`identity::edge`]: no header is an anonymous viewer, a malformed one is refused).

use axum::http::HeaderMap;
use uuid::Uuid;

use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewer(pub Option<Uuid>);

impl Viewer {
    /// `Err` when the header is present but malformed.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, identity::edge::MalformedIdentity> {
        identity::edge::caller(headers).map(Self)
    }

    /// The signed-in user, or UNAUTHENTICATED.
    pub fn require(self) -> Result<Uuid, Error> {
        self.0.ok_or(Error::Unauthenticated)
    }

    pub fn id(self) -> Option<Uuid> {
        self.0
    }

    pub fn is(self, user: Uuid) -> bool {
        self.0 == Some(user)
    }
}
