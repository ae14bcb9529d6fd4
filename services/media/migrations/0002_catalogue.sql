-- The catalogue: media's copy of every video, filled from video.* events, plus what
-- viewers do with videos that must be exact (likes, channel subscriptions).

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE videos (
    id               uuid PRIMARY KEY,                 -- = the upload id (UUIDv7)
    owner_id         uuid NOT NULL,
    title            text NOT NULL DEFAULT '',
    description      text NOT NULL DEFAULT '',
    tags             text[] NOT NULL DEFAULT '{}',
    category         text,
    visibility       text NOT NULL DEFAULT 'public'
                     CHECK (visibility IN ('public', 'unlisted', 'private')),
    -- Until video.created arrives (events may come out of order), the row has no metadata.
    has_metadata     boolean NOT NULL DEFAULT false,
    status           text NOT NULL CHECK (status IN ('uploading', 'processing', 'ready', 'failed')),
    status_rank      smallint NOT NULL,                -- statuses only move up (events::video)
    failure_reason   text,
    duration_seconds double precision,
    manifest_key     text,
    thumbnail_key    text,
    created_at       timestamptz NOT NULL,
    -- Set when the video first became ready: the feed's order.
    published_at     timestamptz,
    -- A tombstone, so a late event cannot bring a deleted video back.
    deleted_at       timestamptz,
    likes_count      bigint NOT NULL DEFAULT 0 CHECK (likes_count >= 0),
    comments_count   bigint NOT NULL DEFAULT 0,
    views_count      bigint NOT NULL DEFAULT 0,
    watch_seconds    bigint NOT NULL DEFAULT 0,
    search           tsvector NOT NULL DEFAULT ''::tsvector
);

-- What anyone can list: ready, public, not deleted. The feed and search read only these.
CREATE INDEX videos_feed ON videos (published_at DESC, id DESC)
    WHERE status = 'ready' AND visibility = 'public' AND deleted_at IS NULL;
CREATE INDEX videos_by_owner ON videos (owner_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;
-- subscriptionFeed: the newest published videos of each followed channel.
CREATE INDEX videos_published_by_owner ON videos (owner_id, published_at DESC, id DESC)
    WHERE status = 'ready' AND visibility = 'public' AND deleted_at IS NULL;
CREATE INDEX videos_search ON videos USING gin (search)
    WHERE status = 'ready' AND visibility = 'public' AND deleted_at IS NULL;
CREATE INDEX videos_tags ON videos USING gin (tags)
    WHERE status = 'ready' AND visibility = 'public' AND deleted_at IS NULL;

-- Weighted full-text document: title A, tags B, description C. A trigger rather than a
-- generated column because array_to_string is not immutable.
CREATE FUNCTION videos_search_document() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search :=
        setweight(to_tsvector('english', NEW.title), 'A') ||
        setweight(to_tsvector('english', array_to_string(NEW.tags, ' ')), 'B') ||
        setweight(to_tsvector('english', NEW.description), 'C');
    -- The vocabulary that misspelt query words are corrected against (pg_trgm).
    INSERT INTO search_words (word)
    SELECT DISTINCT w
    FROM regexp_split_to_table(lower(NEW.title || ' ' || array_to_string(NEW.tags, ' ')), '[^[:alnum:]]+') AS w
    WHERE length(w) BETWEEN 3 AND 40
    ON CONFLICT DO NOTHING;
    RETURN NEW;
END $$;

CREATE TABLE search_words (
    word text PRIMARY KEY
);
CREATE INDEX search_words_trgm ON search_words USING gist (word gist_trgm_ops);

CREATE TRIGGER videos_search_document
    BEFORE INSERT OR UPDATE OF title, tags, description ON videos
    FOR EACH ROW EXECUTE FUNCTION videos_search_document();

-- Events already applied, so a redelivered event changes nothing.
CREATE TABLE processed_events (
    id           uuid PRIMARY KEY,
    processed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE likes (
    user_id    uuid NOT NULL,
    video_id   uuid NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (user_id, video_id)
);
-- Video.likedBy, newest first.
CREATE INDEX likes_by_video ON likes (video_id, created_at DESC, user_id DESC);

-- Channel subscriptions: follower follows channel (another user).
CREATE TABLE follows (
    follower_id uuid NOT NULL,
    channel_id  uuid NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (follower_id, channel_id),
    CHECK (follower_id <> channel_id)
);
CREATE INDEX follows_by_channel ON follows (channel_id);

-- Subscriber counts, kept exact in the same transaction as follows.
CREATE TABLE channels (
    id               uuid PRIMARY KEY,
    subscriber_count bigint NOT NULL DEFAULT 0 CHECK (subscriber_count >= 0)
);
