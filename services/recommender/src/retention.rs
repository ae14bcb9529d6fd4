//! What the recommender prunes so its tables stay bounded (`platform::retention`): ids of
//! applied events (`processed_events`) older than `PROCESSED_EVENTS_RETENTION_SECS`.
//!
//! An id only has to outlive the last redelivery of its event (minutes: a broker
//! redelivery, an outbox re-publish after a crash), so the default week leaves a wide
//! margin; a duplicate arriving later than the retention would be applied again.

use std::time::Duration;

use platform::retention::Prune;

pub fn prunes(processed_events: Duration) -> Vec<Prune> {
    vec![Prune {
        what: "processed event ids",
        // Indexed by applied_at (migrations/0002).
        sql: "DELETE FROM processed_events WHERE ctid IN (
                  SELECT ctid FROM processed_events
                  WHERE applied_at < now() - $1 * interval '1 second' LIMIT $2)",
        retention: processed_events,
    }]
}
