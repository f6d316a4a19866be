# shellcheck shell=bash
# What tests/docker.sh and tests/image.sh share: PASS/FAIL bookkeeping, Debian packages, a free
# loopback port, and a Docker daemon of their own (stopped by PID). Source it after setting SUITE
# (the name on the summary line), DAEMON_WAIT_S, HEALTHY_WAIT_S and `work` (a scratch directory).

passed=0
failed=0
daemon_pid=""

pass() { passed=$((passed + 1)); printf 'PASS  %s\n' "$1"; }
fail() { failed=$((failed + 1)); printf 'FAIL  %s\n' "$1"; }
# check NAME COMMAND...: PASS when the command succeeds.
check() {
    local name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}
note() { printf '      %s\n' "$*"; }
summary() { echo "$SUITE: $passed passed, $failed failed"; }
# give_up CHECK: records CHECK as failed and ends the run, which cannot go on without it.
give_up() {
    fail "$1"
    summary
    exit 1
}

# stop_pid PID: SIGTERM, up to 20 s to exit, then SIGKILL.
stop_pid() {
    kill -TERM "$1" 2>/dev/null || return 0
    for _ in $(seq 1 40); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.5
    done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

apt_updated=""
apt_install() {
    if [ -z "$apt_updated" ]; then
        apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# free_port: a TCP port free on 127.0.0.1 now.
free_port() {
    if command -v python3 >/dev/null; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
        return
    fi
    # No python: a random port that no socket in /proc/net/tcp{,6} is using.
    local port hex
    for _ in $(seq 1 100); do
        port=$((20000 + RANDOM % 40000))
        hex=$(printf ':%04X ' "$port")
        grep -q "$hex" /proc/net/tcp /proc/net/tcp6 2>/dev/null || { echo "$port"; return; }
    done
    return 1
}

# start_daemon [DOCKERD OPTION...]: starts dockerd in the background (no bridge, no iptables
# rules); succeeds once `docker info` works.
start_daemon() {
    local log="$work/dockerd.log"
    dockerd --bridge=none --iptables=false "$@" >"$log" 2>&1 &
    daemon_pid=$!
    for _ in $(seq 1 $((DAEMON_WAIT_S * 2))); do
        if docker info >/dev/null 2>&1; then
            note "started dockerd${*:+ $*} (pid $daemon_pid, log $log)"
            return 0
        fi
        kill -0 "$daemon_pid" 2>/dev/null || break
        sleep 0.5
    done
    echo "$SUITE: dockerd $* did not come up; last lines of its log:" >&2
    tail -n 5 "$log" >&2 || true
    stop_daemon
    return 1
}

# stop_daemon: stops the daemon start_daemon started, if any.
stop_daemon() {
    [ -z "$daemon_pid" ] || stop_pid "$daemon_pid"
    daemon_pid=""
}

# ensure_daemon [DOCKERD OPTION...]: a daemon that answers: the running one, else one of our own
# (installing docker.io first if needed; vfs storage where overlay cannot mount here).
ensure_daemon() {
    docker info >/dev/null 2>&1 && return 0
    command -v dockerd >/dev/null || apt_install docker.io
    # The package may have started a daemon of its own.
    docker info >/dev/null 2>&1 && return 0
    start_daemon "$@" || start_daemon --storage-driver=vfs "$@"
}

# wait_healthy CONTAINER: until Docker reports the container healthy (HEALTHY_WAIT_S at most).
wait_healthy() {
    local status=""
    for _ in $(seq 1 $((HEALTHY_WAIT_S * 2))); do
        status=$(docker inspect -f '{{.State.Health.Status}}' "$1")
        [ "$status" = healthy ] && return 0
        sleep 0.5
    done
    note "health status after ${HEALTHY_WAIT_S}s: $status"
    return 1
}
