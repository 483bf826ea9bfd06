#!/usr/bin/env bash
# Resident memory of the release server: idle on an empty database, after
# 8 concurrent logins (argon2id needs 19 MiB per hash in flight), and after
# start-up on a database with 100 000 users, 100 000 live sessions and
# 100 000 live revocations (all loaded into the in-memory revocation set).
# The rows are written straight into the SQLite file with the sqlite3 CLI
# (Debian's `sqlite3`), the way a year of use would leave them.
#
#   bench/memory.sh          # ~1 minute
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/portcullis/target}"
N="${N:-100000}"
PORT=18183
source bench/common.sh
scratch portcullis-memory
need sqlite3 sqlite3
cargo build --release -q --bin portcullis
portcullis="$CARGO_TARGET_DIR/release/portcullis"

start() { # sets $server and $startup_ms (to /readyz 200)
  local t0
  t0=$(date +%s%N)
  DATA_DIR="$work" BIND=127.0.0.1 PORT=$PORT RUST_LOG=warn \
    LOGIN_RATE_PER_ADDRESS=1000/s SIGNUP_RATE_PER_ADDRESS=1000/s "$portcullis" >"$work/log" 2>&1 &
  server=$!
  until curl -fs -o /dev/null "http://127.0.0.1:$PORT/readyz"; do sleep 0.005; done
  startup_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
}
stop() { kill "$server"; wait "$server" 2>/dev/null || true; server=""; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$server/status"; }
gauge() { curl -fs "http://127.0.0.1:$PORT/metrics" | awk -v n="$1" '$1 == n {print $2}'; }

post() { curl -fs -o /dev/null -X POST "http://127.0.0.1:$PORT$1" -H 'Content-Type: application/json' -d "$2"; }

start
empty_ms=$startup_ms
sleep 1
empty_rss=$(rss)
register "http://127.0.0.1:$PORT" memory@example.com >/dev/null
credentials="\"email\":\"memory@example.com\",\"password\":\"$PASSWORD\""
logins=()
for _ in $(seq 1 8); do post /api/auth/login "{$credentials}" & logins+=($!); done
wait "${logins[@]}"
sleep 3
logins_rss=$(rss)
workers=$(grep -c '^processor' /proc/cpuinfo)
stop

now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
later=$(date -u -d '+30 days' +%Y-%m-%dT%H:%M:%SZ)
sqlite3 "$work/portcullis.db" >/dev/null <<SQL
PRAGMA journal_mode = WAL;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $N)
INSERT INTO users (id, email, name, password_hash, roles, email_verified, disabled, created_at, updated_at)
SELECT randomblob(16), 'user' || i || '@example.com', 'User ' || i,
       '\$2a\$10\$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy', '["user"]', 1, 0, '$now', '$now'
FROM n;
INSERT INTO sessions (id, user_id, device_name, user_agent, ip, created_at, last_used_at, expires_at)
SELECT randomblob(16), id, 'laptop', 'bench', '127.0.0.1', '$now', '$now', '$later' FROM users;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $N)
INSERT INTO revocations (kind, subject, before, expires, created_at)
SELECT 'sid', lower(hex(randomblob(16))), NULL, CAST(strftime('%s', 'now') AS INTEGER) + 86400, '$now' FROM n;
COMMIT;
SQL

start
full_ms=$startup_ms
sleep 1
full_rss=$(rss)
revoked=$(gauge portcullis_revocation_set_size)
sessions=$(gauge portcullis_active_sessions)
stop

cat <<OUT
| database | start-up to /readyz | RSS |
|---|---:|---:|
| empty | ${empty_ms} ms | ${empty_rss} KiB |
| empty, 3 s after 8 concurrent logins ($workers hashing threads) | | ${logins_rss} KiB |
| $N users, $N live sessions, $N live revocations (set size ${revoked:-?}, active sessions ${sessions:-?}) | ${full_ms} ms | ${full_rss} KiB |
OUT
