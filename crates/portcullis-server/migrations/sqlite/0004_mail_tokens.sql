-- Single-use tokens sent by mail (password reset, e-mail verification,
-- e-mail change), stored only as keyed hashes.
CREATE TABLE mail_tokens (
    hash       BLOB PRIMARY KEY NOT NULL,
    purpose    TEXT NOT NULL CHECK (purpose IN ('reset', 'verify', 'email')),
    user_id    BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    new_email  TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
) STRICT;
CREATE INDEX mail_tokens_by_user ON mail_tokens(user_id, purpose);
