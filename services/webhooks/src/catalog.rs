//! The events a webhook can carry, and what each one's body says: Kino's public contract
//! with receivers.
//!
//! The internal events (crates/events) are made for Kino's own consumers and change with
//! them (S3 keys, playlist paths); a receiver sees only what is listed here, built from
//! them field by field, so an internal change never breaks a receiver by accident.
//!
//! Every body has the Standard Webhooks shape:
//!
//! ```json
//! {"type":"video.ready","timestamp":"2026-12-06T10:00:00.123Z","data":{…}}
//! ```
//!
//! `timestamp` is when the event happened (not when it was sent; retries keep it), and
//! the delivery's `webhook-id` is the event's id, so a receiver deduplicates by it.

use events::{
    envelope::{DecodeError, RawEnvelope},
    media::MediaEvent,
    user::UserEvent,
    video::VideoEvent,
};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

/// The event types an endpoint can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// An upload finished; transcoding starts.
    VideoUploaded,
    /// Transcoding finished: the video plays.
    VideoReady,
    /// Transcoding gave up.
    VideoFailed,
    /// The video was deleted (by its owner, or with their account).
    VideoDeleted,
    /// An account was deleted (platform endpoints only: the account's own endpoints go
    /// with it).
    UserDeleted,
    /// A comment or reply was posted on one of the channel's videos.
    CommentAdded,
    /// The channel got a new subscriber.
    SubscriptionAdded,
}

impl EventType {
    pub const ALL: [Self; 7] = [
        Self::VideoUploaded,
        Self::VideoReady,
        Self::VideoFailed,
        Self::VideoDeleted,
        Self::UserDeleted,
        Self::CommentAdded,
        Self::SubscriptionAdded,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::VideoUploaded => "video.uploaded",
            Self::VideoReady => "video.ready",
            Self::VideoFailed => "video.failed",
            Self::VideoDeleted => "video.deleted",
            Self::UserDeleted => "user.deleted",
            Self::CommentAdded => "comment.added",
            Self::SubscriptionAdded => "subscription.added",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The comma-separated list of every type, for error messages.
    pub fn list() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }
}

/// One event as receivers get it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The event's id: `webhook-id`, the same on every attempt, replay and endpoint.
    pub id: Uuid,
    pub event_type: EventType,
    pub occurred_at: OffsetDateTime,
    /// Whose channel it belongs to: channel-scoped endpoints of this user get it.
    /// `None`: platform endpoints only.
    pub channel: Option<Uuid>,
    /// An account this event deleted: its endpoints go before the event is delivered.
    pub erases: Option<Uuid>,
    /// The JSON body, exactly as it is sent and signed.
    pub body: String,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    timestamp: String,
    data: serde_json::Value,
}

impl Message {
    /// The message an internal event makes, if it is one webhooks carry. `Ok(None)`: an
    /// event of a type no webhook carries (video.progress, user.updated …), to be
    /// acknowledged and forgotten. `Err`: a body that is no event a consumer can apply.
    pub fn from_event(body: &[u8]) -> Result<Option<Self>, DecodeError> {
        let kind = RawEnvelope::parse(body)?.kind;
        if kind.starts_with("video.") {
            let event = VideoEvent::decode(body)?;
            let Some((event_type, channel, data)) = video(event.data) else {
                return Ok(None);
            };
            Ok(Some(Self::new(
                event.id,
                event_type,
                event.occurred_at,
                channel,
                data,
            )))
        } else if kind.starts_with("user.") {
            let event = UserEvent::decode(body)?;
            let UserEvent::Deleted(deleted) = event.data else {
                return Ok(None);
            };
            let data = json!({ "user_id": deleted.user_id });
            let message = Self::new(
                event.id,
                EventType::UserDeleted,
                event.occurred_at,
                None,
                data,
            );
            Ok(Some(Self {
                erases: Some(deleted.user_id),
                ..message
            }))
        } else if kind.starts_with("comment.") || kind.starts_with("subscription.") {
            let event = MediaEvent::decode(body)?;
            let (event_type, channel, data) = media(event.data);
            Ok(Some(Self::new(
                event.id,
                event_type,
                event.occurred_at,
                Some(channel),
                data,
            )))
        } else {
            Ok(None)
        }
    }

    pub fn new(
        id: Uuid,
        event_type: EventType,
        occurred_at: OffsetDateTime,
        channel: Option<Uuid>,
        data: serde_json::Value,
    ) -> Self {
        let timestamp = occurred_at
            .format(&time::format_description::well_known::Rfc3339)
            .expect("a UTC time formats as RFC 3339");
        let body = serde_json::to_string(&Body {
            kind: event_type.as_str(),
            timestamp,
            data,
        })
        .expect("JSON values serialize");
        Self {
            id,
            event_type,
            occurred_at,
            channel,
            erases: None,
            body,
        }
    }
}

/// A video event's type, channel and public data; `None` for types webhooks do not carry.
fn video(event: VideoEvent) -> Option<(EventType, Option<Uuid>, serde_json::Value)> {
    Some(match event {
        VideoEvent::Uploaded(e) => (
            EventType::VideoUploaded,
            Some(e.owner_id),
            json!({ "video_id": e.video_id, "owner_id": e.owner_id, "size_bytes": e.size_bytes }),
        ),
        VideoEvent::Ready(e) => {
            let renditions: Vec<_> = e
                .renditions
                .iter()
                .map(|r| json!({ "name": r.name, "width": r.width, "height": r.height, "bandwidth": r.bandwidth }))
                .collect();
            (
                EventType::VideoReady,
                Some(e.owner_id),
                json!({
                    "video_id": e.video_id,
                    "owner_id": e.owner_id,
                    "duration_seconds": e.duration_seconds,
                    "renditions": renditions,
                }),
            )
        }
        VideoEvent::Failed(e) => (
            EventType::VideoFailed,
            Some(e.owner_id),
            json!({ "video_id": e.video_id, "owner_id": e.owner_id, "reason": e.reason }),
        ),
        VideoEvent::Deleted(e) => (
            EventType::VideoDeleted,
            Some(e.owner_id),
            json!({ "video_id": e.video_id, "owner_id": e.owner_id }),
        ),
        VideoEvent::Created(_)
        | VideoEvent::Progress(_)
        | VideoEvent::Updated(_)
        | VideoEvent::Captions(_) => return None,
    })
}

/// A media event's type, channel and public data.
fn media(event: MediaEvent) -> (EventType, Uuid, serde_json::Value) {
    match event {
        MediaEvent::CommentAdded(e) => (
            EventType::CommentAdded,
            e.video_owner_id,
            json!({
                "comment_id": e.comment_id,
                "video_id": e.video_id,
                "video_owner_id": e.video_owner_id,
                "author_id": e.author_id,
                "parent_id": e.parent_id,
                "body": e.body,
            }),
        ),
        MediaEvent::SubscriptionAdded(e) => (
            EventType::SubscriptionAdded,
            e.channel_id,
            json!({ "channel_id": e.channel_id, "subscriber_id": e.subscriber_id }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use events::{
        Envelope,
        user::{UserDeleted, UserUpdated},
        video::{VideoFailed, VideoReady},
    };

    use super::*;

    fn body<T: events::Event>(event: T) -> (Uuid, Vec<u8>) {
        let envelope = Envelope::new(event);
        (envelope.id, serde_json::to_vec(&envelope).unwrap())
    }

    #[test]
    fn a_ready_video_becomes_a_message_of_its_channel_without_internal_keys() {
        let (video_id, owner_id) = (Uuid::now_v7(), Uuid::now_v7());
        let (id, bytes) = body(VideoReady {
            video_id,
            owner_id,
            manifest_key: format!("hls/{video_id}/master.m3u8"),
            thumbnail_key: None,
            duration_seconds: 12.5,
            renditions: vec![],
            posters: vec![],
            storyboard: None,
        });
        let message = Message::from_event(&bytes).unwrap().unwrap();
        assert_eq!(message.id, id);
        assert_eq!(message.event_type, EventType::VideoReady);
        assert_eq!(message.channel, Some(owner_id));
        let sent: serde_json::Value = serde_json::from_str(&message.body).unwrap();
        assert_eq!(sent["type"], "video.ready");
        assert_eq!(sent["data"]["video_id"], video_id.to_string());
        assert_eq!(sent["data"]["duration_seconds"], 12.5);
        assert!(!message.body.contains("hls/"), "{}", message.body);
        assert!(sent["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn failures_and_deleted_accounts_are_carried_other_events_are_not() {
        let (_, failed) = body(VideoFailed {
            video_id: Uuid::now_v7(),
            owner_id: Uuid::now_v7(),
            reason: "not a video".into(),
        });
        let message = Message::from_event(&failed).unwrap().unwrap();
        assert!(message.body.contains("not a video"));
        let user_id = Uuid::now_v7();
        let (_, deleted) = body(UserDeleted { user_id });
        let message = Message::from_event(&deleted).unwrap().unwrap();
        assert_eq!(
            (message.event_type, message.channel, message.erases),
            (EventType::UserDeleted, None, Some(user_id))
        );
        let (_, updated) = body(UserUpdated { user_id });
        assert_eq!(Message::from_event(&updated).unwrap(), None);
        assert!(Message::from_event(b"not json").is_err());
    }

    #[test]
    fn comments_and_subscriptions_belong_to_the_channel_they_happened_on() {
        let (owner, fan, video_id) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let (_, comment) = body(events::media::CommentAdded {
            comment_id: "c1".into(),
            video_id,
            video_owner_id: owner,
            author_id: fan,
            parent_id: None,
            parent_author_id: None,
            body: "Nice".into(),
        });
        let message = Message::from_event(&comment).unwrap().unwrap();
        assert_eq!(
            (message.event_type, message.channel),
            (EventType::CommentAdded, Some(owner))
        );
        let sent: serde_json::Value = serde_json::from_str(&message.body).unwrap();
        assert_eq!(sent["data"]["author_id"], fan.to_string());
        assert_eq!(sent["data"]["body"], "Nice");
        let (_, subscription) = body(events::media::SubscriptionAdded {
            channel_id: owner,
            subscriber_id: fan,
        });
        let message = Message::from_event(&subscription).unwrap().unwrap();
        assert_eq!(
            (message.event_type, message.channel),
            (EventType::SubscriptionAdded, Some(owner))
        );
    }

    #[test]
    fn every_type_parses_back_from_its_name() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("video.progress"), None);
    }
}
