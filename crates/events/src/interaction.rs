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
    /// Who did it: `user:{uuid}` for a signed-in viewer, `session:{id}` for an anonymous
    /// one. Views are deduplicated per viewer.
    pub viewer: String,
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

/// The viewer key of a signed-in user.
pub fn user_viewer(user: Uuid) -> String {
    format!("user:{user}")
}

/// The viewer key of an anonymous session.
pub fn session_viewer(session: &str) -> String {
    format!("session:{session}")
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

// The ranker's output (trending sets and their announcements) is crate::trending. These
// names stay here for callers not yet moved to it (the ranker's store).
pub use crate::trending::{t0_key, trending_moved_channel, trending_moved_message};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_flatten_into_the_payload() {
        let event = Interaction {
            video_id: Uuid::nil(),
            owner_id: Uuid::nil(),
            category: Some("music".into()),
            viewer: session_viewer("abc"),
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
}
