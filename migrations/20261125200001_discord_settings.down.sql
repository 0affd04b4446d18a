ALTER TABLE guild_settings DROP COLUMN minecraft_role_id;
