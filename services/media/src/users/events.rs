//! Evicting cached profiles on `user.updated` and `user.deleted`.

use events::{
    consumer::{self, Outcome},
    topology::USER_EVENTS,
    user::UserUpdated,
};

use super::directory::Directory;
use crate::Context;

/// Consumes media's `media.users` queue until shutdown. Both events carry `user_id`, so
/// both decode as [`UserUpdated`].
pub fn spawn(
    ctx: &Context,
    directory: Directory,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let spec = ctx
        .config
        .queue("media.users")
        .bind(USER_EVENTS, "user.updated")
        .bind(USER_EVENTS, "user.deleted");
    consumer::spawn(ctx.rabbit.clone(), spec, 32, shutdown, move |delivery| {
        let directory = directory.clone();
        async move {
            let Ok(envelope) = consumer::decode::<UserUpdated>(&delivery.data) else {
                return Outcome::Reject;
            };
            match directory.evict(envelope.data.user_id).await {
                Ok(()) => Outcome::Ack,
                Err(e) => {
                    tracing::warn!(error = %e, "user cache eviction failed; will retry");
                    Outcome::Retry
                }
            }
        }
    });
}
