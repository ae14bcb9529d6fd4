//! Notifications from other services' events: the webhooks service's
//! `webhook.endpoint_disabled` tells the endpoint's owner (`WEBHOOK_DISABLED`).
//!
//! The notification's subject is the event's id, so a redelivery adds nothing and an
//! endpoint disabled again after its owner re-enabled it is reported again.

use events::{
    Event,
    consumer::{self, Outcome},
    envelope::RawEnvelope,
    topology::WEBHOOK_EVENTS,
    webhook::EndpointDisabled,
};

use super::{Kind, NewNotification, store};
use crate::Context;

/// Consumes media's `media.notifications` queue until shutdown.
pub fn spawn(ctx: &Context, shutdown: &platform::Shutdown) {
    let namespace = ctx.config.namespace();
    let spec = namespace.queue("media.notifications").bind(
        WEBHOOK_EVENTS,
        &namespace.routing_key(EndpointDisabled::TYPE),
    );
    let ctx = ctx.clone();
    consumer::spawn(ctx.rabbit.clone(), spec, 16, shutdown, move |delivery| {
        let ctx = ctx.clone();
        async move {
            let envelope = match RawEnvelope::parse(&delivery.data).and_then(|raw| {
                if raw.kind == EndpointDisabled::TYPE {
                    raw.decode_as(|e: EndpointDisabled| e)
                } else {
                    raw.unknown()
                }
            }) {
                Ok(envelope) => envelope,
                Err(error) => return Outcome::undecodable(&error),
            };
            let disabled = &envelope.data;
            let notification = NewNotification {
                detail: Some(format!("{}: {}", disabled.url, disabled.reason)),
                ..NewNotification::new(disabled.owner_id, Kind::WebhookDisabled, envelope.id)
            };
            let mut conn = match ctx.db.pool().acquire().await {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook notification not written; will retry");
                    return Outcome::Retry;
                }
            };
            match store::notify(&mut conn, &notification).await {
                Ok(written) => {
                    drop(conn);
                    super::announce(&ctx, written.as_slice()).await;
                    Outcome::Ack
                }
                Err(e) => {
                    tracing::warn!(error = %e, "webhook notification not written; will retry");
                    Outcome::Retry
                }
            }
        }
    });
}
