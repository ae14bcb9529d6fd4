//! Evicting cached profiles on `user.updated` and `user.deleted`.

use events::{
    consumer::{self, Outcome},
    topology::USER_EVENTS,
    user::{UserEvent, UserEventKind},
};

use super::directory::Directory;
use crate::Context;

/// Consumes media's `media.users` queue until shutdown. Either event evicts its user.
pub fn spawn(ctx: &Context, directory: Directory, shutdown: &platform::Shutdown) {
    let namespace = ctx.config.namespace();
    let mut spec = namespace.queue("media.users");
    for kind in UserEventKind::ALL {
        spec = spec.bind(USER_EVENTS, &namespace.routing_key(kind.routing_key()));
    }
    consumer::spawn(ctx.rabbit.clone(), spec, 32, shutdown, move |delivery| {
        let directory = directory.clone();
        async move {
            let event = match UserEvent::decode(&delivery.data) {
                Ok(envelope) => envelope.data,
                Err(error) => return Outcome::undecodable(&error),
            };
            match directory.evict(event.user_id()).await {
                Ok(()) => Outcome::Ack,
                Err(e) => {
                    tracing::warn!(error = %e, "user cache eviction failed; will retry");
                    Outcome::Retry
                }
            }
        }
    });
}
