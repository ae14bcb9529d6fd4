-- Grows with every change of a video's caption tracks; `video.captions` carries it so
-- consumers keep the newest list whatever order the events arrive in.
ALTER TABLE videos ADD COLUMN captions_revision bigint NOT NULL DEFAULT 0;
