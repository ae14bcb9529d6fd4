//! What media announces about what viewers do that others want to hear of, beyond the
//! ranker's interactions: a comment was posted, a channel got a subscriber. Published on
//! [`MEDIA_EVENTS`] through media's outbox, in the transaction of the write they announce
//! (so one is announced exactly when it happened), under media's `QUEUE_PREFIX`.
//! Consumed by the webhooks service (and, later, notifications).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    Envelope, Event,
    envelope::{DecodeError, RawEnvelope},
    topology::MEDIA_EVENTS,
};

/// The type of a media event, which is also its routing key on [`MEDIA_EVENTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaEventKind {
    CommentAdded,
    SubscriptionAdded,
}

impl MediaEventKind {
    pub const ALL: [Self; 2] = [Self::CommentAdded, Self::SubscriptionAdded];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CommentAdded => "comment.added",
            Self::SubscriptionAdded => "subscription.added",
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

/// A comment (or a reply) was posted on a video.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentAdded {
    pub comment_id: String,
    pub video_id: Uuid,
    /// The video's owner: whose channel the comment is on.
    pub video_owner_id: Uuid,
    pub author_id: Uuid,
    /// The comment replied to, for a reply.
    pub parent_id: Option<String>,
    /// The author of the comment replied to (absent from events published before it was
    /// added).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_author_id: Option<Uuid>,
    pub body: String,
}

impl Event for CommentAdded {
    const EXCHANGE: &'static str = MEDIA_EVENTS;
    const TYPE: &'static str = MediaEventKind::CommentAdded.as_str();
}

/// A user subscribed to a channel (the first time: re-subscribing while subscribed
/// announces nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionAdded {
    pub channel_id: Uuid,
    pub subscriber_id: Uuid,
}

impl Event for SubscriptionAdded {
    const EXCHANGE: &'static str = MEDIA_EVENTS;
    const TYPE: &'static str = MediaEventKind::SubscriptionAdded.as_str();
}

/// A media event of whichever type its envelope says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    CommentAdded(CommentAdded),
    SubscriptionAdded(SubscriptionAdded),
}

impl MediaEvent {
    /// Decodes a delivery's body by its envelope's `type` (see crate::video::VideoEvent).
    pub fn decode(body: &[u8]) -> Result<Envelope<Self>, DecodeError> {
        let raw = RawEnvelope::parse(body)?;
        match MediaEventKind::parse(&raw.kind) {
            Some(MediaEventKind::CommentAdded) => raw.decode_as(Self::CommentAdded),
            Some(MediaEventKind::SubscriptionAdded) => raw.decode_as(Self::SubscriptionAdded),
            None => raw.unknown(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_kinds_decode_by_type_and_route_by_it() {
        let (channel_id, subscriber_id) = (Uuid::now_v7(), Uuid::now_v7());
        let body = serde_json::to_vec(&Envelope::new(SubscriptionAdded {
            channel_id,
            subscriber_id,
        }))
        .unwrap();
        assert_eq!(
            MediaEvent::decode(&body).unwrap().data,
            MediaEvent::SubscriptionAdded(SubscriptionAdded {
                channel_id,
                subscriber_id
            })
        );
        for kind in MediaEventKind::ALL {
            assert_eq!(MediaEventKind::parse(kind.routing_key()), Some(kind));
        }
        let other = serde_json::to_vec(&Envelope::new(crate::user::UserDeleted {
            user_id: channel_id,
        }))
        .unwrap();
        assert!(matches!(
            MediaEvent::decode(&other),
            Err(DecodeError::UnknownType(_))
        ));
    }
}
