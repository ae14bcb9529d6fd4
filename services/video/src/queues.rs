//! The queues this service publishes to or consumes, in its deployment's namespace.
//!
//! With an empty `QUEUE_PREFIX` the transcode queues are the shared ones crates/events
//! declares. With a prefix (tests, several stacks on one broker) they are private copies
//! that expire when unused (events::queue), so test runs leave nothing behind. The
//! transcoder declares the same jobs queue (a quorum queue) from the same
//! events::transcode, so their arguments agree.

use events::{Envelope, Event, Namespace, QueueSpec, Route, transcode::TranscodeQueues};
use sqlx::PgConnection;

/// The prefixed jobs queue, as every declarer of it declares it.
pub fn transcode_jobs(prefix: &str) -> QueueSpec {
    TranscodeQueues::new(&Namespace::new(prefix)).jobs
}

/// This service's own queue of video events (transcode results, catalogue edits), not
/// bound yet.
pub fn assets(prefix: &str) -> QueueSpec {
    Namespace::new(prefix).queue("video.assets")
}

/// Declares the jobs queue, so a job published by the outbox relay (not `mandatory`) is
/// never dropped for want of a queue. Fails (PRECONDITION_FAILED) while a classic queue
/// of the same name exists (README, "Transcode jobs: migrating to quorum queues"): jobs
/// then wait in the outbox, nothing is lost.
pub async fn declare_jobs(rabbit: &events::Rabbit, prefix: &str) -> Result<(), events::Error> {
    let channel = rabbit.channel().await?;
    transcode_jobs(prefix).declare(&channel).await?;
    channel.close(200, "declared".into()).await.ok();
    Ok(())
}

/// Queues the transcode job in the caller's transaction (the outbox), addressed to the
/// prefixed jobs queue through the default exchange.
pub async fn enqueue_job<T: Event>(
    conn: &mut PgConnection,
    prefix: &str,
    envelope: &Envelope<T>,
) -> Result<(), sqlx::Error> {
    let route = Route::queue(transcode_jobs(prefix).name);
    events::outbox::enqueue_to(conn, &route, envelope).await
}
