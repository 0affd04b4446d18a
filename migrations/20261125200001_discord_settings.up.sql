-- The Discord role allowed to run `/mc cmd` (arbitrary console commands) in a guild.
ALTER TABLE guild_settings ADD COLUMN minecraft_role_id BIGINT;
