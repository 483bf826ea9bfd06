#!/usr/bin/env bash
# User-space instructions per request, counted by callgrind: deterministic
# where wall-clock time on these shared machines moves by up to 2x within
# minutes, so it decides between two builds of a hot path. Counts only
# while wrk runs (not start-up, not the token's registration).
#
#   bench/instructions.sh                         # the current release build
#   bench/instructions.sh OLD_BINARY NEW_BINARY   # the same runs for each
#   DISTINCT=10000 bench/instructions.sh          # round-robin over that many tokens
#   ROUTE=/api/auth/refresh bench/instructions.sh # refresh chains (bench/refresh.lua)
#
# Prints "binary route tokens instructions/request" per binary. Needs
# valgrind and wrk (installed if missing); loopback only, about 30 s a binary
# (more with DISTINCT: the tokens come from refreshes, ~200 a second).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/portcullis/target}"
ROUTE="${ROUTE:-/api/profile}"
DISTINCT="${DISTINCT:-1}"
DURATION="${DURATION:-5}"
PORT=18183

source bench/common.sh
scratch portcullis-instructions
need valgrind valgrind
need callgrind_control valgrind
need wrk wrk
need curl curl

if [ $# -eq 0 ]; then
  cargo build --release -q --bin portcullis
  set -- "$CARGO_TARGET_DIR/release/portcullis"
fi

many="$PWD/bench/many-tokens.lua"
refresh="$PWD/bench/refresh.lua"

count() { # binary
  local base="http://127.0.0.1:$PORT" out="$work/callgrind.out"
  rm -rf "$work/data" "$out"*; mkdir -p "$work/data"
  env DATA_DIR="$work/data" BIND=127.0.0.1 PORT=$PORT RUST_LOG=warn \
    SIGNUP_RATE_PER_ADDRESS=1000000/s \
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" "$1" \
    >"$work/server.log" 2>&1 &
  server=$!
  wait_up "$base/readyz" 1200 # valgrind starts slowly
  if [ "$ROUTE" = /api/auth/refresh ]; then
    # 64 chains to warm up on and 64 others to count (a chain spent in the
    # warm-up would be a replay, and then reuse, when counted).
    : >"$work/warm.txt"; : >"$work/chains.txt"
    for i in $(seq 1 64); do
      register "$base" "w$i@example.com" | json_field refresh_token >>"$work/warm.txt"
      register "$base" "c$i@example.com" | json_field refresh_token >>"$work/chains.txt"
    done
    REFRESH="$work/warm.txt" wrk -t1 -c16 -d2s -s "$refresh" "$base$ROUTE" >/dev/null
    callgrind_control -i on "$server" >/dev/null 2>&1
    REFRESH="$work/chains.txt" wrk -t1 -c16 -d"${DURATION}s" -s "$refresh" "$base$ROUTE" >"$work/wrk.out"
  else
    refreshed_tokens "$base" "$(register "$base" bench@example.com | json_field refresh_token)" "$DISTINCT" "$work/tokens.txt"
    # Once over every token first, so both builds count the same cache state.
    TOKENS="$work/tokens.txt" wrk -t1 -c1 -d"$(( DISTINCT / 500 + 1 ))s" -s "$many" "$base$ROUTE" >/dev/null
    callgrind_control -i on "$server" >/dev/null 2>&1
    TOKENS="$work/tokens.txt" wrk -t1 -c8 -d"${DURATION}s" -s "$many" "$base$ROUTE" >"$work/wrk.out"
  fi
  callgrind_control -i off "$server" >/dev/null 2>&1
  callgrind_control -d "$server" >/dev/null 2>&1
  kill "$server"; wait "$server" 2>/dev/null || true; server=""
  [ -z "${KEEP:-}" ] || cp "$(ls "$out".* | head -n 1)" "$KEEP.$(basename "$1")"
  local requests errors total
  requests=$(awk '/requests in/ {print $1}' "$work/wrk.out")
  errors=$(awk '/Non-2xx/ {print $NF}' "$work/wrk.out")
  [ -z "$errors" ] || { echo "$1: $errors answers were not 2xx" >&2; exit 1; }
  total=$(callgrind_annotate "$(ls "$out".* | head -n 1)" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  echo "$1 $ROUTE $DISTINCT $(( total / requests ))"
}

for binary in "$@"; do count "$binary"; done
