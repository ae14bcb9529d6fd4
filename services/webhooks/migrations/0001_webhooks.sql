-- Endpoints: where a user (their channel's events) or an admin (the platform's) wants
-- events sent. The signing secrets are kept as they are: HMAC needs the key itself, so
-- unlike a password it cannot be stored hashed (protect this database accordingly).
CREATE TABLE endpoints (
    id                uuid PRIMARY KEY,
    owner_id          uuid NOT NULL,
    -- channel: events of the owner's own videos and account; platform: every event (admins).
    scope             text NOT NULL CHECK (scope IN ('channel', 'platform')),
    url               text NOT NULL,
    description       text NOT NULL DEFAULT '',
    event_types       text[] NOT NULL CHECK (cardinality(event_types) > 0),
    enabled           boolean NOT NULL DEFAULT true,
    -- Why it was disabled, when it was not by its owner (a 410, failing for days).
    disabled_reason   text,
    -- The first failed attempt since the last success (NULL while healthy).
    failing_since     timestamptz,
    -- The current secret signs every delivery; during a rotation's overlap the previous
    -- one signs too (a second `v1,` signature), until `previous_secret_expires_at`.
    secret            bytea NOT NULL,
    previous_secret   bytea,
    previous_secret_expires_at timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX endpoints_owner ON endpoints (owner_id, created_at);
CREATE INDEX endpoints_platform ON endpoints (scope) WHERE scope = 'platform';

-- One row per event that some endpoint wanted: the exact body every delivery of it sends
-- (what was signed), so retries and replays send the same bytes under the same id.
CREATE TABLE messages (
    id           uuid PRIMARY KEY,      -- the event's id: the `webhook-id` header
    event_type   text NOT NULL,
    occurred_at  timestamptz NOT NULL,
    body         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX messages_created_at ON messages (created_at);

-- One row per (endpoint, message): the unit that is attempted, retried and replayed.
-- The unique pair is what makes a redelivered event deliver once.
CREATE TABLE deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id      uuid NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    message_id       uuid NOT NULL REFERENCES messages (id),
    -- pending: an attempt is due at next_attempt_at (or one is in flight, leased until
    -- then); delivered: a 2xx; failed: attempts exhausted, a 410, or the endpoint disabled.
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    -- `attempts` when it was last replayed: the retry schedule counts from there, while
    -- the attempts keep their numbers in the log.
    replay_base      integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,
    last_status      integer,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (endpoint_id, message_id)
);
-- What the dispatcher claims: each endpoint's due deliveries, oldest first.
CREATE INDEX deliveries_due ON deliveries (endpoint_id, next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_log ON deliveries (endpoint_id, id DESC);
CREATE INDEX deliveries_failed ON deliveries (endpoint_id, created_at) WHERE state = 'failed';
-- Messages are pruned once no delivery refers to them.
CREATE INDEX deliveries_message ON deliveries (message_id);
CREATE INDEX deliveries_settled ON deliveries (updated_at) WHERE state <> 'pending';

-- Every attempt, for the delivery log: what the receiver answered and how long it took.
CREATE TABLE attempts (
    delivery_id   bigint NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt       integer NOT NULL,
    started_at    timestamptz NOT NULL,
    duration_ms   integer NOT NULL,
    status        integer,              -- the HTTP status; NULL when none came
    error         text,                 -- why no 2xx (timeout, refused address, ...)
    response      text,                 -- the start of the response body (capped)
    PRIMARY KEY (delivery_id, attempt)
);
