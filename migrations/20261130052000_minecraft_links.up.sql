-- Minecraft accounts linked to Discord members, and the whitelist that follows a guild's
-- Minecraft role (issue 12). Portable SQLite/PostgreSQL, see DESIGN.md's storage rules.

-- One row per linked member and server. `minecraft_key` is the name lowercased: Minecraft
-- names are case-insensitive, so `Steve` and `steve` are one account, and one account belongs
-- to at most one member per server. `roles` is the member's Discord role ids as last seen
-- (JSON array of strings), from the interaction, REST or the gateway's member events; the
-- reconciliation reads it instead of asking Discord for every member. `whitelisted` is what
-- guildhall last saw or made true on the server.
CREATE TABLE minecraft_links (
    id                BIGINT  PRIMARY KEY,
    guild_id          BIGINT  NOT NULL,
    server_name       TEXT    NOT NULL,
    discord_user_id   BIGINT  NOT NULL,
    minecraft_name    TEXT    NOT NULL,
    minecraft_key     TEXT    NOT NULL,
    roles             TEXT    NOT NULL DEFAULT '[]',
    in_guild          INTEGER NOT NULL DEFAULT 1,
    whitelisted       INTEGER NOT NULL DEFAULT 0,
    linked_at         BIGINT  NOT NULL,
    linked_by         TEXT    NOT NULL,
    updated_at        BIGINT  NOT NULL
);
CREATE UNIQUE INDEX minecraft_links_name ON minecraft_links (server_name, minecraft_key);
CREATE UNIQUE INDEX minecraft_links_member ON minecraft_links (guild_id, discord_user_id);

-- Pending `/mc link` codes: one per member of a guild (a new `/mc link` replaces it). Only an
-- HMAC of the code is stored; `attempts` counts wrong guesses against this code.
CREATE TABLE minecraft_link_codes (
    guild_id          BIGINT  NOT NULL,
    discord_user_id   BIGINT  NOT NULL,
    server_name       TEXT    NOT NULL,
    minecraft_name    TEXT    NOT NULL,
    code_hash         TEXT    NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    expires_at        BIGINT  NOT NULL,
    created_at        BIGINT  NOT NULL,
    PRIMARY KEY (guild_id, discord_user_id)
);

-- The whitelist reconciliation of each server: due at `next_run_at`, claimed by a
-- compare-and-set on it (as schedules are), so one instance runs each round; the last result
-- is kept for the API. `kick_on_remove` kicks a player who is online when taken off.
CREATE TABLE minecraft_whitelist_sync (
    server_name       TEXT    PRIMARY KEY,
    next_run_at       BIGINT  NOT NULL,
    claimed_by        TEXT,
    kick_on_remove    INTEGER NOT NULL DEFAULT 0,
    last_run_at       BIGINT,
    last_outcome      TEXT,
    last_result       TEXT,
    updated_at        BIGINT  NOT NULL
);
