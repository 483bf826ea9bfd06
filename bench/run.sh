#!/usr/bin/env bash
# HTTP throughput of Portcullis against the classic Go/Gin design, measured in
# one run on this machine: release builds, loopback only, the server pinned
# to CPU 0 and wrk to CPU 1, every scenario bounded in time, 3 rounds, medians.
#
#   bench/run.sh            # all scenarios, about 10 minutes
#   ROUNDS=1 DURATION=5 bench/run.sh
#
# Prints a Markdown table (and writes it to $OUT, default bench/results.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-64}"
OUT="${OUT:-$root/bench/results.md}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/portcullis/target}"
work="$(mktemp -d /tmp/portcullis-bench.XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

need() { command -v "$1" >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2"; }; }
need wrk wrk
need taskset util-linux
need curl curl

echo "building the release server and the Go baseline…" >&2
cargo build --release -q --bin portcullis
portcullis="$CARGO_TARGET_DIR/release/portcullis"
go_server="$(bash ../shared/baseline/go-gin-jwt/build.sh 2>/dev/null | tail -n 1)"

PASSWORD='violet hamster teapot 47'
PORTCULLIS_PORT=18181
GO_PORT=18182

wait_up() { # url
  for _ in $(seq 1 200); do curl -fs -o /dev/null "$1" && return 0; sleep 0.05; done
  echo "not up: $1" >&2; return 1
}

start_portcullis() { # extra env assignments…
  rm -rf "$work/data"; mkdir -p "$work/data"
  env DATA_DIR="$work/data" BIND=127.0.0.1 PORT=$PORTCULLIS_PORT RUST_LOG=warn \
    LOGIN_RATE_PER_ADDRESS=1000000/s SIGNUP_RATE_PER_ADDRESS=1000000/s \
    LOCKOUT_THRESHOLD=1000000 ACCOUNT_FAILURE_LIMIT=1000000/h "$@" \
    taskset -c 0 "$portcullis" >"$work/portcullis.log" 2>&1 &
  portcullis_pid=$!; pids+=("$portcullis_pid")
  wait_up "http://127.0.0.1:$PORTCULLIS_PORT/readyz"
}

start_go() {
  PORT=$GO_PORT JWT_SECRET="bench-secret-0123456789-0123456789" GIN_MODE=release \
    taskset -c 0 "$go_server" >"$work/go.log" 2>&1 &
  go_pid=$!; pids+=("$go_pid")
  for _ in $(seq 1 200); do curl -s -o /dev/null "http://127.0.0.1:$GO_PORT/" && break; sleep 0.05; done
}

# The first string member `$1` of the JSON on stdin, on a line of its own.
json_field() { grep -o "\"$1\":\"[^\"]*\"" | head -n 1 | cut -d'"' -f4; }

register() { # base email → the whole JSON answer
  curl -fs -X POST "$1/api/auth/register" -H 'Content-Type: application/json' \
    -d "{\"email\":\"$2\",\"password\":\"$PASSWORD\",\"name\":\"Bench\"}"
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# wrk once: prints "requests/s p50_ms p99_ms µs_cpu_per_request non_2xx"
wrk_once() { # pid script url [extra wrk args…]
  local pid=$1 script=$2 url=$3; shift 3
  local before after hz
  hz=$(getconf CLK_TCK)
  before=$(cpu_ticks "$pid")
  taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$script" "$@" "$url" >"$work/wrk.out" 2>&1
  after=$(cpu_ticks "$pid")
  awk -v ticks=$((after - before)) -v hz="$hz" '
    /Non-2xx/ {errors=$NF}
    /Requests\/sec/ {rps=$2}
    /^ +50%/ {p50=$2} /^ +99%/ {p99=$2}
    /requests in/ {n=$1}
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    END { printf "%.0f %.3f %.3f %.1f %d\n", rps, ms(p50), ms(p99), (n > 0 ? ticks / hz * 1e6 / n : 0), errors }' "$work/wrk.out"
}

# Median of each column over the rounds (mawk has no asort).
median_of() {
  local data
  data=$(cat)
  for col in 1 2 3 4 5; do
    echo "$data" | awk -v c=$col '{print $c}' | sort -n |
      awk '{v[NR] = $1} END {printf "%s ", v[int((NR + 1) / 2)]}'
  done
  echo
}

scenario() { # name pid script url [wrk args]
  local name=$1; shift
  local rows=()
  for round in $(seq 1 "$ROUNDS"); do
    # Refresh chains are spent by a round: each round gets its own.
    [ -n "${CHAINS:-}" ] && export REFRESH="$CHAINS.$round"
    rows+=("$(wrk_once "$@")")
  done
  printf '%s\n' "${rows[@]}" | median_of | sed "s/^/$name /"
}

cat >"$work/get.lua" <<'EOF'
local token = os.getenv("TOKEN")
wrk.headers["Authorization"] = token and ("Bearer " .. token) or nil
EOF

cat >"$work/login.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"email":"bench@example.com","password":"$PASSWORD"}'
EOF

# A fixed rate: each connection waits DELAY_MS between requests.
cat >"$work/paced.lua" <<'EOF'
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
local pause = tonumber(os.getenv("DELAY_MS"))
delay = function() return pause end
EOF

# Round-robin over a file of tokens (one a line).
cat >"$work/many.lua" <<'EOF'
local tokens, i = {}, 0
for line in io.lines(os.getenv("TOKENS")) do if #line > 0 then tokens[#tokens + 1] = line end end
request = function()
  i = i % #tokens + 1
  return wrk.format("GET", nil, {Authorization = "Bearer " .. tokens[i]})
end
EOF

# Each refresh token is spent once and its successor goes back in the pool:
# every request is a real rotation, never a grace replay.
cat >"$work/refresh.lua" <<'EOF'
local pool = {}
for line in io.lines(os.getenv("REFRESH")) do if #line > 0 then pool[#pool + 1] = line end end
local broken = 0
request = function()
  local token = table.remove(pool, 1)
  if token == nil then return wrk.format("GET", "/healthz") end
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"},
    '{"refresh_token":"' .. token .. '"}')
end
response = function(status, headers, body)
  local next_token = body and body:match('"refresh_token":"([^"]+)"')
  if next_token then pool[#pool + 1] = next_token else broken = broken + 1 end
end
done = function() io.stderr:write("broken chains: " .. broken .. "\n") end
EOF

results="$work/results.txt"
: >"$results"

echo "Portcullis…" >&2
start_portcullis
p="http://127.0.0.1:$PORTCULLIS_PORT"
idle_rss_portcullis=$(awk '/VmRSS/ {print $2}' "/proc/$portcullis_pid/status")
TOKEN=$(register "$p" bench@example.com | json_field access_token)
export TOKEN
scenario "portcullis-noauth" "$portcullis_pid" "$work/get.lua" "$p/healthz" >>"$results"
scenario "portcullis-profile" "$portcullis_pid" "$work/get.lua" "$p/api/profile" >>"$results"
# 10 000 distinct valid tokens: one session refreshed 10 000 times (each
# refresh issues a new access token; the earlier ones stay valid).
refresh=$(register "$p" chain@example.com | json_field refresh_token)
: >"$work/tokens.txt"
for _ in $(seq 1 10000); do
  answer=$(curl -fs -X POST "$p/api/auth/refresh" -H 'Content-Type: application/json' -d "{\"refresh_token\":\"$refresh\"}")
  echo "$answer" | json_field access_token >>"$work/tokens.txt"
  refresh=$(echo "$answer" | json_field refresh_token)
done
TOKENS="$work/tokens.txt" scenario "portcullis-profile-10k-tokens" "$portcullis_pid" "$work/many.lua" "$p/api/profile" >>"$results"
# Refresh chains: 128 sessions a round, each chain followed to its end.
chains() { # base file
  for round in $(seq 1 "$ROUNDS"); do
    : >"$2.$round"
    for i in $(seq 1 128); do
      register "$1" "r$round-$i@example.com" | json_field refresh_token >>"$2.$round"
    done
  done
}
chains "$p" "$work/refresh"
CHAINS="$work/refresh" scenario "portcullis-refresh" "$portcullis_pid" "$work/refresh.lua" "$p/api/auth/refresh" >>"$results"
# Logins: bound by argon2id by design. Capacity is cores ÷ one hash; the
# server has one core here, and the hash time is its own start-up
# measurement. Limits and lock-outs are raised for the run (start_portcullis).
hash_seconds=$(curl -fs "$p/metrics" | awk '/^portcullis_password_hash_cost_seconds/ {print $2}')
scenario "portcullis-login" "$portcullis_pid" "$work/login.lua" "$p/api/auth/login" >>"$results"
# Profile p99 at a fixed rate (8 connections, one request per 8 ms each:
# ~1000 req/s), idle and then during a login flood.
DELAY_MS=8 CONNECTIONS=8 scenario "portcullis-profile-paced-idle" "$portcullis_pid" "$work/paced.lua" "$p/api/profile" >>"$results"
flood_rows=()
for _ in $(seq 1 "$ROUNDS"); do
  taskset -c 1 wrk -t1 -c16 -d"$((DURATION + 2))s" -s "$work/login.lua" "$p/api/auth/login" >/dev/null 2>&1 &
  flood=$!
  sleep 1
  flood_rows+=("$(DELAY_MS=8 CONNECTIONS=8 wrk_once "$portcullis_pid" "$work/paced.lua" "$p/api/profile")")
  wait "$flood"
done
printf '%s\n' "${flood_rows[@]}" | median_of | sed "s/^/portcullis-profile-paced-login-flood /" >>"$results"
kill "$portcullis_pid"; wait "$portcullis_pid" 2>/dev/null || true

# Start-up to ready on the existing database (keys, revocations loaded).
start=$(date +%s%N)
env DATA_DIR="$work/data" BIND=127.0.0.1 PORT=$PORTCULLIS_PORT RUST_LOG=warn \
  taskset -c 0 "$portcullis" >"$work/portcullis.log" 2>&1 &
portcullis_pid=$!; pids+=("$portcullis_pid")
until curl -fs -o /dev/null "$p/readyz"; do sleep 0.005; done
startup_ms=$(( ($(date +%s%N) - start) / 1000000 ))
kill "$portcullis_pid"; wait "$portcullis_pid" 2>/dev/null || true

echo "Go baseline…" >&2
start_go
g="http://127.0.0.1:$GO_PORT"
idle_rss_go=$(awk '/VmRSS/ {print $2}' "/proc/$go_pid/status")
TOKEN=$(register "$g" bench@example.com | json_field access_token)
export TOKEN
scenario "go-profile" "$go_pid" "$work/get.lua" "$g/api/profile" >>"$results"
chains "$g" "$work/go-refresh"
CHAINS="$work/go-refresh" scenario "go-refresh" "$go_pid" "$work/refresh.lua" "$g/api/auth/refresh" >>"$results"
kill "$go_pid"; wait "$go_pid" 2>/dev/null || true

value() { awk -v n="$1" -v c="$2" '$1 == n {print $c}' "$results"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
{
  echo "| scenario | requests/s | p50 ms | p99 ms | server CPU µs/request | non-2xx |"
  echo "|---|---:|---:|---:|---:|---:|"
  awk '{printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6}' "$results"
  echo
  echo "- profile vs Go: $(ratio "$(value portcullis-profile 2)" "$(value go-profile 2)")× requests/s"
  echo "- profile with 10 000 tokens vs Go: $(ratio "$(value portcullis-profile-10k-tokens 2)" "$(value go-profile 2)")× requests/s"
  echo "- profile CPU/request vs no-auth route: $(ratio "$(value portcullis-profile 5)" "$(value portcullis-noauth 5)")×"
  echo "- refresh (rotation persisted in SQLite) vs Go (persists nothing): $(ratio "$(value portcullis-refresh 2)" "$(value go-refresh 2)")× requests/s"
  echo "- login: $(value portcullis-login 2) req/s against 1 core ÷ ${hash_seconds} s a hash = $(awk -v h="$hash_seconds" 'BEGIN { printf "%.1f", 1 / h }') req/s: $(ratio "$(value portcullis-login 2)" "$(awk -v h="$hash_seconds" 'BEGIN { print 1 / h }')")×"
  echo "- profile p99 at ~1000 req/s during a login flood vs idle: $(ratio "$(value portcullis-profile-paced-login-flood 4)" "$(value portcullis-profile-paced-idle 4)")× ($(value portcullis-profile-paced-login-flood 4) ms vs $(value portcullis-profile-paced-idle 4) ms)"
  echo "- idle RSS: Portcullis ${idle_rss_portcullis} KiB, Go ${idle_rss_go} KiB"
  echo "- start-up to /readyz 200 on an existing database: ${startup_ms} ms"
  echo
  echo "$ROUNDS rounds of ${DURATION} s, $CONNECTIONS connections, medians; $(date -u +%Y-%m-%d)."
} | tee "$OUT"
