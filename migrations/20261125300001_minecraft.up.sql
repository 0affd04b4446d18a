-- Minecraft bridge (issue 5). Portable SQLite/PostgreSQL, see DESIGN.md's storage rules.

-- Which Minecraft server `/mc` in a guild talks to. Keyed by server *name* so that the
-- `default` server from RCON_HOST (which has no row in rcon_servers) can be linked too; the
-- store removes a server's links when it removes the server.
CREATE TABLE minecraft_guild_links (
    guild_id     BIGINT PRIMARY KEY,
    server_name  TEXT   NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX minecraft_guild_links_server ON minecraft_guild_links (server_name);

-- The command roots each role may send over RCON (JSON array of strings); `*` allows every
-- command. A role without a row may send nothing.
CREATE TABLE minecraft_command_policy (
    role_name   TEXT   PRIMARY KEY,
    allowed     TEXT   NOT NULL,
    updated_at  BIGINT NOT NULL
);
INSERT INTO minecraft_command_policy (role_name, allowed, updated_at) VALUES
    ('admin', '["*"]', 0),
    ('moderator', '["list","say","whitelist","kick"]', 0);

-- Cron-style scheduled commands. `next_run_at` is the next occurrence (Unix ms, UTC); an
-- instance claims an occurrence by moving `next_run_at` forward with a compare-and-set, so
-- each occurrence runs on exactly one instance, at most once.
CREATE TABLE minecraft_schedules (
    id                 BIGINT  PRIMARY KEY,
    server_name        TEXT    NOT NULL,
    cron               TEXT    NOT NULL,
    command            TEXT    NOT NULL,
    only_when_empty    INTEGER NOT NULL DEFAULT 0,
    countdown_seconds  BIGINT  NOT NULL DEFAULT 0,
    countdown_message  TEXT,
    enabled            INTEGER NOT NULL DEFAULT 1,
    created_by         TEXT    NOT NULL,
    next_run_at        BIGINT  NOT NULL,
    claimed_by         TEXT,
    last_run_at        BIGINT,
    last_outcome       TEXT,
    created_at         BIGINT  NOT NULL,
    updated_at         BIGINT  NOT NULL
);
CREATE INDEX minecraft_schedules_due ON minecraft_schedules (enabled, next_run_at);
CREATE INDEX minecraft_schedules_server ON minecraft_schedules (server_name);
