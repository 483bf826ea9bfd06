-- The sealed pair a replay within the grace window answers with moves out
-- of the spent token's row into a table of its own, appended in time order
-- and pruned once the window has passed. Kept in the row, it made every
-- spent token ~0.8 KB for its session's whole life (and every rotation grew
-- an old row, splitting its page).
CREATE TABLE refresh_grace (
    id         INTEGER PRIMARY KEY,
    spent_hash BLOB NOT NULL,
    pair       BLOB NOT NULL,
    until      TEXT NOT NULL
) STRICT;
ALTER TABLE refresh_tokens ADD COLUMN grace_id INTEGER;
-- Only a token whose successor is unspent can still be replayed in grace.
UPDATE refresh_tokens SET grace_id = rowid
WHERE grace_pair IS NOT NULL
  AND successor_hash IN (SELECT hash FROM refresh_tokens WHERE spent_at IS NULL);
INSERT INTO refresh_grace (id, spent_hash, pair, until)
SELECT grace_id, hash, grace_pair, grace_until FROM refresh_tokens WHERE grace_id IS NOT NULL;
ALTER TABLE refresh_tokens DROP COLUMN grace_pair;
