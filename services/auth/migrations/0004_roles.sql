-- Roles beyond "user": granted by an admin (moderator) or by the `auth grant-admin`
-- command (admin), never through an API anyone can call. Carried in access tokens.
ALTER TABLE users ADD COLUMN roles text[] NOT NULL DEFAULT '{}'
    CHECK (roles <@ ARRAY['moderator', 'admin']::text[]);
-- The admins' list of moderators.
CREATE INDEX users_with_roles ON users (username) WHERE roles <> '{}';
