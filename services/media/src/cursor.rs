//! Opaque cursors: keyset cursors for Relay connections, and positions in a change history
//! (`commentEvents`' `cursor` and `after`, see [`encode_version`]).
//!
//! A cursor is the sort key of the last item a client saw, base64url-encoded. The next page
//! is "items strictly after this key" in the list's order, so items inserted meanwhile
//! never shift a page (no duplicates, no gaps among what existed), unlike OFFSET. Clients
//! must treat cursors as opaque; a cursor from one list used on another is rejected or
//! simply yields a different slice, never an error from the store.

use async_graphql::{
    OutputType,
    connection::{Connection, CursorType, Edge},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::Error;

/// The sort key: an optional relevance score (search), a timestamp, and an id that breaks
/// ties. Lists order by (score desc, at desc, id desc).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cursor {
    pub score: Option<f64>,
    pub at: OffsetDateTime,
    pub id: Uuid,
}

impl Cursor {
    pub fn new(at: OffsetDateTime, id: Uuid) -> Self {
        Self {
            score: None,
            at,
            id,
        }
    }

    /// Microseconds since the epoch: what PostgreSQL stores.
    pub fn at_micros(&self) -> i64 {
        (self.at.unix_timestamp_nanos() / 1_000) as i64
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid cursor")]
pub struct InvalidCursor;

impl CursorType for Cursor {
    type Error = InvalidCursor;

    fn decode_cursor(s: &str) -> Result<Self, Self::Error> {
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| InvalidCursor)?;
        let (score, rest) = match bytes.len() {
            24 => (None, &bytes[..]),
            32 => {
                let score = f64::from_be_bytes(bytes[..8].try_into().unwrap());
                if !score.is_finite() {
                    return Err(InvalidCursor);
                }
                (Some(score), &bytes[8..])
            }
            _ => return Err(InvalidCursor),
        };
        let micros = i64::from_be_bytes(rest[..8].try_into().unwrap());
        let at = OffsetDateTime::from_unix_timestamp_nanos(micros as i128 * 1_000)
            .map_err(|_| InvalidCursor)?;
        let id = Uuid::from_slice(&rest[8..]).map_err(|_| InvalidCursor)?;
        Ok(Self { score, at, id })
    }

    fn encode_cursor(&self) -> String {
        let mut bytes = Vec::with_capacity(32);
        if let Some(score) = self.score {
            bytes.extend_from_slice(&score.to_be_bytes());
        }
        bytes.extend_from_slice(&self.at_micros().to_be_bytes());
        bytes.extend_from_slice(self.id.as_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }
}

/// One page request: `first` items after `after`, both checked.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub first: usize,
    pub after: Option<Cursor>,
}

impl Page {
    pub const DEFAULT_SIZE: usize = 20;

    /// Parses the connection arguments; `max` is the configured page cap.
    pub fn parse(first: Option<i32>, after: Option<String>, max: usize) -> Result<Self, Error> {
        let first = match first {
            None => Self::DEFAULT_SIZE.min(max),
            Some(n) if n >= 1 && n as usize <= max => n as usize,
            Some(_) => {
                return Err(Error::bad_input(format!(
                    "`first` must be between 1 and {max}"
                )));
            }
        };
        let after = after
            .map(|s| Cursor::decode_cursor(&s))
            .transpose()
            .map_err(|_| Error::bad_input("invalid cursor in `after`"))?;
        Ok(Self { first, after })
    }

    /// What to ask the store for: one more than the page, to learn whether there is a next.
    pub fn limit(&self) -> i64 {
        self.first as i64 + 1
    }

    /// Builds the connection from up to `limit()` items in list order.
    pub fn connection<T: OutputType>(
        &self,
        mut items: Vec<T>,
        key: impl Fn(&T) -> Cursor,
    ) -> Connection<Cursor, T> {
        let has_next = items.len() > self.first;
        items.truncate(self.first);
        let mut connection = Connection::new(self.after.is_some(), has_next);
        connection
            .edges
            .extend(items.into_iter().map(|item| Edge::new(key(&item), item)));
        connection
    }
}

/// A position in a change history: the change's version (a UUIDv7, so versions order in
/// time), base64url. `commentEvents` hands it out as `cursor`; resuming `after` it replays
/// every change with a newer version.
pub fn encode_version(version: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(version.as_bytes())
}

/// The version in a cursor made by [`encode_version`]; anything else is bad input.
pub fn decode_version(cursor: &str) -> Result<Uuid, Error> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| Uuid::from_slice(&b).ok())
        .ok_or_else(|| Error::bad_input("invalid cursor"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_cursors_round_trip_and_garbage_is_refused() {
        let v = Uuid::now_v7();
        assert_eq!(decode_version(&encode_version(v)).unwrap(), v);
        assert!(decode_version("nope").is_err());
        assert!(decode_version("").is_err());
    }

    #[test]
    fn versions_order_as_strings_as_they_do_in_time() {
        let a = Uuid::now_v7();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = Uuid::now_v7();
        assert!(a.to_string() < b.to_string());
    }

    #[test]
    fn cursors_round_trip_with_and_without_a_score() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_000).unwrap();
        for score in [None, Some(0.25), Some(-3.5)] {
            let cursor = Cursor {
                score,
                at,
                id: Uuid::now_v7(),
            };
            let decoded = Cursor::decode_cursor(&cursor.encode_cursor()).unwrap();
            assert_eq!(decoded, cursor);
        }
    }

    #[test]
    fn garbage_is_rejected() {
        for bad in ["", "abc", "!!!!", &"A".repeat(100)] {
            assert!(Cursor::decode_cursor(bad).is_err(), "{bad}");
        }
        let nan = [f64::NAN.to_be_bytes().to_vec(), vec![0; 24]].concat();
        assert!(Cursor::decode_cursor(&URL_SAFE_NO_PAD.encode(nan)).is_err());
    }
}
