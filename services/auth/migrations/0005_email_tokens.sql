-- Email verification and password reset (src/mail).

-- When the account's current email address was proven to be the user's (a verification
-- link, or a reset link, which proves the same). NULL: unverified. Changing the address
-- makes it NULL again.
ALTER TABLE users ADD COLUMN email_verified_at timestamptz;

-- The links' tokens: 256-bit random values, of which only the SHA-256 is stored, so a
-- copy of the table opens no account. A token is bound to the address it was mailed to
-- (`email`): once the account's address changes, links sent to the old one stop working.
-- Using one sets used_at in the same statement that checks it is unused and unexpired, so
-- a token works once even when two requests race.
CREATE TABLE email_tokens (
    token_hash  bytea PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose     text NOT NULL CHECK (purpose IN ('verify', 'reset')),
    email       citext NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX email_tokens_user ON email_tokens (user_id);
-- What the pruning selects by (src/mail/prune.rs).
CREATE INDEX email_tokens_expires_at ON email_tokens (expires_at);

-- Mails to send, written in the transaction of the request that asks for one and deleted
-- once the SMTP server took the message (src/mail/sender.rs). A row names the address and
-- the purpose, never a token: the sender mints the token when it sends, so no usable
-- secret is ever stored. A reset request for an address no account has is a row too (the
-- sender drops it): the request does the same work whether or not the account exists.
CREATE TABLE mail_outbox (
    id               uuid PRIMARY KEY,           -- UUIDv7: oldest first
    purpose          text NOT NULL CHECK (purpose IN ('verify', 'reset')),
    email            citext NOT NULL,
    user_id          uuid REFERENCES users (id) ON DELETE CASCADE, -- verify: whose address
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at);
