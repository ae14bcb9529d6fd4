//! Comment ids.
//!
//! A comment's id is a UUIDv7 minted when the comment is added ([`CommentId::mint`]), so ids
//! order by creation time: MongoDB pages a video's comments by `_id` ranges
//! (`comments::store`). It is stored as its hyphenated text (a string `_id`, not an
//! ObjectId nor a BSON binary) and shown to clients as the same text in a GraphQL `ID`.
//!
//! An `ID` from a client is parsed once, where it arrives ([`CommentId::parse`], BAD_INPUT
//! if it is not one); the store's lookups take only a `CommentId`, so nothing reaches
//! MongoDB as an unchecked string.

use std::fmt;

use async_graphql::ID;
use mongodb::bson::Bson;
use uuid::Uuid;

use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommentId(Uuid);

impl CommentId {
    /// A fresh id: later than every id minted before it by this process, and ordered by
    /// creation time (to the millisecond) across replicas.
    pub fn mint() -> Self {
        Self(Uuid::now_v7())
    }

    /// A comment id argument.
    pub fn parse(id: &ID) -> Result<Self, Error> {
        Uuid::parse_str(id.as_str())
            .map(Self)
            .map_err(|_| Error::bad_input("not a comment id"))
    }

    pub fn as_uuid(self) -> Uuid {
        self.0
    }
}

/// A cursor's id (already decoded from a cursor this service issued).
impl From<Uuid> for CommentId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

/// The stored and shown form (also a GraphQL `ID`, through `Display`): hyphenated, lower case.
impl fmt::Display for CommentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// As `_id` or `parent_id` in a query: the stored text.
impl From<CommentId> for Bson {
    fn from(id: CommentId) -> Self {
        Bson::String(id.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_shows_and_refuses_the_rest() {
        let id = CommentId::mint();
        assert_eq!(CommentId::parse(&ID::from(id)).unwrap(), id);
        assert_eq!(Bson::from(id), Bson::String(id.as_uuid().to_string()));
        for bad in ["", "65f1c0ffee0000000000beef", "not-a-uuid"] {
            assert!(CommentId::parse(&ID(bad.into())).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn later_ids_sort_later_as_text_too() {
        let (a, b) = (CommentId::mint(), CommentId::mint());
        assert!(a < b);
        assert!(a.to_string() < b.to_string());
    }
}
