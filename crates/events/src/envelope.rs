//! The envelope every Kino event travels in.
//!
//! ```json
//! {"id":"0192…","type":"video.ready","version":1,"occurred_at":"2026-11-21T10:00:00Z","data":{…}}
//! ```
//!
//! `id` is a UUIDv7 chosen by the producer *before* the first publish attempt (and stored in
//! the outbox with the event), so a re-publish after a crash carries the same id and
//! consumers drop it as a duplicate. `version` lets a consumer refuse a shape it does not
//! know instead of misreading it.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use time::OffsetDateTime;
use uuid::Uuid;

/// An event payload type: its routing key on its exchange, and its schema version.
pub trait Event: Serialize + DeserializeOwned {
    /// The exchange it is published to.
    const EXCHANGE: &'static str;
    /// Its routing key and `type`, e.g. `video.ready`.
    const TYPE: &'static str;
    /// Bumped on an incompatible change of the payload.
    const VERSION: u16 = 1;
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Envelope<T> {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u16,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub data: T,
}

impl<T: Event> Envelope<T> {
    /// Wraps `data` with a fresh id and the current time.
    pub fn new(data: T) -> Self {
        Self {
            id: Uuid::now_v7(),
            kind: T::TYPE.to_owned(),
            version: T::VERSION,
            occurred_at: OffsetDateTime::now_utc(),
            data,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal event for the crate's tests.
    #[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
    pub(crate) struct Ping {
        pub n: u32,
    }
    impl Event for Ping {
        const EXCHANGE: &'static str = "test";
        const TYPE: &'static str = "test.ping";
    }

    #[test]
    fn envelope_round_trips_through_json_with_its_type_and_version() {
        let envelope = Envelope::new(Ping { n: 7 });
        let json = serde_json::to_value(&envelope).unwrap();
        assert_eq!(json["type"], "test.ping");
        assert_eq!(json["version"], 1);
        assert_eq!(json["data"]["n"], 7);
        let back: Envelope<Ping> = serde_json::from_value(json).unwrap();
        assert_eq!(back, envelope);
    }

    #[test]
    fn every_envelope_gets_its_own_id() {
        assert_ne!(
            Envelope::new(Ping { n: 1 }).id,
            Envelope::new(Ping { n: 1 }).id
        );
    }
}
