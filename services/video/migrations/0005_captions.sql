-- Caption tracks, one per language (crate::captions). The files live under the video's HLS
-- prefix; the rows are what the master playlist lists.
CREATE TABLE captions (
    video_id   uuid NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    language   text NOT NULL,
    label      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (video_id, language)
);
