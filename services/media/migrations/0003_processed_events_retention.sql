-- Old event ids are pruned by age (src/retention.rs); this keeps each batch an index scan.
CREATE INDEX processed_events_processed_at ON processed_events (processed_at);
