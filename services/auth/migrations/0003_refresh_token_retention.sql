-- What the pruning of refresh tokens selects by (src/tokens/prune.rs): rows expired, and
-- families revoked, longer than the retention ago. Without these, each batch would scan
-- the table.
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);
CREATE INDEX refresh_tokens_revoked_at ON refresh_tokens (revoked_at) WHERE revoked_at IS NOT NULL;
