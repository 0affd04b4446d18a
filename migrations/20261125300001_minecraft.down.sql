DROP TABLE minecraft_schedules;
DROP TABLE minecraft_command_policy;
DROP TABLE minecraft_guild_links;
