-- Single-use tokens sent by mail, stored only as keyed hashes.
CREATE TABLE mail_tokens (
    hash       bytea PRIMARY KEY,
    purpose    text NOT NULL CHECK (purpose IN ('reset', 'verify', 'email')),
    user_id    uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    new_email  text,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX mail_tokens_by_user ON mail_tokens(user_id, purpose);
