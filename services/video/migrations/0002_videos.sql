-- One row per video (video id = upload id). The row is the source of truth for what has
-- been acknowledged to the uploader: `upload_offset` only moves once the bytes below it are
-- durable in S3, either as completed multipart parts (`upload_parts`) or as staged pieces
-- (`upload_pieces`, S3 objects `staging/{id}/{start}`) that have not yet filled a part.
CREATE TABLE videos (
    id               uuid PRIMARY KEY,
    owner_id         uuid NOT NULL,
    -- uploading -> processing -> ready | failed; `deleted` rows wait for their objects to
    -- be purged and are then removed.
    status           text NOT NULL
                     CHECK (status IN ('uploading', 'processing', 'ready', 'failed', 'deleted')),
    failure_reason   text,
    metadata         jsonb NOT NULL,
    filename         text,
    upload_length    bigint NOT NULL CHECK (upload_length > 0),
    upload_offset    bigint NOT NULL DEFAULT 0 CHECK (upload_offset <= upload_length),
    -- Fixed per upload so a configuration change cannot misalign a resumed upload.
    part_size        bigint NOT NULL,
    -- The S3 multipart upload of `sources/{id}`; NULL once completed (or aborted).
    s3_upload_id     text,
    expires_at       timestamptz NOT NULL,
    duration_seconds double precision,
    manifest_key     text,
    thumbnail_key    text,
    renditions       jsonb NOT NULL DEFAULT '[]',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX videos_status ON videos (status) WHERE status IN ('uploading', 'deleted');

-- Completed parts of the multipart upload; every part but the last is exactly part_size.
CREATE TABLE upload_parts (
    video_id     uuid NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    part_number  integer NOT NULL,
    etag         text NOT NULL,
    size         bigint NOT NULL,
    PRIMARY KEY (video_id, part_number)
);

-- Acknowledged bytes after the last completed part, staged as S3 objects until a part fills.
CREATE TABLE upload_pieces (
    video_id      uuid NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    start_offset  bigint NOT NULL,
    size          bigint NOT NULL,
    PRIMARY KEY (video_id, start_offset)
);
