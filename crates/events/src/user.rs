//! Events about accounts, published by auth on [`USER_EVENTS`](crate::topology::USER_EVENTS).
//! Media evicts its cached copy of the user on either, and on `user.deleted` erases what
//! the account left (its videos, likes, subscriptions, comments: media's `erasure`). As for video events
//! (crate::video), the type names are spelled once, in [`UserEventKind`], and a consumer
//! decodes a delivery into [`UserEvent`] by the envelope's `type`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    Envelope, Event,
    envelope::{DecodeError, RawEnvelope},
    topology::USER_EVENTS,
};

/// The type of a user event, which is also its routing key on [`USER_EVENTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserEventKind {
    Updated,
    Deleted,
}

impl UserEventKind {
    pub const ALL: [Self; 2] = [Self::Updated, Self::Deleted];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Updated => "user.updated",
            Self::Deleted => "user.deleted",
        }
    }

    /// The routing key it is published with on [`USER_EVENTS`] (its type), to bind to.
    pub const fn routing_key(self) -> &'static str {
        self.as_str()
    }

    pub fn parse(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }
}

/// A user event of whichever type its envelope says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserEvent {
    Updated(UserUpdated),
    Deleted(UserDeleted),
}

impl UserEvent {
    /// Decodes a delivery's body by its envelope's `type` (see crate::video::VideoEvent).
    pub fn decode(body: &[u8]) -> Result<Envelope<Self>, DecodeError> {
        let raw = RawEnvelope::parse(body)?;
        match UserEventKind::parse(&raw.kind) {
            Some(UserEventKind::Updated) => raw.decode_as(Self::Updated),
            Some(UserEventKind::Deleted) => raw.decode_as(Self::Deleted),
            None => raw.unknown(),
        }
    }

    /// The user it is about.
    pub fn user_id(&self) -> Uuid {
        match self {
            Self::Updated(e) => e.user_id,
            Self::Deleted(e) => e.user_id,
        }
    }
}

/// A user's public profile changed (display name, bio, avatar).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserUpdated {
    pub user_id: Uuid,
}

impl Event for UserUpdated {
    const EXCHANGE: &'static str = USER_EVENTS;
    const TYPE: &'static str = UserEventKind::Updated.as_str();
}

/// A user deleted their account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDeleted {
    pub user_id: Uuid,
}

impl Event for UserDeleted {
    const EXCHANGE: &'static str = USER_EVENTS;
    const TYPE: &'static str = UserEventKind::Deleted.as_str();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_kinds_decode_by_type_to_their_user() {
        let user_id = Uuid::now_v7();
        let deleted = serde_json::to_vec(&Envelope::new(UserDeleted { user_id })).unwrap();
        let decoded = UserEvent::decode(&deleted).unwrap().data;
        assert_eq!(decoded, UserEvent::Deleted(UserDeleted { user_id }));
        assert_eq!(decoded.user_id(), user_id);
        let updated = serde_json::to_vec(&Envelope::new(UserUpdated { user_id })).unwrap();
        assert_eq!(UserEvent::decode(&updated).unwrap().data.user_id(), user_id);
        for kind in UserEventKind::ALL {
            assert_eq!(UserEventKind::parse(kind.routing_key()), Some(kind));
        }
    }
}
