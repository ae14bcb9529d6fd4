//! Who is asking. The gateway's ForwardAuth hop is the only source of identity: it removes
//! any `X-User-Id` a client sent and sets the one auth vouched for. No header means an
//! anonymous viewer; a header that is not a UUID means something is wrong between the
//! gateway and us, and the request is refused rather than treated as anonymous.

use axum::http::HeaderMap;
use uuid::Uuid;

use crate::error::Error;

pub const USER_ID_HEADER: &str = "x-user-id";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewer(pub Option<Uuid>);

impl Viewer {
    /// `Err` when the header is present but malformed.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, String> {
        match headers.get(USER_ID_HEADER) {
            None => Ok(Self(None)),
            Some(value) => value
                .to_str()
                .ok()
                .and_then(|s| Uuid::parse_str(s.trim()).ok())
                .map(|id| Self(Some(id)))
                .ok_or_else(|| format!("malformed {USER_ID_HEADER} header")),
        }
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
