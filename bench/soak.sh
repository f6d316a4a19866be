#!/usr/bin/env bash
# bench/soak.sh: tinyapi under full load for a fixed time, with RSS sampled throughout.
#
#   bench/soak.sh               60 s of wrk (256 connections, keep-alive) against --workers 1
#   bench/soak.sh --secs 10     a shorter soak (CI)
#
# Passes (exit 0) when wrk reports no socket errors and no non-2xx answers, the server is
# still running, and its RSS at the end is within 16 kB of the RSS after the first 5 s (RSS
# must stay flat: nothing grows per request or per connection). Prints the samples.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
secs=60
conns=256
while (($#)); do
    case "$1" in
        --secs) secs=$2; shift ;;
        --connections) conns=$2; shift ;;
        *) echo "usage: bench/soak.sh [--secs N] [--connections N]" >&2; exit 2 ;;
    esac
    shift
done

if ! command -v wrk >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
(cd "$repo" && cargo build --release -q)
bin=$repo/target/x86_64-unknown-linux-musl/release/tinyapi

ulimit -n 65536 2>/dev/null || true
port=$(python3 "$here/tools.py" freeport)
"$bin" --workers 1 --quiet --listen "127.0.0.1:$port" >/dev/null &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
python3 "$here/tools.py" wait "$port" 10

rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
out=$(mktemp)
wrk -t1 -c"$conns" -d"${secs}s" --timeout 5s "http://127.0.0.1:$port/alwaysok" >"$out" 2>&1 &
wrk_pid=$!
samples=()
sleep 5
first=$(rss)
samples+=("$first")
while kill -0 "$wrk_pid" 2>/dev/null; do
    sleep 5
    if [[ -r /proc/$pid/status ]]; then samples+=("$(rss)"); fi
done
wait "$wrk_pid" || true
last=$(rss)
cat "$out"
echo "RSS every 5 s (kB): ${samples[*]} $last"

fail=0
if grep -q "Socket errors" "$out"; then echo "FAIL: socket errors"; fail=1; fi
if grep -q "Non-2xx" "$out"; then echo "FAIL: non-2xx answers"; fail=1; fi
if ! kill -0 "$pid" 2>/dev/null; then echo "FAIL: the server died"; fail=1; fi
if ((last - first > 16)); then echo "FAIL: RSS grew from $first kB to $last kB"; fail=1; fi
requests=$(awk '/requests in/ {print $1}' "$out")
echo "soak: $requests requests in ${secs} s, RSS $first -> $last kB"
rm -f "$out"
if ((fail)); then exit 1; fi
echo "soak: PASS"
