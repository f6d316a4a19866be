#!/usr/bin/env bash
# Runs deploy/compose.yaml as a user would, both services: `up` (building the image from the
# Dockerfile), healthy by the image's own HEALTHCHECK, every endpoint over 127.0.0.1, a stop that
# is quick (no shutdown delay with nothing in front) with exit code 0, then `down`, which leaves
# nothing behind.
#
#   tests/compose.sh            (as root, or as a member of the docker group; after cargo build --release)
#
# Starts dockerd if none is running (tests/harness.sh) and installs Debian's docker-compose
# (version 1) if missing. Ends with `compose: N passed, M failed`; exits 1 on a failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly DAEMON_WAIT_S=60
readonly HEALTHY_WAIT_S=30   # the image's 5 s interval: healthy within about 10 s
readonly MAX_STOP_MS=3000    # SIGTERM and a drain of under a second; a delay of 3 s or more fails it
readonly CURL=(curl -sS --max-time 3)

id_suffix="$$-$(date +%s)"
readonly PROJECT="tinyapi-compose-test-${id_suffix}"
export TINYAPI_IMAGE="tinyapi-compose-test:${id_suffix}"
work=$(mktemp -d)
SUITE=compose
# shellcheck source=tests/harness.sh
. tests/harness.sh

compose() { timeout 180 docker-compose -p "$PROJECT" -f deploy/compose.yaml "$@"; }

cleanup() {
    if docker info >/dev/null 2>&1; then
        compose --profile host down >/dev/null 2>&1 || true
        docker image rm -f "$TINYAPI_IMAGE" >/dev/null 2>&1 || true
    fi
    stop_daemon
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

need=()
command -v curl >/dev/null || need+=(curl)
command -v docker-compose >/dev/null || need+=(docker-compose)
((${#need[@]} == 0)) || apt_install "${need[@]}"
[ -x target/x86_64-unknown-linux-musl/release/tinyapi ] || cargo build --release
ensure_daemon || give_up "a Docker daemon starts"

# quietly COMMAND...: its output only when it fails.
quietly() { "$@" >"$work/out.log" 2>&1 || { cat "$work/out.log"; return 1; }; }
status_200() { [ "$("${CURL[@]}" -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1$2")" = 200 ]; }

# run SERVICE [COMPOSE OPTION...]: up, healthy, answers, down.
run() {
    local service=$1 container start_ns stop_ms path
    shift
    export TINYAPI_PORT
    TINYAPI_PORT=$(free_port)
    if ! quietly compose "$@" up -d --build "$service"; then
        fail "$service: up"
        return
    fi
    pass "$service: up (port $TINYAPI_PORT)"
    container=$(compose "$@" ps -q "$service")
    check "$service: healthy" wait_healthy "$container"
    for path in / /alwaysok /healthcheck; do
        check "$service: GET $path 200 on 127.0.0.1:$TINYAPI_PORT" status_200 "$TINYAPI_PORT" "$path"
    done
    # The container's own stop, as `down` makes it, without Compose's start-up time around it.
    start_ns=$(date +%s%N)
    docker stop -t 15 "$container" >/dev/null || true
    stop_ms=$((($(date +%s%N) - start_ns) / 1000000))
    check "$service: stops in $stop_ms ms < $MAX_STOP_MS ms (no shutdown delay)" test "$stop_ms" -lt "$MAX_STOP_MS"
    check "$service: exit code 0" test "$(docker inspect -f '{{.State.ExitCode}}' "$container")" = 0
    check "$service: down" quietly compose "$@" down
    check "$service: nothing left" test -z "$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT")"
}

run tinyapi
run tinyapi-host --profile host

summary
[ "$failed" -eq 0 ]
