-- A moderator lifted the hiding of one of the user's videos (src/moderation): the owner
-- is told, as they were told of the hiding; `detail` is the moderator's reason.
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check
    CHECK (kind IN ('new_video', 'comment_reply', 'video_comment', 'video_ready', 'video_failed',
                    'new_subscriber', 'webhook_disabled', 'video_hidden', 'video_restored'));
