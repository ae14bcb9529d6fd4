-- Old event ids are pruned by age (src/retention.rs); this keeps each batch an index scan.
CREATE INDEX processed_events_applied_at ON processed_events (applied_at);
