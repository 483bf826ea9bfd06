-- The PostgreSQL schema: the same tables as the SQLite one, native types.

CREATE TABLE users (
    id             uuid PRIMARY KEY,
    email          text NOT NULL UNIQUE,
    name           text NOT NULL,
    password_hash  text,
    roles          text NOT NULL,            -- JSON array of role names
    email_verified boolean NOT NULL DEFAULT false,
    disabled       boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);

CREATE TABLE sessions (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    device_name  text,
    user_agent   text,
    ip           text,
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);
CREATE INDEX sessions_by_user ON sessions(user_id);

CREATE TABLE refresh_tokens (
    hash           bytea PRIMARY KEY,
    session_id     uuid NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    issued_at      timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    spent_at       timestamptz,
    successor_hash bytea,
    grace_until    timestamptz,
    grace_pair     bytea
);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens(session_id);

-- The feed cursor is `id`. Sequence values are handed out at insert but
-- become visible at commit, so every transaction that inserts here first
-- takes one advisory lock (see the store): ids then commit in order and a
-- reader of `id > cursor` never skips an entry committed late.
CREATE TABLE revocations (
    id         bigserial PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('sid', 'jti', 'sub', 'kid')),
    subject    text NOT NULL,
    before     bigint,
    expires    bigint,
    created_at timestamptz NOT NULL
);
CREATE INDEX revocations_by_expiry ON revocations(expires);

CREATE TABLE signing_keys (
    kid                text PRIMARY KEY,
    alg                text NOT NULL,
    sealed_private_key bytea NOT NULL,
    created_at         timestamptz NOT NULL,
    signing_from       timestamptz NOT NULL,
    retire_after       timestamptz
);

CREATE TABLE meta (
    name  text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO meta (name, value) VALUES ('feed_epoch', substr(md5(random()::text || clock_timestamp()::text), 1, 16));
