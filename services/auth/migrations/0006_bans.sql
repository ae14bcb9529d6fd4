-- Bans, decided by moderators in media and enforced here from media's moderation.user
-- events (src/users/bans.rs): a banned account cannot sign in and its tokens are denied.
-- `ban_revision` is the revision of the decision the row reflects (events::moderation).
ALTER TABLE users
    ADD COLUMN banned_at timestamptz,
    ADD COLUMN ban_revision bigint NOT NULL DEFAULT 0;
