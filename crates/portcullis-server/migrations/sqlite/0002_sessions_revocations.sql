-- Refresh rotation with a grace window, and the revocation list.

-- The successor issued when this token was spent, and the pair returned then,
-- sealed under a key derived from this token (not from the lookup hash), kept
-- until grace_until so a retry gets the very same pair.
ALTER TABLE refresh_tokens ADD COLUMN successor_hash BLOB;
ALTER TABLE refresh_tokens ADD COLUMN grace_until TEXT;
ALTER TABLE refresh_tokens ADD COLUMN grace_pair BLOB;

-- The authoritative revocation list. `id` is the feed cursor: SQLite has a
-- single writer, so ids become visible in commit order and a reader of
-- `id > cursor` never skips a late commit.
CREATE TABLE revocations (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL CHECK (kind IN ('sid', 'jti', 'sub', 'kid')),
    subject    TEXT NOT NULL,
    before     INTEGER,              -- for kind 'sub': tokens with iat < before
    expires    INTEGER,              -- unix seconds; NULL for 'kid' (kept until pruned by key removal)
    created_at TEXT NOT NULL
) STRICT;
CREATE INDEX revocations_by_expiry ON revocations(expires);

-- One random value per database: part of every feed cursor, so a cursor from
-- another (or a re-created) database is recognised as unknown.
CREATE TABLE meta (
    name  TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) STRICT;
INSERT INTO meta (name, value) VALUES ('feed_epoch', lower(hex(randomblob(8))));
