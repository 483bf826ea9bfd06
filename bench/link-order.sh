#!/usr/bin/env bash
# Idle memory of a release build whose start-up code is packed together.
# The kernel maps a binary's text 64 KiB at a time around each page fault,
# so start-up code spread over all 14 MB of .text keeps most of it resident
# in an idle server. This traces which functions start-up and idling run
# (callgrind: a first start on a new database, then a restart on it, each
# to /readyz plus 3 s), relinks the same build with that list as lld's
# --symbol-ordering-file, and prints the idle RSS of both builds, 3 starts
# each, alternating.
#
#   bench/link-order.sh     # about 5 minutes on a warm build cache
#
# Leaves the ordered binary at $CARGO_TARGET_DIR/release/portcullis and the
# list at $CARGO_TARGET_DIR/portcullis.order. x86_64 Linux only, where rustc
# links with lld; needs valgrind (installed if missing). Both builds come
# from the same `cargo rustc` invocation, so their symbol names match the
# trace.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/portcullis/target}"
PORT=18184
order="$CARGO_TARGET_DIR/portcullis.order"
work="$(mktemp -d /tmp/portcullis-link-order.XXXXXX)"
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

source bench/common.sh
need valgrind valgrind
need curl curl

build() { # extra rustc arguments for the binary (deps stay as built)
  cargo rustc --release -q -p portcullis-server --bin portcullis -- "$@"
}

start() { # binary data_dir [wrapper…]
  local binary=$1 dir=$2; shift 2
  env DATA_DIR="$dir" BIND=127.0.0.1 PORT=$PORT RUST_LOG=warn "$@" "$binary" >>"$work/server.log" 2>&1 &
  server=$!
}

stop() { kill -INT "$server"; wait "$server" 2>/dev/null || true; server=""; }

echo "building…" >&2
build
cp "$CARGO_TARGET_DIR/release/portcullis" "$work/default"

echo "tracing start-up under callgrind…" >&2
mkdir -p "$work/traced"
for run in first restart; do
  start "$work/default" "$work/traced" valgrind --tool=callgrind --demangle=no \
    --callgrind-out-file="$work/trace.$run"
  wait_up "http://127.0.0.1:$PORT/readyz" 1200
  sleep 3
  stop
done
# Every function named in the traces that the binary defines, in any order:
# lld places them first, together.
cat "$work"/trace.* | grep -oP '^c?fn=\(\d+\) \K.*' | sort -u >"$work/touched"
nm --defined-only "$work/default" | awk '$2 ~ /^[tTwW]$/ {print $3}' | sort -u >"$work/defined"
comm -12 "$work/touched" "$work/defined" >"$order"
echo "$(wc -l <"$order") functions ran" >&2

echo "relinking with them first…" >&2
build -C link-arg=-Wl,--symbol-ordering-file="$order" -C link-arg=-Wl,--no-warn-symbol-ordering
cp "$CARGO_TARGET_DIR/release/portcullis" "$work/ordered"

rss() { # binary → "VmRSS RssFile" in KiB, 1 s after /readyz on a new database
  rm -rf "$work/data"; mkdir -p "$work/data"
  start "$1" "$work/data" taskset -c 0
  wait_up "http://127.0.0.1:$PORT/readyz"
  sleep 1
  awk '/^VmRSS/ {v=$2} /^RssFile/ {f=$2} END {print v, f}' "/proc/$server/status"
  stop
}

echo "| build | idle VmRSS KiB | of which file pages KiB |"
echo "|---|---:|---:|"
for round in 1 2 3; do
  for build in default ordered; do
    read -r vm file < <(rss "$work/$build")
    echo "| $build (start $round) | $vm | $file |"
  done
done
