#!/usr/bin/env bash
# Idle memory of the release server with and without its start-up code
# packed together. The kernel maps a binary's code 64 KiB at a time around
# each page fault, so start-up code spread over all 14 MB of .text keeps
# most of it resident in an idle server. Release builds on x86_64 Linux
# link the functions listed in crates/portcullis-server/link-order.txt
# first (lld's --symbol-ordering-file, see that crate's build.rs).
#
#   bench/link-order.sh           # idle RSS of both builds, 3 starts each, alternating
#   bench/link-order.sh --write   # first re-trace start-up and rewrite the list
#
# --write traces which functions a first start on a new database and a
# restart on it run (callgrind, each to /readyz plus 3 s); redo it after a
# dependency or toolchain upgrade or a change to start-up code, when the
# "still defined" count printed here drops (a stale list links fine,
# without the gain). About 5 minutes on a warm build cache (two release
# builds of the server crate); needs valgrind for --write (installed if
# missing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/portcullis/target}"
PORT=18184
list="$PWD/crates/portcullis-server/link-order.txt"

source bench/common.sh
scratch portcullis-link-order
need curl curl

build() { # as → copies the release binary to $work/as; env assignments after it
  local as=$1; shift
  env "$@" cargo build --release -q --bin portcullis
  cp "$CARGO_TARGET_DIR/release/portcullis" "$work/$as"
}

start() { # binary data_dir [wrapper…]
  local binary=$1 dir=$2; shift 2
  env DATA_DIR="$dir" BIND=127.0.0.1 PORT=$PORT RUST_LOG=warn "$@" "$binary" >>"$work/server.log" 2>&1 &
  server=$!
}

stop() { kill -INT "$server"; wait "$server" 2>/dev/null || true; server=""; }

# The functions a binary defines, one a line, sorted (as `comm` wants them).
defined_functions() { nm --defined-only "$1" | awk '$2 ~ /^[tTwW]$/ {print $3}' | sort -u; }

echo "building without the list…" >&2
build unpacked PORTCULLIS_LINK_ORDER=0

if [ "${1:-}" = "--write" ]; then
  need valgrind valgrind
  echo "tracing start-up under callgrind…" >&2
  mkdir -p "$work/traced"
  for run in first restart; do
    start "$work/unpacked" "$work/traced" valgrind --tool=callgrind --demangle=no \
      --callgrind-out-file="$work/trace.$run"
    wait_up "http://127.0.0.1:$PORT/readyz" 1200
    sleep 3
    stop
  done
  # Every function named in the traces that the binary defines; lld places
  # them first, together, in this (sorted) order.
  cat "$work"/trace.* | grep -oP '^c?fn=\(\d+\) \K.*' | sort -u >"$work/touched"
  defined_functions "$work/unpacked" >"$work/defined"
  comm -12 "$work/touched" "$work/defined" >"$list"
fi

echo "building with the list…" >&2
build packed
defined_functions "$work/packed" >"$work/defined"
echo "$(comm -12 "$list" "$work/defined" | wc -l) of the $(wc -l <"$list") listed functions still defined by the build" >&2

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
  for build in unpacked packed; do
    read -r vm file < <(rss "$work/$build")
    echo "| $build (start $round) | $vm | $file |"
  done
done
