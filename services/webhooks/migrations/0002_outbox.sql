-- Transactional outbox: events that must agree with a write to this database are inserted
-- here in the same transaction, and the relay (crates/events) publishes them with
-- publisher confirms, deleting each row only after the broker confirmed it.
CREATE TABLE outbox (
    id           uuid PRIMARY KEY,          -- the event id (UUIDv7), stable across retries
    exchange     text NOT NULL,
    routing_key  text NOT NULL,
    payload      jsonb NOT NULL,            -- the whole envelope
    created_at   timestamptz NOT NULL DEFAULT now(),
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text
);
CREATE INDEX outbox_created_at ON outbox (created_at);
