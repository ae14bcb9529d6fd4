-- A video's caption tracks (video.captions: [{language, label, vtt_key}]) and the
-- revision of that list, so an older list arriving late never replaces a newer one.
ALTER TABLE videos
    ADD COLUMN captions          jsonb NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN captions_revision bigint NOT NULL DEFAULT 0;
