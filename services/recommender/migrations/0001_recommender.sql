-- The recommender's own database (`recommend`). Postgres holds what must survive a restart;
-- the serving structures (the HNSW graph, the users' taste state) are rebuilt from it at
-- start and kept in memory.

-- One row per video the recommender heard of, whatever order its events came in.
CREATE TABLE videos (
    id              uuid PRIMARY KEY,
    owner_id        uuid NOT NULL,
    title           text NOT NULL DEFAULT '',
    description     text NOT NULL DEFAULT '',
    tags            text[] NOT NULL DEFAULT '{}',
    category        text,
    visibility      text NOT NULL DEFAULT 'public',
    -- Metadata came from video.created or video.updated (an earlier ready/deleted event
    -- may have created the row without it).
    has_metadata    boolean NOT NULL DEFAULT false,
    ready           boolean NOT NULL DEFAULT false,
    deleted         boolean NOT NULL DEFAULT false,
    -- Bumped whenever the embedded text (title, tags, description) changes: the row needs
    -- embedding while embedded_version differs from it.
    text_version    bigint NOT NULL DEFAULT 0,
    embedded_version bigint,
    -- all-MiniLM-L6-v2 gives 384 normalised dimensions. pgvector is not available, so a
    -- plain array; the model name and version say which model made it, so a new model
    -- re-embeds everything.
    embedding       real[],
    model           text,
    model_version   text,
    embedded_at     timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- The embedding worker's queue: rows whose text changed since they were embedded.
CREATE INDEX videos_to_embed ON videos (updated_at)
    WHERE has_metadata AND NOT deleted AND embedded_version IS DISTINCT FROM text_version;

-- Event ids already applied (every consumer is idempotent).
CREATE TABLE processed_events (
    id          uuid PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- What a signed-in user did with a video, decayed: `score` is the decayed sum of the
-- weights of their likes, comments and watch time, as of `score_at`. `watched` excludes
-- the video from their recommendations.
CREATE TABLE user_signals (
    user_id     uuid NOT NULL,
    video_id    uuid NOT NULL,
    score       double precision NOT NULL DEFAULT 0,
    score_at    timestamptz NOT NULL,
    watched     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (user_id, video_id)
);
