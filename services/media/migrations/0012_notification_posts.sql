-- Fan-in on read for large channels (crate::notifications, "Large channels"): a new video
-- of a channel with more than NOTIFICATION_FANIN_SUBSCRIBERS subscribers is one row here,
-- which each subscriber's list and unread count read, instead of one `notifications` row
-- per subscriber.
CREATE TABLE notification_posts (
    -- Time-ordered; every subscriber's notification has this id.
    id         uuid PRIMARY KEY,
    -- Once per video, however often its `video.ready` is delivered.
    video_id   uuid NOT NULL UNIQUE,
    channel_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- A reader's posts: the channels they follow, newest first.
CREATE INDEX notification_posts_by_channel
    ON notification_posts (channel_id, created_at DESC, id DESC);
-- Pruned with the notifications (NOTIFICATION_RETENTION_SECS).
CREATE INDEX notification_posts_by_age ON notification_posts (created_at);

-- How far each reader has read the posts (`markNotificationsRead`): a post at or before
-- (upto_at, upto_id) in the newest-first order is read, since read_at.
CREATE TABLE notification_marks (
    user_id uuid PRIMARY KEY,
    upto_at timestamptz NOT NULL,
    upto_id uuid NOT NULL,
    read_at timestamptz NOT NULL DEFAULT now()
);
