-- Users, sessions with their refresh tokens, and signing keys.
-- Ids are UUIDs stored as 16-byte BLOBs; times are UTC RFC 3339 text.

CREATE TABLE users (
    id             BLOB PRIMARY KEY NOT NULL,
    email          TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    password_hash  TEXT,
    roles          TEXT NOT NULL,            -- JSON array of role names
    email_verified INTEGER NOT NULL DEFAULT 0,
    disabled       INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
) STRICT;

CREATE TABLE sessions (
    id           BLOB PRIMARY KEY NOT NULL,
    user_id      BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    device_name  TEXT,
    user_agent   TEXT,
    ip           TEXT,
    created_at   TEXT NOT NULL,
    last_used_at TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    revoked_at   TEXT
) STRICT;
CREATE INDEX sessions_by_user ON sessions(user_id);

-- Only keyed hashes of refresh tokens; spent ones stay until the session
-- ends so that a replay is always recognised.
CREATE TABLE refresh_tokens (
    hash       BLOB PRIMARY KEY NOT NULL,
    session_id BLOB NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    issued_at  TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    spent_at   TEXT
) STRICT;
CREATE INDEX refresh_tokens_by_session ON refresh_tokens(session_id);

CREATE TABLE signing_keys (
    kid                TEXT PRIMARY KEY NOT NULL,
    alg                TEXT NOT NULL,
    sealed_private_key BLOB NOT NULL,
    created_at         TEXT NOT NULL,
    signing_from       TEXT NOT NULL,
    retire_after       TEXT
) STRICT;
