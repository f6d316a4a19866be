#!/usr/bin/env bash
# bench/profile.sh: where tinyapi's time goes serving GET /alwaysok, next to nginx.
#
#   bench/profile.sh [--duration SECS] [--bin PATH] [--out FILE]
#
# Builds a copy of the release binary that keeps its symbols (target/bench-profile; the shipped
# binary is stripped) unless --bin is given, runs it with one worker pinned to CPU 0 and wrk
# (64 connections, one thread) pinned to CPU 1, and nginx (one worker) the same way, and reports:
#   - system calls per request, counted by the kernel's syscall tracepoints (perf stat), which
#     unlike strace do not slow the server: keep-alive, a new connection per request, pipelined;
#   - CPU time and context switches per request (perf stat, software counters);
#   - tinyapi's hottest functions, user and kernel (perf record -e cpu-clock).
# Needs root (perf on another process, tracepoints). Installs wrk, nginx and perf from Debian's
# packages when missing. Writes bench/profile.md and prints it.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
duration=${BENCH_DURATION:-5}
bin=${TINYAPI_BIN:-}
out=$here/profile.md
conns=64

while [ $# -gt 0 ]; do
    case $1 in
        --duration) duration=${2:?--duration needs a value}; shift ;;
        --bin) bin=${2:?--bin needs a value}; shift ;;
        --out) out=${2:?--out needs a value}; shift ;;
        -h | --help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "profile: unknown option '$1'" >&2; exit 2 ;;
    esac
    shift
done
[[ $duration =~ ^[0-9]+$ ]] && [ "$duration" -ge 1 ] || { echo "profile: bad duration" >&2; exit 2; }

log() { echo "profile: $*" >&2; }

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v perf >/dev/null || need+=(linux-perf)
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    policy=/usr/sbin/policy-rc.d
    made_policy=0
    # The nginx package starts the system service on install: only our own is wanted.
    [ -e $policy ] || { printf '#!/bin/sh\nexit 101\n' >$policy && chmod +x $policy && made_policy=1; }
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
    [ $made_policy = 1 ] && rm -f $policy
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

if [ -z "$bin" ]; then
    log "building the release binary with symbols"
    (cd "$root" && CARGO_PROFILE_RELEASE_STRIP=false CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
        cargo build --release --target-dir "$root/target/bench-profile" >&2)
    bin=$(find "$root/target/bench-profile" -path '*/release/tinyapi' -type f -perm -u+x | head -1)
fi
[ -x "$bin" ] || { echo "profile: no binary at '$bin'" >&2; exit 2; }

# As in run.sh: round-robin real-time scheduling keeps other load on the machine out of the way.
boost=()
[ "$(id -u)" = 0 ] && boost=(chrt -r 1)

work=$(mktemp -d /tmp/tinyapi-profile.XXXXXX)
server=
cleanup() {
    [ -n "$server" ] && kill -KILL "$server" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# wrk_run PORT SECS [wrk options] [-- script args]: prints the number of requests completed.
wrk_run() {
    local p=$1 secs=$2
    shift 2
    local opts=() script=()
    while [ $# -gt 0 ]; do
        [ "$1" = -- ] && { script=("$@"); break; }
        opts+=("$1")
        shift
    done
    timeout $((secs * 2 + 10)) taskset -c 1 "${boost[@]}" wrk -t1 -c"$conns" -d"${secs}s" \
        -s "$here/wrk.lua" "${opts[@]}" "http://127.0.0.1:$p/alwaysok" "${script[@]}" |
        sed -n 's/^BENCH requests=\([0-9]*\).*/\1/p'
}

# start KIND: starts tinyapi or nginx pinned to CPU 0; sets server (the PID to stop), busy (the
# PID doing the work: nginx's worker) and p (the port).
start() {
    p=$(python3 "$here/tools.py" freeport)
    if [ "$1" = tinyapi ]; then
        taskset -c 0 "${boost[@]}" "$bin" --workers 1 --quiet --listen "127.0.0.1:$p" \
            >/dev/null 2>"$work/server.err" &
    else
        mkdir -p "$work/nginx/logs" "$work/nginx/tmp"
        cat >"$work/nginx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
worker_rlimit_nofile 65536;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log warn;
events { worker_connections 16384; use epoll; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $work/nginx/tmp/body;
    proxy_temp_path $work/nginx/tmp/proxy;
    fastcgi_temp_path $work/nginx/tmp/fastcgi;
    uwsgi_temp_path $work/nginx/tmp/uwsgi;
    scgi_temp_path $work/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$p backlog=4096;
        location = /alwaysok { default_type application/json; return 200 '{ "status": "OK" }'; }
    }
}
EOF
        taskset -c 0 "${boost[@]}" "$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" \
            -e "$work/nginx/logs/error.log" >/dev/null 2>"$work/server.err" &
    fi
    server=$!
    python3 "$here/tools.py" wait "$p" 10 || { log "$1 did not start"; cat "$work/server.err" >&2; exit 1; }
    busy=$server
    if [ "$1" = nginx ]; then
        busy=$(ps -o pid= --ppid "$server" | head -1 | tr -d ' ')
    fi
}

stop() {
    kill -TERM "$server" 2>/dev/null || true
    local i
    for i in $(seq 50); do
        kill -0 "$server" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=
}

calls=(accept4 recvfrom read sendto writev write close shutdown epoll_ctl epoll_wait epoll_pwait setsockopt)
events=raw_syscalls:sys_enter
for c in "${calls[@]}"; do events+=",syscalls:sys_enter_$c"; done

# count TITLE [wrk options]: one line of the syscall table for the running server.
count() {
    local title=$1 n
    shift
    perf stat -x, -e "$events,task-clock,context-switches" -p "$busy" -o "$work/stat.csv" \
        -- sleep $((duration + 1)) &
    local stat_pid=$!
    sleep 0.3
    n=$(wrk_run "$p" "$duration" "$@")
    wait "$stat_pid" || true
    awk -F, -v n="$n" -v title="$title" '
        { v[$3] = $1 }
        END {
            line = "| " title " | " n
            split("accept4 recvfrom read sendto writev write close shutdown epoll_ctl epoll_wait epoll_pwait setsockopt", c, " ")
            for (i = 1; i <= 12; i++) {
                x = v["syscalls:sys_enter_" c[i]] + 0
                line = line " | " (x ? sprintf("%.2f", x / n) : "")
            }
            line = line sprintf(" | **%.2f** | %.2f | %.3f |", v["raw_syscalls:sys_enter"] / n,
                v["task-clock"] * 1000 / n, v["context-switches"] / n)
            print line
        }' "$work/stat.csv"
}

{
    echo "# Where tinyapi's time goes"
    echo
    echo "Machine: nproc $(nproc), $(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(uname -sr); $(date -u '+%Y-%m-%d %H:%M UTC')."
    echo "tinyapi: $("$bin" --version 2>/dev/null | head -1) (with symbols), one worker; nginx $("$nginx_bin" -v 2>&1 | sed 's|.*nginx/||'), one worker."
    echo "Server on CPU 0, wrk ($conns connections, one thread) on CPU 1, ${duration} s per line."
    echo
    echo "## System calls per request"
    echo
    echo "Counted with the kernel's syscall tracepoints (perf stat), which do not slow the server."
    echo "CPU µs/req here is perf's task-clock of the serving process (nginx: its worker)."
    echo
    printf '| server, load | requests |'
    for c in "${calls[@]}"; do printf ' %s |' "$c"; done
    echo ' all | CPU µs/req | context switches/req |'
    printf '|---|---:|'
    for c in "${calls[@]}"; do printf -- '---:|'; done
    echo '---:|---:|---:|'
} >"$out"

for kind in tinyapi nginx; do
    log "$kind: system calls per request"
    start $kind
    {
        count "$kind, keep-alive"
        count "$kind, new connection per request" -H "Connection: close"
        count "$kind, pipelined x16" -- 16
    } >>"$out"
    stop
done

log "tinyapi: perf record, keep-alive"
start tinyapi
perf record -q -e cpu-clock -F 4999 -g -p "$server" -o "$work/perf.data" -- sleep "$duration" \
    >/dev/null 2>&1 &
rec_pid=$!
wrk_run "$p" "$duration" >/dev/null
wait "$rec_pid" || true
stop
{
    echo
    echo "## tinyapi, keep-alive: where the CPU time goes (perf record -e cpu-clock)"
    echo
    echo "By place:"
    echo
    echo '```'
    perf report -i "$work/perf.data" --no-children --stdio --sort dso 2>/dev/null | grep -E '^ +[0-9]' | head -10
    echo '```'
    echo
    echo "Hottest functions (self time, ≥ 1%):"
    echo
    echo '```'
    perf report -i "$work/perf.data" --no-children --stdio --sort dso,sym --percent-limit 1 -g none \
        2>/dev/null | grep -E '^ +[0-9]' | head -40
    echo '```'
    echo
    echo "tinyapi's own functions (self time, share of all samples):"
    echo
    echo '```'
    perf report -i "$work/perf.data" --no-children --stdio --dsos tinyapi --sort sym -g none \
        --percent-limit 0.1 2>/dev/null | grep -E '^ +[0-9]' | head -20
    echo '```'
    echo
    echo "Heaviest paths including callees (≥ 5%):"
    echo
    echo '```'
    perf report -i "$work/perf.data" --children --stdio --sort sym --percent-limit 5 -g none \
        2>/dev/null | grep -E '^ +[0-9]' | head -30
    echo '```'
} >>"$out"
cat "$out"
