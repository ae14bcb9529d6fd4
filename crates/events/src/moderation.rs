//! Moderators' decisions that other services enforce, published by media (where the
//! moderation queue and its audit log live) on [`MEDIA_EVENTS`] through media's outbox,
//! in the transaction that records the decision, so each is announced exactly when it was
//! taken.
//!
//! * [`VideoModerated`]: a video was hidden or unhidden. The video service stops (or
//!   resumes) serving its HLS tree, poster and captions.
//! * [`UserModerated`]: a user was banned or unbanned. Auth refuses the account's logins
//!   and kills its tokens; the video service stops serving the account's videos; media
//!   hides the account's comments and closes its live connections.
//!
//! Both carry a `revision` that grows with every decision about the same video or user:
//! a consumer keeps the state of the highest revision it has seen, so a redelivered or
//! reordered pair (ban, unban) ends in the state of the last decision, never the first.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    Envelope, Event,
    envelope::{DecodeError, RawEnvelope},
    topology::MEDIA_EVENTS,
};

/// The type of a moderation event, which is also its routing key on [`MEDIA_EVENTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModerationEventKind {
    Video,
    User,
}

impl ModerationEventKind {
    pub const ALL: [Self; 2] = [Self::Video, Self::User];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Video => "moderation.video",
            Self::User => "moderation.user",
        }
    }

    /// The routing key it is published with on [`MEDIA_EVENTS`] (its type), to bind to.
    pub const fn routing_key(self) -> &'static str {
        self.as_str()
    }

    pub fn parse(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }
}

/// A moderator hid a video (`hidden`), or made it visible again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoModerated {
    pub video_id: Uuid,
    pub owner_id: Uuid,
    pub hidden: bool,
    /// Grows with every decision about this video.
    pub revision: i64,
}

impl Event for VideoModerated {
    const EXCHANGE: &'static str = MEDIA_EVENTS;
    const TYPE: &'static str = ModerationEventKind::Video.as_str();
}

/// A moderator banned a user (`banned`), or lifted the ban.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserModerated {
    pub user_id: Uuid,
    pub banned: bool,
    /// Grows with every decision about this user.
    pub revision: i64,
}

impl Event for UserModerated {
    const EXCHANGE: &'static str = MEDIA_EVENTS;
    const TYPE: &'static str = ModerationEventKind::User.as_str();
}

/// A moderation event of whichever type its envelope says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModerationEvent {
    Video(VideoModerated),
    User(UserModerated),
}

impl ModerationEvent {
    /// Decodes a delivery's body by its envelope's `type` (see crate::video::VideoEvent).
    pub fn decode(body: &[u8]) -> Result<Envelope<Self>, DecodeError> {
        let raw = RawEnvelope::parse(body)?;
        match ModerationEventKind::parse(&raw.kind) {
            Some(ModerationEventKind::Video) => raw.decode_as(Self::Video),
            Some(ModerationEventKind::User) => raw.decode_as(Self::User),
            None => raw.unknown(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_kinds_decode_by_type_and_route_by_it() {
        let user_id = Uuid::now_v7();
        let event = UserModerated {
            user_id,
            banned: true,
            revision: 3,
        };
        let body = serde_json::to_vec(&Envelope::new(event.clone())).unwrap();
        assert_eq!(
            ModerationEvent::decode(&body).unwrap().data,
            ModerationEvent::User(event)
        );
        for kind in ModerationEventKind::ALL {
            assert_eq!(ModerationEventKind::parse(kind.routing_key()), Some(kind));
        }
        let other =
            serde_json::to_vec(&Envelope::new(crate::user::UserDeleted { user_id })).unwrap();
        assert!(ModerationEvent::decode(&other).is_err());
    }
}
