-- The stills of a ready video (video.ready): the poster in each width, smallest first
-- ([{key, width, height}]), and the storyboard of seek previews ({vtt_key, interval_seconds,
-- tile_width, tile_height}). Videos made before carry neither.
ALTER TABLE videos
    ADD COLUMN posters    jsonb NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN storyboard jsonb;
