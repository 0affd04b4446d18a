-- Admin-issued, single-use registration invites; only a keyed digest of the invite is kept.
CREATE TABLE invites (
    id          BIGINT PRIMARY KEY,
    token_hash  TEXT   NOT NULL UNIQUE,
    created_by  BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    used_by     BIGINT REFERENCES users (id) ON DELETE SET NULL
);
