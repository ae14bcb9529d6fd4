-- Moderators' decisions, from media's moderation.* events (src/assets/moderation.rs): a
-- hidden video, or a banned owner's, is served to its owner only. Each keeps the revision
-- of the decision it reflects, so events applied out of order end in the latest state.
ALTER TABLE videos
    ADD COLUMN hidden boolean NOT NULL DEFAULT false,
    ADD COLUMN moderation_revision bigint NOT NULL DEFAULT 0;

CREATE TABLE banned_owners (
    owner_id  uuid PRIMARY KEY,
    banned    boolean NOT NULL,
    revision  bigint NOT NULL
);
