CREATE EXTENSION IF NOT EXISTS citext;

CREATE TABLE users (
    id             uuid PRIMARY KEY,
    username       citext NOT NULL UNIQUE,
    email          citext NOT NULL UNIQUE,
    password_hash  text NOT NULL,             -- argon2id PHC string
    display_name   text,
    bio            text NOT NULL DEFAULT '',
    avatar_url     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Refresh tokens are opaque 256-bit values; only their SHA-256 is stored. Every use rotates:
-- the used row gets rotated_at and a new row joins the same family. Presenting a rotated
-- token again means it was stolen (or replayed): the whole family is revoked.
CREATE TABLE refresh_tokens (
    token_hash   bytea PRIMARY KEY,
    family_id    uuid NOT NULL,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    access_jti   uuid NOT NULL,               -- the access token issued with it (logout finds the family)
    access_exp   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    rotated_at   timestamptz,
    revoked_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_access_jti ON refresh_tokens (access_jti);
