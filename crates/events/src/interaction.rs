//! What viewers do with videos, published by media on [`INTERACTIONS`] and consumed by the
//! ranker (scores, view counters) and its archive, and by the recommender (tastes); and
//! the view counters the ranker reports back to media. (What the ranker writes for media
//! to read, the trending sets and their announcements, is [`crate::trending`].)
//!
//! Routing: an interaction goes out with the routing key `{QUEUE_PREFIX}interaction.{action}`
//! (e.g. `interaction.view`), and the ranker's queues bind `{QUEUE_PREFIX}interaction.#`.
//! The prefix is empty in production; tests and benchmarks give each stack its own, so
//! stacks sharing one broker never see each other's interactions.
//!
//! The event carries what scoring needs about the video (its owner = the channel scope,
//! its category), so the ranker never reads the catalogue.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Event, topology::INTERACTIONS};

/// One interaction. Envelope `type` is always `interaction`; [`Action`] says which.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interaction {
    pub video_id: Uuid,
    /// The video's uploader (the channel scope).
    pub owner_id: Uuid,
    /// The video's category, if it has one (the category scope).
    #[serde(default)]
    pub category: Option<String>,
    /// Who did it. Views are deduplicated per viewer.
    pub viewer: ViewerKey,
    #[serde(flatten)]
    pub action: Action,
}

/// What was done. Retractions carry the time of what they retract, so the ranker removes
/// exactly the contribution the original made (like/unlike cycles add nothing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    View,
    Like,
    Unlike {
        #[serde(with = "time::serde::rfc3339")]
        liked_at: OffsetDateTime,
    },
    Comment,
    Uncomment {
        #[serde(with = "time::serde::rfc3339")]
        commented_at: OffsetDateTime,
    },
    Share,
    /// Seconds watched since the player's previous report.
    Watch {
        seconds: u32,
    },
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Self::View => "view",
            Self::Like => "like",
            Self::Unlike { .. } => "unlike",
            Self::Comment => "comment",
            Self::Uncomment { .. } => "uncomment",
            Self::Share => "share",
            Self::Watch { .. } => "watch",
        }
    }
}

impl Event for Interaction {
    const EXCHANGE: &'static str = INTERACTIONS;
    const TYPE: &'static str = "interaction";
}

impl Interaction {
    /// The routing key under `prefix` (`QUEUE_PREFIX`).
    pub fn routing_key(&self, prefix: &str) -> String {
        format!("{prefix}interaction.{}", self.action.name())
    }
}

/// The binding pattern of every queue that wants all interactions under `prefix`.
pub fn binding(prefix: &str) -> String {
    format!("{prefix}interaction.#")
}

/// Who interacted, as the ranker deduplicates views and the recommender learns tastes:
/// `user:{uuid}` for a signed-in viewer, `session:{id}` for an anonymous one (on the wire,
/// that string).
///
/// Invariant: the key is `user:` or `session:` followed by at least one character; it is
/// checked once, when the key is made or decoded, and kept as it came, because the ranker
/// stores it in its dedupe keys and must see the same viewer as the same bytes. Media
/// makes keys with [`ViewerKey::user`] (a UUID) and [`ViewerKey::session`] (an id it has
/// validated); [`ViewerKey::user_id`] reads the UUID back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ViewerKey(String);

const USER: &str = "user:";
const SESSION: &str = "session:";

#[derive(Debug, thiserror::Error)]
#[error("a viewer key is `user:{{uuid}}` or `session:{{id}}`, not {0:?}")]
pub struct InvalidViewerKey(String);

impl ViewerKey {
    /// The key of a signed-in user.
    pub fn user(user: Uuid) -> Self {
        Self(format!("{USER}{user}"))
    }

    /// The key of an anonymous session (`session` is not empty).
    pub fn session(session: &str) -> Self {
        debug_assert!(!session.is_empty(), "a session id is not empty");
        Self(format!("{SESSION}{session}"))
    }

    /// The signed-in user, if this is one (and its id a UUID).
    pub fn user_id(&self) -> Option<Uuid> {
        self.0
            .strip_prefix(USER)
            .and_then(|id| Uuid::parse_str(id).ok())
    }

    /// The key as it travels (`user:…` or `session:…`).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for ViewerKey {
    type Err = InvalidViewerKey;

    fn from_str(key: &str) -> Result<Self, Self::Err> {
        key.to_owned().try_into()
    }
}

impl TryFrom<String> for ViewerKey {
    type Error = InvalidViewerKey;

    fn try_from(key: String) -> Result<Self, Self::Error> {
        let id = key.strip_prefix(USER).or_else(|| key.strip_prefix(SESSION));
        match id {
            Some(id) if !id.is_empty() => Ok(Self(key)),
            _ => Err(InvalidViewerKey(key)),
        }
    }
}

impl std::fmt::Display for ViewerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for ViewerKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ViewerKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .try_into()
            .map_err(serde::de::Error::custom)
    }
}

/// Views and watch time the ranker accepted since its previous report, per video:
/// published by the ranker (routing key `{prefix}counters`), applied by media to the
/// catalogue's counters exactly once (by event id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewCounters {
    pub videos: Vec<VideoCounts>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoCounts {
    pub video_id: Uuid,
    pub views: i64,
    pub watch_seconds: i64,
}

impl Event for ViewCounters {
    const EXCHANGE: &'static str = INTERACTIONS;
    const TYPE: &'static str = "counters";
}

/// The routing key of [`ViewCounters`] under `prefix`.
pub fn counters_routing_key(prefix: &str) -> String {
    format!("{prefix}counters")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_flatten_into_the_payload() {
        let event = Interaction {
            video_id: Uuid::nil(),
            owner_id: Uuid::nil(),
            category: Some("music".into()),
            viewer: ViewerKey::session("abc"),
            action: Action::Watch { seconds: 25 },
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["action"], "watch");
        assert_eq!(json["seconds"], 25);
        assert_eq!(json["viewer"], "session:abc");
        let back: Interaction = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
        assert_eq!(event.routing_key("t."), "t.interaction.watch");
    }

    #[test]
    fn viewer_keys_keep_their_wire_format_and_refuse_others() {
        let user = Uuid::now_v7();
        let key = ViewerKey::user(user);
        assert_eq!(key.as_str(), format!("user:{user}"));
        assert_eq!(key.user_id(), Some(user));
        assert_eq!(serde_json::to_value(&key).unwrap(), format!("user:{user}"));
        let back: ViewerKey = serde_json::from_value(format!("user:{user}").into()).unwrap();
        assert_eq!(back, key);
        assert_eq!(ViewerKey::session("abc").to_string(), "session:abc");
        assert_eq!(ViewerKey::session("abc").user_id(), None);
        for bad in ["", "user:", "session:", "abc", "guest:1"] {
            assert!(bad.parse::<ViewerKey>().is_err(), "{bad}");
        }
    }
}
