#!/usr/bin/env bash
# bench/profile.sh: where tinyapi's time goes serving GET /alwaysok on keep-alive connections.
#
#   bench/profile.sh [--duration SECS] [--bin PATH] [--out FILE]
#
# Builds a copy of the release binary that keeps its symbols (target/bench-profile; the shipped
# binary is stripped), runs it with one worker pinned to CPU 0 and wrk (64 connections) pinned
# to CPU 1, and reports:
#   - system calls per request (strace -c -f), keep-alive and one connection per request;
#   - context switches and page faults per request (perf stat, software counters);
#   - the hottest functions, user and kernel (perf record -e cpu-clock).
# Installs wrk, strace and perf from Debian's packages when missing. Writes bench/profile.md.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
duration=${BENCH_DURATION:-5}
bin=${TINYAPI_BIN:-}
out=$here/profile.md
conns=64

while [ $# -gt 0 ]; do
    case $1 in
        --duration) duration=${2:?}; shift ;;
        --bin) bin=${2:?}; shift ;;
        --out) out=${2:?}; shift ;;
        -h | --help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "profile: unknown option '$1'" >&2; exit 2 ;;
    esac
    shift
done
[[ $duration =~ ^[0-9]+$ ]] && [ "$duration" -ge 1 ] || { echo "profile: bad duration" >&2; exit 2; }

log() { echo "profile: $*" >&2; }

# As in run.sh: round-robin real-time scheduling keeps other load on the machine out of the way.
boost=()
[ "$(id -u)" = 0 ] && boost=(chrt -r 1)

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v strace >/dev/null || need+=(strace)
command -v perf >/dev/null || need+=(linux-perf)
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

if [ -z "$bin" ]; then
    log "building the release binary with symbols"
    (cd "$root" && CARGO_PROFILE_RELEASE_STRIP=false CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
        cargo build --release --target-dir "$root/target/bench-profile" >&2)
    bin=$(find "$root/target/bench-profile" -path '*/release/tinyapi' -type f -perm -u+x | head -1)
fi
[ -x "$bin" ] || { echo "profile: no binary at '$bin'" >&2; exit 2; }

work=$(mktemp -d /tmp/tinyapi-profile.XXXXXX)
server=
cleanup() {
    [ -n "$server" ] && kill -KILL "$server" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

port() { python3 "$here/tools.py" freeport; }

# wrk_run PORT SECS [wrk options]: prints the number of requests completed.
wrk_run() {
    local p=$1 secs=$2
    shift 2
    local opts=() script=()
    while [ $# -gt 0 ]; do
        [ "$1" = -- ] && { script=("$@"); break; }
        opts+=("$1")
        shift
    done
    timeout $((secs * 2 + 10)) taskset -c 1 "${boost[@]}" wrk -t1 -c"$conns" -d"${secs}s" -s "$here/wrk.lua" \
        "${opts[@]}" "http://127.0.0.1:$p/alwaysok" "${script[@]}" |
        sed -n 's/^BENCH requests=\([0-9]*\).*/\1/p'
}

# start_server [WRAPPER...]: starts tinyapi pinned to CPU 0 under WRAPPER; sets server, p.
start_server() {
    p=$(port)
    taskset -c 0 "${boost[@]}" "$@" "$bin" --workers 1 --quiet --listen "127.0.0.1:$p" >/dev/null 2>"$work/server.err" &
    server=$!
    python3 "$here/tools.py" wait "$p" 20 || { log "server did not start"; cat "$work/server.err" >&2; exit 1; }
}

# Signals the server itself: under strace, $server is strace and the server its child.
stop_server() {
    local target
    target=$(ps -o pid= --ppid "$server" -o comm= | awk '$2 == "tinyapi" { print $1; exit }' || true)
    kill -TERM "${target:-$server}" 2>/dev/null || true
    local i
    for i in $(seq 50); do
        kill -0 "$server" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=
}

# The server's own request count, less the probes that ran before the load.
served() { python3 "$here/tools.py" get "$1" /healthcheck | sed -n 's/.*"requests":\([0-9]*\).*/\1/p'; }

# syscalls TITLE [wrk options]: strace -c over one bounded wrk run.
syscalls() {
    local title=$1
    shift
    start_server strace -c -f -o "$work/strace.txt"
    local before after n
    before=$(served "$p")
    wrk_run "$p" "$duration" "$@" >/dev/null
    after=$(served "$p")
    n=$((after - before - 1))
    stop_server
    echo "### System calls per request: $title"
    echo
    echo "strace -c -f over $n requests (tracing slows the server; the counts are what matter)."
    echo
    echo "| system call | calls | per request |"
    echo "|---|---:|---:|"
    awk -v n="$n" '$1 ~ /^[0-9.]+$/ && NF >= 5 {
            name = $NF; calls = $4
            if (name == "total") { total = calls; next }
            printf "| %s | %d | %.3f |\n", name, calls, calls / n
        }
        $1 == "100.00" { total = $3 }
        END { if (total) printf "| **total** | %d | %.3f |\n", total, total / n }' "$work/strace.txt"
    echo
}

{
    echo "# Where tinyapi's time goes"
    echo
    echo "Machine: nproc $(nproc), $(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(uname -sr); $(date -u '+%Y-%m-%d %H:%M UTC')."
    echo "Binary: $("$bin" --version 2>/dev/null | head -1), with symbols. One worker on CPU 0, wrk with $conns connections on CPU 1."
    echo
} >"$out"

log "strace, keep-alive"
syscalls "keep-alive, $conns connections" >>"$out"
log "strace, one connection per request"
syscalls "a new connection per request" -H "Connection: close" >>"$out"
log "strace, pipelined"
syscalls "16-deep pipelining" -- 16 >>"$out"

log "perf stat and perf record, keep-alive"
start_server
perf stat -e task-clock,context-switches,cpu-migrations,page-faults -p "$server" -o "$work/stat.txt" \
    -- sleep "$duration" &
stat_pid=$!
before=$(served "$p")
n=$(wrk_run "$p" "$duration")
wait "$stat_pid" || true
perf record -q -e cpu-clock -F 4999 -g -p "$server" -o "$work/perf.data" -- sleep "$duration" \
    >/dev/null 2>&1 &
rec_pid=$!
wrk_run "$p" "$duration" >/dev/null
wait "$rec_pid" || true
stop_server
{
    echo "### Counters, keep-alive (perf stat, software events)"
    echo
    echo "$n requests in ${duration} s."
    echo
    echo "| counter | total | per request |"
    echo "|---|---:|---:|"
    awk -v n="$n" '$2 ~ /^(task-clock|context-switches|cpu-migrations|page-faults)$/ {
            v = $1; gsub(",", "", v)
            if ($2 == "task-clock") printf "| task-clock (ms) | %.0f | %.2f µs |\n", v, v * 1000 / n
            else printf "| %s | %d | %.4f |\n", $2, v, v / n
        }' "$work/stat.txt"
    echo
    echo "### Hottest functions, keep-alive (perf record -e cpu-clock, self time)"
    echo
    echo '```'
    perf report -i "$work/perf.data" --no-children --stdio --sort dso,sym --percent-limit 1 2>/dev/null |
        grep -E '^ +[0-9]' | head -40
    echo '```'
    echo
    echo "### Share of samples by place"
    echo
    echo '```'
    perf report -i "$work/perf.data" --no-children --stdio --sort dso 2>/dev/null | grep -E '^ +[0-9]' | head -10
    echo '```'
    echo
    echo "### Heaviest kernel paths entered from tinyapi (perf record -g, caller view)"
    echo
    echo '```'
    perf report -i "$work/perf.data" --children --stdio --sort sym --percent-limit 5 -g none 2>/dev/null |
        grep -E '^ +[0-9]' | head -30
    echo '```'
} >>"$out"
cat "$out"
