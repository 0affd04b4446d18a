ALTER TABLE guild_settings DROP COLUMN version;
ALTER TABLE audit_log DROP COLUMN instance;
