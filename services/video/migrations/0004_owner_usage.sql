-- A user's storage and unfinished uploads (the quota and concurrent-upload checks on every
-- upload creation, src/limits.rs) are summed over their rows: without this index, over
-- the whole table.
CREATE INDEX videos_owner ON videos (owner_id) WHERE status <> 'deleted';
