-- Accounts deleted in auth (user.deleted), remembered so that the erasure of an account
-- is final: a video event about one of its videos that arrives after the erasure (a late
-- video.created from an upload begun just before) buries that video at once instead of
-- bringing it back (services/media/src/erasure/mod.rs). One row per account, kept: a uuid
-- and a time per deleted account.
CREATE TABLE deleted_accounts (
    user_id    uuid PRIMARY KEY,
    deleted_at timestamptz NOT NULL DEFAULT now()
);

-- The erasure deletes a user's likes by user; the primary key (user_id, video_id) serves
-- that. Their follows as follower are served by the primary key (follower_id, channel_id),
-- as a channel by follows_by_channel; their videos by videos_by_owner (not yet deleted).
