//! The delivery log stays bounded: settled deliveries (with their attempts) go after
//! `WEBHOOK_LOG_RETENTION_SECS`, then the messages no delivery refers to any more.
//! Pending deliveries are never pruned, however old: they are work not yet done.

use std::time::Duration;

use platform::retention::Prune;

pub fn prunes(retention: Duration) -> Vec<Prune> {
    vec![
        Prune {
            what: "settled webhook deliveries",
            // Indexed by deliveries_settled (migrations/0001); attempts go by cascade.
            sql: "DELETE FROM deliveries WHERE ctid IN (
                      SELECT ctid FROM deliveries
                      WHERE state <> 'pending' AND updated_at < now() - $1 * interval '1 second'
                      LIMIT $2)",
            retention,
        },
        Prune {
            what: "webhook messages no delivery refers to",
            // Indexed by messages_created_at and deliveries_message.
            sql: "DELETE FROM messages WHERE ctid IN (
                      SELECT ctid FROM messages m
                      WHERE created_at < now() - $1 * interval '1 second'
                        AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id)
                      LIMIT $2)",
            retention,
        },
    ]
}
