-- Each media replica keeps its own search index in memory (src/search/replica.rs) and
-- follows the catalogue through these notifications: the id of a video whose searchable
-- state changed. Counters (views, likes, comments) are not listed: they change constantly
-- and the index does not hold them.
--
-- The `search` tsvector column, its trigger and `search_words` stay for now: a replica of
-- the previous release still reads them during a rolling deploy. A later migration drops
-- them (expand, then contract).
CREATE FUNCTION videos_search_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('media_search', OLD.id::text);
    ELSE
        PERFORM pg_notify('media_search', NEW.id::text);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER videos_search_notify
    AFTER INSERT OR DELETE OR UPDATE OF title, description, tags, category, visibility, status,
        deleted_at, published_at, created_at, duration_seconds
    ON videos
    FOR EACH ROW EXECUTE FUNCTION videos_search_notify();
