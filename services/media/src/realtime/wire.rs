//! What travels through the hub: the [`Event`]s, as JSON inside the envelope every hub
//! channel carries ([`Wire`], from `events::trending`, since the ranker publishes into the
//! hub too).
//!
//! On Redis a message is `{"at": micros, "event": {"type": "comment" | "progress" |
//! "stats" | "trending_moved", …}}`. The types here are the wire format only: no GraphQL
//! (the subscriptions render them, see [`super::subscriptions`]) and no state of the hub.
//!
//! Invariants:
//! * one channel carries one kind of event (and the per-video channels, `comments:` and
//!   `stats:`, also carry `access_changed`, see [`super::access`]), but decoding never
//!   depends on the channel's name: the `type` tag says which;
//! * every variant of `events::trending::Announcement` is a variant here with the same tag
//!   (a test decodes the ranker's announcement), so a service publishing through that
//!   contract is always understood.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use events::trending::Wire;

pub use super::access::AccessChange;
use crate::{catalogue::VideoRow, comments::store::CommentDoc};

/// The hub channel every replica's signed-in connections watch for [`Event::SessionEnded`]:
/// one channel, so a replica holds one Redis subscription for it however many users are
/// connected (bans are rare; each connection ignores the others' endings).
pub const SESSIONS_CHANNEL: &str = "sessions";

/// Every kind of event that travels through the hub. A new kind of live update is a new
/// variant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Comment(CommentChange),
    Progress(ProgressUpdate),
    Stats(StatsUpdate),
    /// Who may see a video changed (made private, deleted): its subscribers ask the
    /// catalogue again and end if their viewer may no longer see it ([`super::access`]).
    AccessChanged(AccessChange),
    /// The ranker changed the trending sets (`events::trending::Announcement`, published by
    /// the ranker): re-read the top lists.
    TrendingMoved,
    /// A notification was written for the channel's user (crate::notifications).
    Notification(crate::notifications::NotificationRow),
    /// The user was banned: every connection of theirs closes, on every replica (on the
    /// one [`SESSIONS_CHANNEL`]).
    SessionEnded {
        user_id: Uuid,
    },
    /// Never published: the hub's own signal that messages may have been lost (its Redis
    /// connection broke and came back).
    #[serde(skip)]
    Gap,
}

/// What happened to a comment.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Edited,
    Deleted,
}

/// A comment as it is after the change (its `version` is the change's position).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommentChange {
    pub kind: ChangeKind,
    pub comment: CommentDoc,
}

/// Transcoding progress of one video (from `video.progress`), or its end (`ready`,
/// `failed`, from `video.ready`/`video.failed`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProgressUpdate {
    pub video_id: Uuid,
    pub owner_id: Uuid,
    pub stage: String,
    pub percent: f64,
    pub speed: Option<f64>,
    pub eta_seconds: Option<f64>,
    pub failure_reason: Option<String>,
}

impl ProgressUpdate {
    /// Nothing follows `ready` or `failed`.
    pub fn is_final(&self) -> bool {
        matches!(self.stage.as_str(), "ready" | "failed")
    }
}

/// A video's counters.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatsUpdate {
    pub video_id: Uuid,
    pub likes: i64,
    pub views: i64,
    pub comments: i64,
}

impl From<&VideoRow> for StatsUpdate {
    fn from(row: &VideoRow) -> Self {
        Self {
            video_id: row.id,
            likes: row.likes_count,
            views: row.views_count,
            comments: row.comments_count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_survive_the_wire() {
        let event = Event::Stats(StatsUpdate {
            video_id: Uuid::now_v7(),
            likes: 3,
            views: 2,
            comments: 1,
        });
        let json = serde_json::to_vec(&Wire {
            at: 5,
            event: &event,
        })
        .unwrap();
        let back: Wire<Event> = serde_json::from_slice(&json).unwrap();
        assert_eq!(back.at, 5);
        assert!(matches!(back.event, Event::Stats(s) if s.likes == 3));
    }

    #[test]
    fn the_rankers_announcement_is_understood() {
        let message = events::trending::trending_moved_message(9);
        let back: Wire<Event> = serde_json::from_str(&message).unwrap();
        assert_eq!(back.at, 9);
        assert!(matches!(back.event, Event::TrendingMoved));
        // And the other way round: what media would publish, the contract decodes.
        let ours = serde_json::to_string(&Wire {
            at: 9,
            event: Event::TrendingMoved,
        })
        .unwrap();
        assert_eq!(ours, message);
    }
}
