-- The sweeper's search for abandoned uploads (src/sweeper.rs: uploading and past
-- expires_at, 100 at a time): an index on just those rows, so a sweep every
-- SWEEP_INTERVAL_SECS stays cheap however many uploads are in progress.
CREATE INDEX videos_upload_expiry ON videos (expires_at) WHERE status = 'uploading';
