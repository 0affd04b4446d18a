-- The guildhall instance (host:pid) that handled an audited action; NULL for older entries.
ALTER TABLE audit_log ADD COLUMN instance TEXT;
-- Bumped by every change to a guild's settings: the ETag of GET /api/v1/settings/{guild_id},
-- checked against If-Match so that concurrent edits are refused rather than lost.
ALTER TABLE guild_settings ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
