//! Events about accounts, published by auth on [`USER_EVENTS`](crate::topology::USER_EVENTS).
//! Media evicts its cached copy of the user on either.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Event, topology::USER_EVENTS};

/// A user's public profile changed (display name, bio, avatar).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserUpdated {
    pub user_id: Uuid,
}

impl Event for UserUpdated {
    const EXCHANGE: &'static str = USER_EVENTS;
    const TYPE: &'static str = "user.updated";
}

/// A user deleted their account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDeleted {
    pub user_id: Uuid,
}

impl Event for UserDeleted {
    const EXCHANGE: &'static str = USER_EVENTS;
    const TYPE: &'static str = "user.deleted";
}
