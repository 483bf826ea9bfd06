#!/usr/bin/env bash
# How far above the Go design any HTTP server gets on this machine's one
# pinned core: nginx answering `return 200` (no application work at all)
# beside Portcullis's authenticated GET /api/profile and the Go design's,
# in the same rounds (each ratio within a round, then the median). wrk
# keeps its connections alive, so every server pays the same kernel TCP
# path per request; the nginx ratio bounds what a server can reach.
#
#   bench/ceiling.sh        # ~2 minutes
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/portcullis/target}"
work="$(mktemp -d /tmp/portcullis-ceiling.XXXXXX)"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"' EXIT
source bench/common.sh
need wrk wrk
[ -x /usr/sbin/nginx ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx; }

cargo build --release -q --bin portcullis
go_server="$(bash ../shared/baseline/go-gin-jwt/build.sh 2>/dev/null | tail -n 1)"

mkdir -p "$work/nginx/logs" "$work/data"
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
error_log $work/nginx/logs/error.log;
pid $work/nginx/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 100000000;
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  server {
    listen 127.0.0.1:18184;
    location / { default_type application/json; return 200 '{"ok":true}'; }
  }
}
EOF
taskset -c 0 /usr/sbin/nginx -p "$work/nginx" -e "$work/nginx/logs/error.log" -c "$work/nginx/nginx.conf" &
pids+=($!)
PORT=18182 JWT_SECRET="bench-secret-0123456789-0123456789" GIN_MODE=release taskset -c 0 "$go_server" >"$work/go.log" 2>&1 &
pids+=($!)
DATA_DIR="$work/data" BIND=127.0.0.1 PORT=18181 RUST_LOG=warn taskset -c 0 \
  "$CARGO_TARGET_DIR/release/portcullis" >"$work/portcullis.log" 2>&1 &
pids+=($!)
wait_up http://127.0.0.1:18184/ && wait_listening http://127.0.0.1:18182/ && wait_up http://127.0.0.1:18181/readyz

p_token=$(register http://127.0.0.1:18181 ceiling@example.com | json_field access_token)
g_token=$(register http://127.0.0.1:18182 ceiling@example.com | json_field access_token)

rps() { # url [token]
  local header=()
  [ -n "${2:-}" ] && header=(-H "Authorization: Bearer $2")
  taskset -c 1 wrk -t1 -c64 -d"${DURATION}s" "${header[@]}" "$1" | awk '/Requests\/sec/ {printf "%.0f", $2}'
}
: >"$work/rounds"
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round of $ROUNDS…" >&2
  echo "$(rps http://127.0.0.1:18184/) $(rps http://127.0.0.1:18182/api/profile "$g_token") \
    $(rps http://127.0.0.1:18181/api/profile "$p_token")" >>"$work/rounds"
done
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
echo "| round | nginx \`return 200\` req/s | Go profile | Portcullis profile | nginx ÷ Go | Portcullis ÷ Go |"
echo "|---|---:|---:|---:|---:|---:|"
awk '{printf "| %d | %s | %s | %s | %.2f | %.2f |\n", NR, $1, $2, $3, $1 / $2, $3 / $2}' "$work/rounds"
echo
echo "Medians of the per-round ratios: nginx $(awk '{printf "%.2f\n", $1 / $2}' "$work/rounds" | median)× Go," \
  "Portcullis $(awk '{printf "%.2f\n", $3 / $2}' "$work/rounds" | median)× Go ($ROUNDS rounds of $DURATION s, 64 connections)."
