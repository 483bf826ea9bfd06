#!/usr/bin/env bash
# HTTP throughput of Portcullis against the classic Go/Gin design, measured in
# one run on this machine: release builds, loopback only, the servers pinned
# to CPU 0 and wrk to CPU 1, every scenario bounded in time. Each round runs
# its scenarios once, Portcullis and Go back to back, so that a ratio
# compares two measurements taken seconds apart (these shared machines
# change speed by up to 2x over minutes); the table shows per-scenario
# medians and each ratio is the median of the per-round ratios. The four
# GET scenarios run in 9 rounds of 4 s, the others in 3 rounds of 10 s.
# Ends with bench/memory.sh (MEMORY=0 skips it).
#
#   bench/run.sh            # all scenarios, about 15 minutes
#   GET_ROUNDS=1 GET_DURATION=2 ROUNDS=1 DURATION=3 DISTINCT=100 MEMORY=0 bench/run.sh   # a dry run
#
# Prints Markdown (and writes it to $OUT, default bench/results.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-64}"
MEMORY="${MEMORY:-1}"
DISTINCT="${DISTINCT:-10000}"
GET_ROUNDS="${GET_ROUNDS:-9}"
GET_DURATION="${GET_DURATION:-4}"
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

source "$root/bench/common.sh"
need wrk wrk
need taskset util-linux
need curl curl

echo "building the release server and the Go baseline…" >&2
cargo build --release -q --bin portcullis
portcullis="$CARGO_TARGET_DIR/release/portcullis"
go_server="$(bash ../shared/baseline/go-gin-jwt/build.sh 2>/dev/null | tail -n 1)"

PORTCULLIS_PORT=18181
GO_PORT=18182

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
  wait_listening "http://127.0.0.1:$GO_PORT/"
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

# One measurement: "scenario round requests/s p50 p99 µs_cpu non_2xx".
measure() { # name round pid script url [wrk args…]
  local name=$1 round=$2; shift 2
  echo "$name $round $(wrk_once "$@")" >>"$results"
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

results="$work/results.txt"
: >"$results"

echo "starting both servers…" >&2
start_portcullis
p="http://127.0.0.1:$PORTCULLIS_PORT"
idle_rss_portcullis=$(awk '/VmRSS/ {print $2}' "/proc/$portcullis_pid/status")
start_go
g="http://127.0.0.1:$GO_PORT"
idle_rss_go=$(awk '/VmRSS/ {print $2}' "/proc/$go_pid/status")
portcullis_token=$(register "$p" bench@example.com | json_field access_token)
go_token=$(register "$g" bench@example.com | json_field access_token)

echo "preparing tokens…" >&2
refreshed_tokens "$p" "$(register "$p" chain@example.com | json_field refresh_token)" "$DISTINCT" "$work/tokens.txt"
# Refresh chains: 128 sessions a round on each server, each chain followed
# to its end within its round.
chains() { # base file
  for round in $(seq 1 "$ROUNDS"); do
    : >"$2.$round"
    for i in $(seq 1 128); do
      register "$1" "r$round-$i@example.com" | json_field refresh_token >>"$2.$round"
    done
  done
}
chains "$p" "$work/refresh"
chains "$g" "$work/go-refresh"
# Logins: bound by argon2id by design. Capacity is cores ÷ one hash; the
# server has one core here, and the hash time is the mean CPU time of the
# hashes it ran during the run (read after the rounds). Limits and lock-outs
# are raised for the run (start_portcullis).

# Every distinct token verified once before the rounds: the rounds measure
# the verified-token cache, not the first verification of each token.
TOKENS="$work/tokens.txt" taskset -c 1 wrk -t1 -c8 -d"$(( DISTINCT / 2000 + 1 ))s" -s "$root/bench/many-tokens.lua" "$p/api/profile" >/dev/null
# The four GET scenarios are compared with each other: short rounds keep
# the four measurements of a round within seconds of each other, and more
# rounds make the median of the per-round ratios steadier.
for round in $(seq 1 "$GET_ROUNDS"); do
  echo "GET round $round of $GET_ROUNDS…" >&2
  DURATION=$GET_DURATION TOKEN=$portcullis_token measure portcullis-noauth "$round" "$portcullis_pid" "$work/get.lua" "$p/healthz"
  DURATION=$GET_DURATION TOKEN=$portcullis_token measure portcullis-profile "$round" "$portcullis_pid" "$work/get.lua" "$p/api/profile"
  DURATION=$GET_DURATION TOKEN=$go_token measure go-profile "$round" "$go_pid" "$work/get.lua" "$g/api/profile"
  DURATION=$GET_DURATION TOKENS="$work/tokens.txt" measure portcullis-profile-distinct-tokens "$round" "$portcullis_pid" "$root/bench/many-tokens.lua" "$p/api/profile"
done
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round of $ROUNDS…" >&2
  REFRESH="$work/refresh.$round" measure portcullis-refresh "$round" "$portcullis_pid" "$root/bench/refresh.lua" "$p/api/auth/refresh"
  REFRESH="$work/go-refresh.$round" measure go-refresh "$round" "$go_pid" "$root/bench/refresh.lua" "$g/api/auth/refresh"
  measure portcullis-login "$round" "$portcullis_pid" "$work/login.lua" "$p/api/auth/login"
  # Profile p99 at a fixed rate (8 connections, one request per 8 ms each:
  # ~1000 req/s), idle and then during a login flood.
  TOKEN=$portcullis_token DELAY_MS=8 CONNECTIONS=8 measure portcullis-profile-paced-idle "$round" "$portcullis_pid" "$work/paced.lua" "$p/api/profile"
  taskset -c 1 wrk -t1 -c16 -d"$((DURATION + 2))s" -s "$work/login.lua" "$p/api/auth/login" >/dev/null 2>&1 &
  flood=$!
  sleep 1
  TOKEN=$portcullis_token DELAY_MS=8 CONNECTIONS=8 measure portcullis-profile-paced-login-flood "$round" "$portcullis_pid" "$work/paced.lua" "$p/api/profile"
  wait "$flood"
done
hash_seconds=$(curl -fs "$p/metrics" | awk '
  /^portcullis_password_hash_cpu_seconds_sum/ {s = $2} /^portcullis_password_hash_cpu_seconds_count/ {c = $2}
  END {printf "%.4f", (c > 0 ? s / c : 0)}')
kill "$portcullis_pid" "$go_pid"; wait "$portcullis_pid" "$go_pid" 2>/dev/null || true

# Start-up to ready on the existing database (keys, revocations loaded).
startups=()
for _ in $(seq 1 "$ROUNDS"); do
  start=$(date +%s%N)
  env DATA_DIR="$work/data" BIND=127.0.0.1 PORT=$PORTCULLIS_PORT RUST_LOG=warn \
    taskset -c 0 "$portcullis" >"$work/portcullis.log" 2>&1 &
  portcullis_pid=$!; pids+=("$portcullis_pid")
  until curl -fs -o /dev/null "$p/readyz"; do sleep 0.005; done
  startups+=("$(( ($(date +%s%N) - start) / 1000000 ))")
  kill "$portcullis_pid"; wait "$portcullis_pid" 2>/dev/null || true
done
startup_ms=$(printf '%s\n' "${startups[@]}" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')

median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
# Median of column $2 (3 = requests/s … 7 = non-2xx) of scenario $1.
value() { awk -v n="$1" -v c="$2" '$1 == n {print $c}' "$results" | median; }
# Median over the rounds of scenario $1's column $3 divided by scenario
# $2's column $4 in the same round.
ratio() {
  awk -v a="$1" -v b="$2" -v ca="$3" -v cb="$4" '
    $1 == a {x[$2] = $ca} $1 == b {y[$2] = $cb}
    END {for (r in x) if (y[r] > 0) printf "%.2f\n", x[r] / y[r]}' "$results" | median
}
{
  echo "| scenario | requests/s | p50 ms | p99 ms | server CPU µs/request | non-2xx |"
  echo "|---|---:|---:|---:|---:|---:|"
  for n in $(awk '{print $1}' "$results" | awk '!seen[$1]++'); do
    echo "| $n | $(value "$n" 3) | $(value "$n" 4) | $(value "$n" 5) | $(value "$n" 6) | $(value "$n" 7) |"
  done
  echo
  echo "Ratios: median over the rounds of each round's own ratio."
  echo
  echo "- profile vs Go: $(ratio portcullis-profile go-profile 3 3)× requests/s"
  echo "- profile with $DISTINCT distinct tokens vs Go: $(ratio portcullis-profile-distinct-tokens go-profile 3 3)× requests/s"
  echo "- profile CPU/request vs no-auth route: $(ratio portcullis-profile portcullis-noauth 6 6)× ($DISTINCT distinct tokens: $(ratio portcullis-profile-distinct-tokens portcullis-noauth 6 6)×)"
  echo "- refresh (rotation persisted in SQLite) vs Go (persists nothing): $(ratio portcullis-refresh go-refresh 3 3)× requests/s"
  echo "- login: $(value portcullis-login 3) req/s against 1 core ÷ ${hash_seconds} s CPU a hash (mean over the run) = $(awk -v h="$hash_seconds" 'BEGIN { printf "%.1f", 1 / h }') req/s: $(awk -v l="$(value portcullis-login 3)" -v h="$hash_seconds" 'BEGIN { printf "%.2f", l * h }')×"
  echo "- profile p99 at ~1000 req/s during a login flood vs idle: $(ratio portcullis-profile-paced-login-flood portcullis-profile-paced-idle 5 5)×"
  echo "- idle RSS: Portcullis ${idle_rss_portcullis} KiB, Go ${idle_rss_go} KiB"
  echo "- start-up to /readyz 200 on an existing database: ${startup_ms} ms (median of ${ROUNDS})"
  echo
  echo "GET scenarios: $GET_ROUNDS rounds of ${GET_DURATION} s; the others: $ROUNDS rounds of ${DURATION} s; $CONNECTIONS connections; $(date -u +%Y-%m-%d)."
  if [ "$MEMORY" != 0 ]; then
    echo
    bash "$root/bench/memory.sh"
  fi
} | tee "$OUT"
