//! What media prunes so its tables stay bounded (`platform::retention`): ids of applied
//! events (`processed_events`, the catalogue's and the counters' dedupe table) older than
//! `PROCESSED_EVENTS_RETENTION_SECS`, and notifications older than
//! `NOTIFICATION_RETENTION_SECS` (a user's list is their recent past, not an archive).
//!
//! An id only has to outlive the last redelivery of its event: a broker redelivery or an
//! outbox re-publish after a crash comes within minutes, so the default week leaves a wide
//! margin. A duplicate arriving later than the retention would be applied again, so the
//! retention must stay longer than any queue may hold a message. (The outbox needs no
//! pruning: the relay deletes each row once the broker confirmed it, `events::outbox`.)

use std::time::Duration;

use platform::retention::Prune;

pub fn prunes(processed_events: Duration, notifications: Duration) -> Vec<Prune> {
    vec![
        Prune {
            what: "processed event ids",
            // Indexed by processed_at (migrations/0003).
            sql: "DELETE FROM processed_events WHERE ctid IN (
                  SELECT ctid FROM processed_events
                  WHERE processed_at < now() - $1 * interval '1 second' LIMIT $2)",
            retention: processed_events,
        },
        Prune {
            what: "notifications",
            // Indexed by created_at (migrations/0009).
            sql: "DELETE FROM notifications WHERE ctid IN (
                      SELECT ctid FROM notifications
                      WHERE created_at < now() - $1 * interval '1 second' LIMIT $2)",
            retention: notifications,
        },
        Prune {
            what: "large channels' posts",
            // Indexed by created_at (migrations/0012); the same age as the rows.
            sql: "DELETE FROM notification_posts WHERE ctid IN (
                      SELECT ctid FROM notification_posts
                      WHERE created_at < now() - $1 * interval '1 second' LIMIT $2)",
            retention: notifications,
        },
    ]
}
