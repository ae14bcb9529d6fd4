//! The envelope every Kino event travels in.
//!
//! ```json
//! {"id":"0192…","type":"video.ready","version":1,"occurred_at":"2026-11-21T10:00:00Z","data":{…}}
//! ```
//!
//! `id` is a UUIDv7 chosen by the producer *before* the first publish attempt (and stored in
//! the outbox with the event), so a re-publish after a crash carries the same id and
//! consumers drop it as a duplicate. `version` lets a consumer refuse a shape it does not
//! know instead of misreading it: every decode here ([`Envelope::decode`], and through it
//! crate::consumer::decode and crate::pack) refuses an envelope whose `version` is newer
//! than its type's [`Event::VERSION`] ([`DecodeError::NewerVersion`]), and consumers reject
//! it (crate::consumer::Outcome::undecodable). Older versions are accepted: a payload type
//! stays able to read what it used to be (new fields get defaults) until no producer sends
//! the old shape.
//!
//! A consumer of several event types decodes once into an enum of them (crate::video::VideoEvent,
//! crate::user::UserEvent), chosen by the envelope's `type`, never by the routing key (which
//! is the queue's name when tests or replays deliver straight to a queue).

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::value::RawValue;
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

/// Why a message body is not an event a consumer can apply.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("undecodable event: {0}")]
    Malformed(#[from] serde_json::Error),
    /// Made by a newer producer: misreading it could do harm, so it is refused.
    #[error("{kind} version {version} is newer than the version {known} known here")]
    NewerVersion {
        kind: String,
        version: u16,
        known: u16,
    },
    /// A `type` outside the set a consumer decodes (crate::video::VideoEvent…).
    #[error("event type {0:?} is not one this consumer knows")]
    UnknownType(String),
}

/// What a consumer decodes an envelope's `data` as. An [`Event`] knows the newest version
/// it understands; raw JSON (the ranker's archive keeps whatever came) knows none and
/// takes any.
pub trait Payload: DeserializeOwned {
    const KNOWN_VERSION: Option<u16>;
}

impl<T: Event> Payload for T {
    const KNOWN_VERSION: Option<u16> = Some(T::VERSION);
}

impl Payload for serde_json::Value {
    const KNOWN_VERSION: Option<u16> = None;
}

fn check_version(kind: &str, version: u16, known: Option<u16>) -> Result<(), DecodeError> {
    match known {
        Some(known) if version > known => Err(DecodeError::NewerVersion {
            kind: kind.to_owned(),
            version,
            known,
        }),
        _ => Ok(()),
    }
}

impl<T: Payload> Envelope<T> {
    /// Decodes one envelope, refusing a version newer than `T` knows.
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        /// What is read of an envelope that did not decode, to tell why.
        #[derive(Deserialize)]
        struct Head {
            #[serde(rename = "type")]
            kind: String,
            version: u16,
        }
        match serde_json::from_slice::<Self>(body) {
            Ok(envelope) => {
                check_version(&envelope.kind, envelope.version, T::KNOWN_VERSION)?;
                Ok(envelope)
            }
            // A newer shape often fails to decode as the old one: say so.
            Err(e) => match serde_json::from_slice::<Head>(body) {
                Ok(head) => {
                    check_version(&head.kind, head.version, T::KNOWN_VERSION)?;
                    Err(e.into())
                }
                Err(_) => Err(e.into()),
            },
        }
    }
}

/// An envelope whose `data` is not decoded yet: the body is read once, then its data is
/// decoded as the type its `type` names ([`RawEnvelope::decode_as`]).
pub type RawEnvelope = Envelope<Box<RawValue>>;

impl RawEnvelope {
    pub fn parse(body: &[u8]) -> Result<Self, DecodeError> {
        Ok(serde_json::from_slice(body)?)
    }

    /// The envelope with its data decoded as `T` (refused if newer than `T` knows) and
    /// wrapped by `variant` (an enum variant of the consumer's event set).
    pub fn decode_as<T: Event, U>(
        self,
        variant: impl FnOnce(T) -> U,
    ) -> Result<Envelope<U>, DecodeError> {
        check_version(&self.kind, self.version, Some(T::VERSION))?;
        let data = serde_json::from_str(self.data.get())?;
        Ok(Envelope {
            id: self.id,
            kind: self.kind,
            version: self.version,
            occurred_at: self.occurred_at,
            data: variant(data),
        })
    }

    /// Refuses this envelope as outside the consumer's set.
    pub fn unknown<U>(self) -> Result<Envelope<U>, DecodeError> {
        Err(DecodeError::UnknownType(self.kind))
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

    /// Ping as a newer producer would send it: version 2, another shape.
    fn ping_v2(data: serde_json::Value) -> Vec<u8> {
        let mut json = serde_json::to_value(Envelope::new(Ping { n: 1 })).unwrap();
        json["version"] = 2.into();
        json["data"] = data;
        serde_json::to_vec(&json).unwrap()
    }

    #[test]
    fn an_envelope_newer_than_its_type_is_refused_whether_or_not_its_data_decodes() {
        for data in [
            serde_json::json!({"n": 1}),
            serde_json::json!({"count": "1"}),
        ] {
            let body = ping_v2(data);
            assert!(matches!(
                Envelope::<Ping>::decode(&body),
                Err(DecodeError::NewerVersion {
                    version: 2,
                    known: 1,
                    ..
                })
            ));
            let raw = RawEnvelope::parse(&body).unwrap();
            assert!(matches!(
                raw.decode_as::<Ping, _>(|p| p),
                Err(DecodeError::NewerVersion { .. })
            ));
            // Raw JSON takes any version (the archive).
            assert!(Envelope::<serde_json::Value>::decode(&body).is_ok());
        }
    }

    #[test]
    fn an_envelope_of_a_known_or_older_version_decodes() {
        let envelope = Envelope::new(Ping { n: 3 });
        let body = serde_json::to_vec(&envelope).unwrap();
        assert_eq!(Envelope::<Ping>::decode(&body).unwrap(), envelope);
        let mut json = serde_json::to_value(&envelope).unwrap();
        json["version"] = 0.into();
        let body = serde_json::to_vec(&json).unwrap();
        assert_eq!(Envelope::<Ping>::decode(&body).unwrap().data, Ping { n: 3 });
        let raw = RawEnvelope::parse(&body).unwrap();
        assert_eq!(raw.decode_as(|p: Ping| p.n).unwrap().data, 3);
    }

    #[test]
    fn a_body_that_is_no_envelope_is_malformed() {
        assert!(matches!(
            Envelope::<Ping>::decode(b"{\"id\": 1}"),
            Err(DecodeError::Malformed(_))
        ));
    }
}
