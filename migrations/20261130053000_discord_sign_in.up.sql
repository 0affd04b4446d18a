-- Sign in with Discord: the link between a guildhall user and a Discord account, the access
-- Discord roles give (kept apart from role_grants, which are made by hand and never synced),
-- the pending authorization requests, and the per-role switch for Discord sign-in.

CREATE TABLE discord_accounts (
    user_id           BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    discord_user_id   BIGINT NOT NULL UNIQUE,
    discord_username  TEXT   NOT NULL,
    linked_at         BIGINT NOT NULL
);

-- One row per user and guild: `manage` (Administrator or Manage Server) or `moderate` (the
-- guild's moderator role). Written only by the Discord access sync.
CREATE TABLE discord_grants (
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    guild_id    BIGINT NOT NULL,
    access      TEXT   NOT NULL,
    granted_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, guild_id)
);
CREATE INDEX discord_grants_guild ON discord_grants (guild_id);

-- An authorization request between the redirect to Discord and its callback: looked up by a
-- keyed digest of `state`, bound to the browser by a digest of its cookie, used once.
CREATE TABLE discord_oauth_requests (
    state_digest    TEXT   PRIMARY KEY,
    binding_digest  TEXT   NOT NULL,
    pkce_verifier   TEXT   NOT NULL,
    purpose         TEXT   NOT NULL,
    user_id         BIGINT,
    next_path       TEXT,
    expires_at      BIGINT NOT NULL
);
CREATE INDEX discord_oauth_requests_expiry ON discord_oauth_requests (expires_at);

-- 0: holders of this role cannot sign in with Discord (only for roles that require MFA).
ALTER TABLE roles ADD COLUMN discord_sign_in INTEGER NOT NULL DEFAULT 1;
