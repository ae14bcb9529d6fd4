//! What the webhooks service announces: an endpoint it disabled on its own (the receiver
//! answered 410, or failed for days), so its owner can be told (notifications). Published
//! on [`WEBHOOK_EVENTS`] through the webhooks service's outbox, in the transaction that
//! disables the endpoint.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Event, topology::WEBHOOK_EVENTS};

/// An endpoint was disabled by the webhooks service (not by its owner).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointDisabled {
    pub endpoint_id: Uuid,
    pub owner_id: Uuid,
    pub url: String,
    /// Readable by the owner, e.g. "the endpoint answered 410 Gone".
    pub reason: String,
}

impl Event for EndpointDisabled {
    const EXCHANGE: &'static str = WEBHOOK_EVENTS;
    const TYPE: &'static str = "webhook.endpoint_disabled";
}
