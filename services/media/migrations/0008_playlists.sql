-- Playlists: a user's ordered lists of videos, and the built-in "Watch later" (one per
-- user, created on first use, always private).
CREATE TABLE playlists (
    id          uuid PRIMARY KEY,
    owner_id    uuid NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('custom', 'watch_later')),
    title       text NOT NULL,
    description text NOT NULL DEFAULT '',
    visibility  text NOT NULL CHECK (visibility IN ('public', 'unlisted', 'private')),
    -- Items stored, hidden videos included; moves with its rows in one transaction.
    item_count  integer NOT NULL DEFAULT 0 CHECK (item_count >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX playlists_one_watch_later ON playlists (owner_id) WHERE kind = 'watch_later';
CREATE INDEX playlists_by_owner ON playlists (owner_id, created_at DESC, id DESC);

-- Positions are 0..item_count-1 without gaps, so "move to position 3" means what it says.
-- A change shifts a run of positions in one UPDATE, which passes through duplicates
-- mid-statement: the uniqueness of positions is checked at commit.
CREATE TABLE playlist_items (
    playlist_id uuid NOT NULL REFERENCES playlists ON DELETE CASCADE,
    video_id    uuid NOT NULL,
    position    integer NOT NULL CHECK (position >= 0),
    added_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (playlist_id, video_id),
    CONSTRAINT playlist_items_position UNIQUE (playlist_id, position) DEFERRABLE INITIALLY DEFERRED
);
-- Video.inPlaylists: which of a viewer's playlists hold a video.
CREATE INDEX playlist_items_by_video ON playlist_items (video_id);
