-- Notifications: one row per recipient and thing that happened (fan-out on write; see
-- crate::notifications for why, and for how a large channel's new video is written in
-- batches by crate::notifications::fanout rather than in the event's transaction).
CREATE TABLE notifications (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    recipient_id uuid NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('new_video', 'comment_reply', 'video_comment',
                                               'video_ready', 'video_failed', 'new_subscriber',
                                               'webhook_disabled')),
    -- What the notification is about, once per recipient: a redelivered event, a retried
    -- batch or a second path to the same fact finds its key taken and adds nothing.
    dedupe_key   text NOT NULL,
    -- Who caused it (commenter, subscriber, the channel that published), if anyone.
    actor_id     uuid,
    video_id     uuid,
    comment_id   text,
    -- Kind-specific text: the failure reason, the comment's opening, the webhook's URL.
    detail       text,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    read_at      timestamptz,
    CONSTRAINT notifications_once UNIQUE (recipient_id, dedupe_key)
);
-- `notifications(first, after)`: a recipient's newest first.
CREATE INDEX notifications_by_recipient ON notifications (recipient_id, created_at DESC, id DESC);
-- `unreadNotificationCount` reads only the unread, however many read rows a user has.
CREATE INDEX notifications_unread ON notifications (recipient_id, created_at DESC)
    WHERE read_at IS NULL;
-- Erasure: what an erased account caused goes with it.
CREATE INDEX notifications_by_actor ON notifications (actor_id) WHERE actor_id IS NOT NULL;
-- Retention prunes by age.
CREATE INDEX notifications_by_age ON notifications (created_at);

-- Per-kind delivery a user chose; no row means the default, in-app.
CREATE TABLE notification_settings (
    user_id  uuid NOT NULL,
    kind     text NOT NULL,
    delivery text NOT NULL CHECK (delivery IN ('off', 'in_app')),
    PRIMARY KEY (user_id, kind)
);

-- A new video whose subscribers are still being notified: written with the catalogue's
-- `video.ready` (or the edit that made it public), consumed in batches of followers in
-- follower-id order; `after_follower` is where the next batch starts.
CREATE TABLE notification_fanouts (
    video_id       uuid PRIMARY KEY,
    channel_id     uuid NOT NULL,
    after_follower uuid,
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- The fan-out walks a channel's followers in id order.
CREATE INDEX follows_by_channel_follower ON follows (channel_id, follower_id);
DROP INDEX follows_by_channel;

-- Watch history: where each signed-in viewer is in each video they watched.
CREATE TABLE watch_history (
    user_id          uuid NOT NULL,
    video_id         uuid NOT NULL,
    position_seconds double precision NOT NULL DEFAULT 0 CHECK (position_seconds >= 0),
    -- Watched to (nearly) the end: out of `continueWatching` and `recommended`.
    finished         boolean NOT NULL DEFAULT false,
    watched_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (user_id, video_id)
);
CREATE INDEX watch_history_recent ON watch_history (user_id, watched_at DESC, video_id DESC);

-- Users who paused their history (nothing is recorded meanwhile).
CREATE TABLE history_paused (
    user_id   uuid PRIMARY KEY,
    paused_at timestamptz NOT NULL DEFAULT now()
);
