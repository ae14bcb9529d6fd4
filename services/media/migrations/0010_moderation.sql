-- Trust and safety (src/moderation): reports, moderators' decisions, the audit log.

-- A video a moderator hid: unlisted and unplayable for everyone but its owner, who reads
-- `hidden_reason`. `owner_banned_at` mirrors a ban of the owner (user_moderation) on each
-- of the owner's videos, so every listing excludes both with a plain column test.
-- `moderation_revision` grows with every hide/unhide: the video service keeps the state
-- of the highest revision it heard (events::moderation).
ALTER TABLE videos
    ADD COLUMN hidden_at timestamptz,
    ADD COLUMN hidden_reason text,
    ADD COLUMN owner_banned_at timestamptz,
    ADD COLUMN moderation_revision bigint NOT NULL DEFAULT 0;

-- The search replicas follow availability too.
DROP TRIGGER videos_search_notify ON videos;
CREATE TRIGGER videos_search_notify
    AFTER INSERT OR DELETE OR UPDATE OF title, description, tags, category, visibility, status,
        deleted_at, published_at, created_at, duration_seconds, hidden_at, owner_banned_at
    ON videos
    FOR EACH ROW EXECUTE FUNCTION videos_search_notify();

-- One row per user a moderator ever decided about; `banned_at` NULL once the ban is lifted.
CREATE TABLE user_moderation (
    user_id    uuid PRIMARY KEY,
    banned_at  timestamptz,
    reason     text,
    revision   bigint NOT NULL DEFAULT 0
);

-- Reports: anyone signed in reports a video, a comment or a user. One open report per
-- reporter and target (a second one is the first, unchanged).
CREATE TABLE reports (
    id           uuid PRIMARY KEY,                  -- UUIDv7: the queue's order
    reporter_id  uuid NOT NULL,
    target_kind  text NOT NULL CHECK (target_kind IN ('video', 'comment', 'user')),
    target_id    text NOT NULL,
    reason       text NOT NULL,
    details      text NOT NULL DEFAULT '',
    state        text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'resolved', 'dismissed')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    closed_at    timestamptz,
    closed_by    uuid,
    CHECK ((state = 'open') = (closed_at IS NULL))
);
CREATE UNIQUE INDEX reports_one_open ON reports (reporter_id, target_kind, target_id)
    WHERE state = 'open';
CREATE INDEX reports_queue ON reports (state, id);
CREATE INDEX reports_target ON reports (target_kind, target_id) WHERE state = 'open';

-- What moderators did: who, what, to what, when, why. Append-only: the trigger refuses
-- every UPDATE and DELETE (and TRUNCATE), whoever asks, the service included.
CREATE TABLE moderation_log (
    id            uuid PRIMARY KEY,                 -- UUIDv7: the log's order
    at            timestamptz NOT NULL DEFAULT now(),
    moderator_id  uuid NOT NULL,
    action        text NOT NULL,
    target_kind   text NOT NULL,
    target_id     text NOT NULL,
    reason        text NOT NULL,
    report_id     uuid
);

CREATE FUNCTION moderation_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'moderation_log is append-only';
END $$;

CREATE TRIGGER moderation_log_append_only
    BEFORE UPDATE OR DELETE ON moderation_log
    FOR EACH ROW EXECUTE FUNCTION moderation_log_append_only();
CREATE TRIGGER moderation_log_no_truncate
    BEFORE TRUNCATE ON moderation_log
    FOR EACH STATEMENT EXECUTE FUNCTION moderation_log_append_only();

-- A video first announced while its owner is banned starts withheld.
CREATE FUNCTION videos_owner_banned() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.owner_banned_at := (SELECT banned_at FROM user_moderation WHERE user_id = NEW.owner_id);
    RETURN NEW;
END $$;

CREATE TRIGGER videos_owner_banned
    BEFORE INSERT ON videos
    FOR EACH ROW EXECUTE FUNCTION videos_owner_banned();

-- Comment rules (src/comments/rules.rs): a channel owner's held words (in normal form:
-- lower case, single spaces), the users they blocked from commenting, and the users each
-- viewer blocked (whose comments they no longer see).
CREATE TABLE held_words (
    channel_id  uuid NOT NULL,
    word        text NOT NULL,
    PRIMARY KEY (channel_id, word)
);

CREATE TABLE channel_blocks (
    channel_id  uuid NOT NULL,
    user_id     uuid NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, user_id)
);

CREATE TABLE user_blocks (
    blocker_id  uuid NOT NULL,
    blocked_id  uuid NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (blocker_id, blocked_id)
);
