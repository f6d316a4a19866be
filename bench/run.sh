#!/usr/bin/env bash
# bench/run.sh: tinyapi and nginx serving GET /alwaysok over 127.0.0.1, measured side by side.
#
#   bench/run.sh            full run: 10 s per run, 3 alternating rounds (about 10 minutes)
#   bench/run.sh --smoke    every scenario once for 1 s (under 2 minutes; for CI)
#
# Options (environment variable in brackets):
#   --duration SECS     length of each measured run [BENCH_DURATION]
#   --rounds N          alternating rounds per scenario [BENCH_ROUNDS]
#   --warmup SECS       unmeasured load on each server before a scenario, 0 = none [BENCH_WARMUP]
#   --connections N     wrk connections [BENCH_CONNECTIONS], default 64
#   --depth N           requests per pipelined write [BENCH_DEPTH], default 16
#   --priority MODE     how servers and wrk are scheduled [BENCH_PRIORITY]: rt (SCHED_RR, the
#                       default as root: other processes on a shared machine then delay them
#                       least; round-robin, not FIFO, so that wrk's timer thread still runs when
#                       its event loop spins), nice (niceness -10), none (default for others)
#   --only LIST         run only these scenarios, comma-separated (ka,close,pipe,log,mc,memory)
#   --bin PATH          benchmark this tinyapi binary instead of building one [TINYAPI_BIN]
#   --out FILE          where the markdown report is also written; default bench/results.md
#                       (bench/results-smoke.md with --smoke)
#
# Scenarios, all GET /alwaysok on 127.0.0.1, the server pinned to CPU 0 and wrk (one thread) to
# CPU 1 unless said otherwise:
#   ka     keep-alive, N connections
#   close  a new connection per request (wrk -H "Connection: close")
#   pipe   DEPTH requests per write on keep-alive connections (bench/wrk.lua)
#   log    tinyapi with the access log off, to /dev/null and to a file
#   mc     unpinned, wrk with 2 threads: tinyapi --workers 1 and 2, nginx worker_processes 2
#   memory VmRSS idle and while holding 1,000 and 10,000 idle keep-alive connections
#
# Prints a markdown report on stdout (progress goes to stderr). Exits non-zero when a server
# failed to start or died, wrk failed, or tinyapi answered with errors of any kind.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
tools=("python3" "$here/tools.py")

mode=full
duration=${BENCH_DURATION:-}
rounds=${BENCH_ROUNDS:-}
warmup=${BENCH_WARMUP:-}
conns=${BENCH_CONNECTIONS:-64}
depth=${BENCH_DEPTH:-16}
bin=${TINYAPI_BIN:-}
priority=${BENCH_PRIORITY:-}
only=ka,close,pipe,log,mc,memory
out=

die() {
    echo "bench: $*" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
        --smoke) mode=smoke ;;
        --duration) duration=${2:?--duration needs a value}; shift ;;
        --rounds) rounds=${2:?--rounds needs a value}; shift ;;
        --warmup) warmup=${2:?--warmup needs a value}; shift ;;
        --connections) conns=${2:?--connections needs a value}; shift ;;
        --depth) depth=${2:?--depth needs a value}; shift ;;
        --priority) priority=${2:?--priority needs a value}; shift ;;
        --only) only=${2:?--only needs a value}; shift ;;
        --bin) bin=${2:?--bin needs a value}; shift ;;
        --out) out=${2:?--out needs a value}; shift ;;
        -h | --help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
    shift
done

if [ "$mode" = smoke ]; then
    duration=${duration:-1} rounds=${rounds:-1} warmup=${warmup:-0}
    out=${out:-$here/results-smoke.md}
else
    duration=${duration:-10} rounds=${rounds:-3} warmup=${warmup:-1}
    out=${out:-$here/results.md}
fi
for v in duration rounds warmup conns depth; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
if [ -z "$priority" ]; then
    priority=none
    [ "$(id -u)" = 0 ] && priority=rt
fi
[[ $only =~ ^(ka|close|pipe|log|mc|memory)(,(ka|close|pipe|log|mc|memory))*$ ]] ||
    die "--only takes a comma-separated list of ka, close, pipe, log, mc, memory; got '$only'"
[[ $priority =~ ^(rt|nice|none)$ ]] || die "--priority must be rt, nice or none, got '$priority'"

# sched_for CPU: sets the array `sched`, the command prefix that pins to CPU ("-": no pinning) and
# applies the priority. Unpinned runs put more busy threads than CPUs; round-robin real-time
# scheduling would then hand out 100 ms time slices, so they get niceness -10 instead.
sched_for() {
    sched=()
    [ "$1" != - ] && sched=(taskset -c "$1")
    case $priority/$1 in
        rt/-) sched+=(nice -n -10) ;;
        rt/*) sched+=(chrt -r 1) ;;
        nice/*) sched+=(nice -n -10) ;;
    esac
    return 0
}
[ "$duration" -ge 1 ] && [ "$rounds" -ge 1 ] && [ "$conns" -ge 2 ] && [ "$depth" -ge 2 ] ||
    die "need duration >= 1, rounds >= 1, connections >= 2, depth >= 2"

log() { echo "bench: $*" >&2; }

# ---------------------------------------------------------------------------------------------
# Tools: wrk, nginx, taskset, python3 from Debian's packages when missing.

install_missing() {
    local need=()
    command -v wrk >/dev/null || need+=(wrk)
    command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
    command -v taskset >/dev/null || need+=(util-linux)
    command -v python3 >/dev/null || need+=(python3)
    [ ${#need[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || die "missing ${need[*]}: install them or run as root"
    log "installing ${need[*]}"
    # The nginx package starts the system service on install: this run wants only its own.
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2 ||
        { [ $made_policy = 1 ] && rm -f "$policy"; die "apt-get install ${need[*]} failed"; }
    [ $made_policy = 1 ] && rm -f "$policy"
    return 0
}
install_missing
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

# ---------------------------------------------------------------------------------------------
# The tinyapi binary.

if [ -z "$bin" ]; then
    log "building the release binary"
    bin=$(cd "$root" && cargo build --release --message-format=json-render-diagnostics |
        python3 -c '
import json, sys
exe = ""
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "tinyapi":
        exe = m["executable"]
print(exe)') || die "cargo build --release failed"
fi
[ -x "$bin" ] || die "no tinyapi binary at '$bin'"

# ---------------------------------------------------------------------------------------------
# Bookkeeping.

work=$(mktemp -d /tmp/tinyapi-bench.XXXXXX)
runs=$work/runs.tsv
memory=$work/memory.tsv
meta=$work/meta
failures=0
clk_tck=$(getconf CLK_TCK)
declare -A pid port spec label
access_note=
hold_pid=

printf 'scenario\tserver\tround\tok\trps\tp50_us\tp99_us\tmean_us\trequests\tcpu_ticks\tcpu_us_req\tconnect\tread\twrite\ttimeout\tstatus\trss_kb\tothers_pct\tnote\n' >"$runs"
printf 'server\tfresh_kb\tidle_kb\trss_1000_kb\topened_1000\trss_10000_kb\topened_10000\tfailed_10000\talive_10000\tafter_kb\n' >"$memory"

fail() {
    failures=$((failures + 1))
    log "FAIL: $*"
}

cleanup() {
    local name
    [ -n "$hold_pid" ] && kill "$hold_pid" 2>/dev/null
    for name in "${!pid[@]}"; do
        # Worker processes first (tinyapi --workers N, nginx), then the process started here.
        kill -KILL $(ps -o pid= --ppid "${pid[$name]}" 2>/dev/null) 2>/dev/null || true
        kill -KILL "${pid[$name]}" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Descriptors: 10,000 held connections and their listeners need more than the usual 1,024.
raise_nofile() {
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
}

# ---------------------------------------------------------------------------------------------
# Servers. spec[NAME] says how to (re)start it: "tinyapi CPU WORKERS LOG" or "nginx CPU WORKERS"
# (CPU "-" = unpinned; LOG one of off, null, file).

# start NAME [listening]: starts a server and waits until it answers GET /alwaysok, or with
# "listening" only until its port listens (no request: for the fresh-start RSS).
start() {
    local name=$1 ready=${2:-answers} kind cpu workers logmode
    read -r kind cpu workers logmode <<<"${spec[$name]}"
    local p
    p=$("${tools[@]}" freeport)
    local sched
    sched_for "$cpu"
    if [ "$kind" = tinyapi ]; then
        local args=(--workers "$workers" --listen "127.0.0.1:$p") dest=/dev/null
        case $logmode in
            off) args+=(--quiet) ;;
            file) dest=$work/$name.log ;;
        esac
        (raise_nofile; exec "${sched[@]}" "$bin" "${args[@]}") >"$dest" 2>"$work/$name.err" &
    else
        local dir=$work/$name
        mkdir -p "$dir/logs" "$dir/tmp"
        cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes $workers;
worker_rlimit_nofile 65536;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events {
    worker_connections 16384;
    use epoll;
}
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    server {
        listen 127.0.0.1:$p backlog=4096;
        location = /alwaysok {
            default_type application/json;
            return 200 '{ "status": "OK" }';
        }
    }
}
EOF
        (raise_nofile; exec "${sched[@]}" "$nginx_bin" -p "$dir" -c "$dir/nginx.conf" -e "$dir/logs/error.log") \
            >"$work/$name.err" 2>&1 &
    fi
    pid[$name]=$!
    port[$name]=$p
    local probe=wait
    [ "$ready" = listening ] && probe=listening
    if ! "${tools[@]}" "$probe" "$p" 10 || ! kill -0 "${pid[$name]}" 2>/dev/null; then
        fail "$name did not start: $(head -c 400 "$work/$name.err" 2>/dev/null; cat "$work/$name/logs/error.log" 2>/dev/null | head -c 400)"
        stop "$name"
        return 1
    fi
    log "started $name (pid ${pid[$name]}, port $p)"
}

stop() {
    local name=$1 p=${pid[$1]:-}
    [ -z "$p" ] && return 0
    kill -TERM "$p" 2>/dev/null || true
    local i
    for i in $(seq 50); do
        kill -0 "$p" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$p" 2>/dev/null; then
        fail "$name did not stop within 5 s of SIGTERM"
        kill -KILL "$p" 2>/dev/null || true
    fi
    local rc=0
    wait "$p" 2>/dev/null || rc=$?
    if [ "${spec[$name]%% *}" = tinyapi ] && [ "$rc" != 0 ]; then
        fail "$name exited with status $rc: $(head -c 400 "$work/$name.err")"
    fi
    unset "pid[$name]"
}

# A server that died is reported and started again, so the other rounds still measure.
ensure_up() {
    local name=$1
    if [ -n "${pid[$name]:-}" ] && kill -0 "${pid[$name]}" 2>/dev/null; then
        return 0
    fi
    if [ -n "${pid[$name]:-}" ]; then
        local rc=0
        wait "${pid[$name]}" 2>/dev/null || rc=$?
        fail "$name exited during the run with status $rc: $(head -c 400 "$work/$name.err")"
        unset "pid[$name]"
    fi
    start "$name"
}

# ---------------------------------------------------------------------------------------------
# wrk against a server.

# wrk_cmd NAME CPU THREADS SECS [wrk options...] [-- script args...]: sets the array `cmd`.
wrk_cmd() {
    local name=$1 cpu=$2 threads=$3 secs=$4
    shift 4
    local opts=() script=()
    while [ $# -gt 0 ]; do
        if [ "$1" = -- ]; then
            shift
            script=(-- "$@")
            break
        fi
        opts+=("$1")
        shift
    done
    local sched
    sched_for "$cpu"
    cmd=(timeout $((secs * 2 + 10)) "${sched[@]}" wrk -t"$threads" -c"$conns" -d"${secs}s" --latency -s "$here/wrk.lua"
        "${opts[@]}" "http://127.0.0.1:${port[$name]}/alwaysok" "${script[@]}")
}

# measure SCENARIO NAME ROUND CPU THREADS [wrk options...] [-- script args...]: one measured
# run, appended to runs.tsv.
measure() {
    local scen=$1 name=$2 round=$3 cpu=$4 threads=$5
    shift 5
    local note="" ok=1
    ensure_up "$name" || {
        printf '%s\t%s\t%s\t0\t\t\t\t\t0\t0\t\t0\t0\t0\t0\t0\t\t\tserver did not start\n' \
            "$scen" "${label[$name]}" "$round" >>"$runs"
        return 0
    }
    local cmd s0 s1 text rc=0
    wrk_cmd "$name" "$cpu" "$threads" "$duration" "$@"
    s0=$("${tools[@]}" sample "${pid[$name]}")
    text=$("${cmd[@]}" 2>&1) || rc=$?
    s1=$("${tools[@]}" sample "${pid[$name]}")
    local line
    line=$(grep '^BENCH ' <<<"$text" || true)
    if [ $rc != 0 ] || [ -z "$line" ]; then
        ok=0 note="wrk failed (status $rc): $(tr -s '\n ' ' ' <<<"$text" | head -c 200)"
        fail "$scen/${label[$name]} round $round: $note"
    fi
    local -A w=([requests]=0 [duration_us]=1 [connect]=0 [read]=0 [write]=0 [status]=0 [timeout]=0 [p50_us]= [p99_us]= [mean_us]=)
    local kv
    for kv in ${line#BENCH }; do
        w[${kv%%=*}]=${kv#*=}
    done
    local t0 t1 rss busy0 busy1 all0 all1
    read -r t0 _ busy0 all0 <<<"$s0"
    read -r t1 rss busy1 all1 <<<"$s1"
    local ticks=$((t1 - t0))
    local rps cpu_req others=
    rps=$(awk -v n="${w[requests]}" -v d="${w[duration_us]}" 'BEGIN { printf "%.1f", n / (d / 1e6) }')
    cpu_req=$(awk -v t="$ticks" -v hz="$clk_tck" -v n="${w[requests]}" \
        'BEGIN { if (n > 0) printf "%.3f", t * 1e6 / hz / n }')
    # CPU 0 time not spent in the server while it was pinned there: other load on the machine.
    if [ "$cpu" != - ] && [ $((all1 - all0)) -gt 0 ]; then
        others=$(awk -v b=$((busy1 - busy0)) -v s="$ticks" -v a=$((all1 - all0)) \
            'BEGIN { x = (b - s) * 100 / a; printf "%.0f", x < 0 ? 0 : x }')
    fi
    if ! kill -0 "${pid[$name]}" 2>/dev/null; then
        ok=0 note="server exited during the run"
    fi
    local errs=$((w[connect] + w[read] + w[write] + w[timeout] + w[status]))
    if [ "${spec[$name]%% *}" = tinyapi ] && [ $errs -gt 0 ]; then
        fail "$scen/${label[$name]} round $round: wrk errors connect ${w[connect]} read ${w[read]} write ${w[write]} timeout ${w[timeout]} non-2xx ${w[status]}"
    fi
    if [ "$ok" = 1 ] && [ "${w[requests]}" = 0 ]; then
        ok=0 note="no request completed"
        fail "$scen/${label[$name]} round $round: $note"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$scen" "${label[$name]}" "$round" "$ok" "$rps" "${w[p50_us]}" "${w[p99_us]}" "${w[mean_us]}" "${w[requests]}" \
        "$ticks" "$cpu_req" "${w[connect]}" "${w[read]}" "${w[write]}" "${w[timeout]}" \
        "${w[status]}" "$rss" "$others" "$note" >>"$runs"
    log "$scen round $round ${label[$name]}: $(printf '%.0f' "$rps") req/s, p50 ${w[p50_us]} µs, p99 ${w[p99_us]} µs, ${cpu_req:-?} CPU µs/req, errors $errs${others:+, others on CPU 0 $others%}"
}

warm() {
    local name=$1 cpu=$2 threads=$3
    shift 3
    [ "$warmup" -gt 0 ] || return 0
    ensure_up "$name" || return 0
    local cmd
    wrk_cmd "$name" "$cpu" "$threads" "$warmup" "$@"
    "${cmd[@]}" >/dev/null 2>&1 || true
}

# scenario SCEN CPU THREADS "SERVER..." [wrk options...]: warm up each server, then ROUNDS
# rounds; each round runs every server once, starting one further along the list each round.
scenario() {
    local scen=$1 cpu=$2 threads=$3
    read -r -a names <<<"$4"
    shift 4
    local n=${#names[@]} r i name
    for name in "${names[@]}"; do
        warm "$name" "$cpu" "$threads" "$@"
    done
    for r in $(seq "$rounds"); do
        for i in $(seq 0 $((n - 1))); do
            name=${names[$(((r - 1 + i) % n))]}
            measure "$scen" "$name" "$r" "$cpu" "$threads" "$@"
        done
    done
}

# ---------------------------------------------------------------------------------------------
# Memory: VmRSS idle, then while a separate process holds 1,000 and 10,000 idle connections.

hold() {
    # hold NAME N: sets held_rss, held_opened, held_failed, held_alive
    local name=$1 n=$2 line wfd
    held_rss= held_opened=0 held_failed=$n held_alive=0
    coproc HOLDER { exec python3 "$here/tools.py" hold "${port[$name]}" "$n" 180; }
    hold_pid=$HOLDER_PID
    local rfd=${HOLDER[0]}
    wfd=${HOLDER[1]}
    if read -r -t 150 -u "$rfd" line && [[ $line == ready* ]]; then
        read -r _ held_opened held_failed <<<"$line"
        sleep 0.5
        local s
        s=$("${tools[@]}" sample "${pid[$name]}")
        read -r _ held_rss _ <<<"$s"
        echo check >&"$wfd"
        if read -r -t 60 -u "$rfd" line; then
            held_alive=${line#alive }
        fi
    else
        fail "$name: holding $n connections did not finish"
    fi
    exec {wfd}>&-
    local i
    for i in $(seq 100); do
        kill -0 "$hold_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill "$hold_pid" 2>/dev/null || true
    wait "$hold_pid" 2>/dev/null || true
    hold_pid=
    if [ "$held_failed" != 0 ]; then
        log "$name: $held_failed of $n connections could not be opened"
        [ "${spec[$name]%% *}" = tinyapi ] && fail "$name: $held_failed of $n held connections failed"
    fi
    if [ "${spec[$name]%% *}" = tinyapi ] && [ "$held_alive" != "$held_opened" ]; then
        fail "$name closed $((held_opened - held_alive)) of $held_opened idle connections within seconds"
    fi
    log "$name holding $held_opened connections ($held_alive still open): RSS $held_rss kB"
}

memory_of() {
    local name=$1 s fresh idle r1000 o1000 after
    start "$name" listening || return 0
    sleep 0.2
    s=$("${tools[@]}" sample "${pid[$name]}")
    read -r _ fresh _ <<<"$s"
    "${tools[@]}" wait "${port[$name]}" 5 || fail "$name does not answer"
    s=$("${tools[@]}" sample "${pid[$name]}")
    read -r _ idle _ <<<"$s"
    hold "$name" 1000
    r1000=$held_rss o1000=$held_opened
    hold "$name" 10000
    sleep 1
    s=$("${tools[@]}" sample "${pid[$name]}")
    read -r _ after _ <<<"$s"
    if ! kill -0 "${pid[$name]}" 2>/dev/null; then
        fail "$name exited during the memory test"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "${label[$name]}" "$fresh" "$idle" "$r1000" "$o1000" \
        "$held_rss" "$held_opened" "$held_failed" "$held_alive" "$after" >>"$memory"
    log "$name: RSS fresh $fresh kB, idle $idle kB, 1,000 conns $r1000 kB, 10,000 conns $held_rss kB, after $after kB"
    stop "$name"
}

# The access log written to a file holds one line per request served: compares the server's
# own request count (/healthcheck) with the lines, after a clean stop has flushed them.
log_check() {
    local name=$1 health served lines bytes
    [ -n "${pid[$name]:-}" ] || return 0
    health=$("${tools[@]}" get "${port[$name]}" /healthcheck 2>/dev/null || true)
    served=$(sed -n 's/.*"requests":\([0-9]*\).*/\1/p' <<<"$health")
    stop "$name"
    lines=$(grep -c ' "GET /' "$work/$name.log" || true)
    bytes=$(stat -c %s "$work/$name.log")
    access_note="Access log to a file: $lines request lines ($((bytes / (lines > 0 ? lines : 1))) bytes each) for ${served:-?} requests counted by /healthcheck."
    log "$access_note"
    if [ -z "$served" ] || [ "$lines" -lt "$served" ]; then
        fail "$name: the access log has $lines request lines but the server counted ${served:-?} requests"
    fi
}

# ---------------------------------------------------------------------------------------------
# The run.

cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
{
    echo "machine=nproc $(nproc), ${cpu_model:-unknown CPU}, $(uname -s) $(uname -r) $(uname -m)"
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "tinyapi=$("$bin" --version 2>/dev/null | head -1 | sed 's/^tinyapi //')"
    echo "nginx=$("$nginx_bin" -v 2>&1 | sed 's|.*nginx/||')"
    echo "wrk=$(wrk -v 2>&1 | head -1 | awk '{ print $2 }')"
    echo "mode=$([ "$mode" = smoke ] && echo Smoke run || echo Full run)"
    echo "duration=$duration"
    echo "rounds=$rounds"
    echo "conns=$conns"
    echo "depth=$depth"
    echo "tick_us=$((1000000 / clk_tck))"
    echo "priority=$priority"
    echo "only=$only"
    echo "load=$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$meta"
[ "$(nproc)" -ge 2 ] || log "warning: fewer than 2 CPUs: server and wrk share one"

raise_nofile
log "$mode run: ${duration}s per run, $rounds round(s), $conns connections; binary $bin"

# Pinned: the server on CPU 0, wrk on CPU 1 (one thread). Keys name servers in this script;
# labels name them in the report.
add() { spec[$1]=$2; label[$1]=$3; }
add ti "tinyapi 0 1 off" "tinyapi"
add ng "nginx 0 1" "nginx"
add ti_null "tinyapi 0 1 null" "tinyapi log → /dev/null"
add ti_file "tinyapi 0 1 file" "tinyapi log → file"
add ti_w1 "tinyapi - 1 off" "tinyapi --workers 1"
add ti_w2 "tinyapi - 2 off" "tinyapi --workers 2"
add ng_w2 "nginx - 2" "nginx worker_processes 2"

wants() { [[ ,$only, == *,$1,* ]]; }

if wants ka || wants close || wants pipe || wants log; then
    start ti || true
fi
if wants ka || wants close || wants pipe; then
    start ng || true
    wants ka && scenario ka 1 1 "ti ng"
    wants close && scenario close 1 1 "ti ng" -H "Connection: close"
    wants pipe && scenario pipe 1 1 "ti ng" -- "$depth"
    stop ng
fi

# The access log: off (the same server as above), to /dev/null, to a file.
if wants log; then
    label[ti]="tinyapi log off"
    start ti_null || true
    start ti_file || true
    scenario log 1 1 "ti ti_null ti_file"
    log_check ti_file
    stop ti_null
    label[ti]="tinyapi"
fi
stop ti

# Both CPUs shared: no pinning, wrk with two threads.
if wants mc; then
    start ti_w1 || true
    start ti_w2 || true
    start ng_w2 || true
    scenario mc - 2 "ti_w1 ti_w2 ng_w2"
    stop ti_w1
    stop ti_w2
    stop ng_w2
fi

# Memory, on freshly started pinned servers.
if wants memory; then
    memory_of ti
    memory_of ng
fi

echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$meta"
"${tools[@]}" report "$runs" "$memory" "$meta" "$out"
[ -n "$access_note" ] && printf '\n%s\n' "$access_note" | tee -a "$out"
if [ $failures -gt 0 ]; then
    log "$failures failure(s); see the lines marked FAIL above"
    exit 1
fi
exit 0
