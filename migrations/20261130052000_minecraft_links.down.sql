DROP TABLE minecraft_whitelist_sync;
DROP TABLE minecraft_link_codes;
DROP TABLE minecraft_links;
