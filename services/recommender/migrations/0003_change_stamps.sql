-- Every replica's memory (the HNSW index, users' tastes) follows these two tables
-- (src/follow.rs) instead of the events its own consumers happen to take: with two
-- replicas, each queue's events are split between them, but both read the tables.
--
-- Each writing transaction takes one transaction-scoped advisory lock first, then one
-- stamp from `changes`, and stamps every row it writes with it (src/changes.rs). The lock
-- makes stamps commit in order, so a reader that has seen stamp N has seen every change
-- committed with a smaller stamp: "everything after (stamp, key)" is a complete cursor.
CREATE SEQUENCE changes;

-- change_seq: the stamp of the last change to the row; embedding_seq: the stamp of the
-- change that set its current embedding (0: set before stamps existed, loaded at start).
ALTER TABLE videos
    ADD COLUMN change_seq    bigint NOT NULL DEFAULT 0,
    ADD COLUMN embedding_seq bigint NOT NULL DEFAULT 0;
CREATE INDEX videos_changes ON videos (change_seq, id);

ALTER TABLE user_signals ADD COLUMN change_seq bigint NOT NULL DEFAULT 0;
CREATE INDEX user_signals_changes ON user_signals (change_seq, user_id, video_id);

-- This database's identity, recorded in every index snapshot (src/snapshot.rs): a
-- snapshot's cursor means nothing on another database, so a recommender pointed at the
-- same bucket from elsewhere builds its own index instead of loading a stranger's.
CREATE TABLE instance (
    id  uuid PRIMARY KEY DEFAULT gen_random_uuid()
);
INSERT INTO instance DEFAULT VALUES;
