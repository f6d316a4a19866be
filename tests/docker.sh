#!/usr/bin/env bash
# Builds the scratch image and checks it under a real Docker daemon: size, contents, the hardened
# run, every endpoint, HEALTHCHECK, `docker stop`, /panic and the logs.
#
#   tests/docker.sh            (as root, or as a member of the docker group)
#
# Without a reachable daemon it starts one (installing docker.io from Debian if dockerd is absent)
# with no bridge and no iptables rules, and stops that daemon again on exit. Only loopback traffic:
# the containers share the host network and are reached on 127.0.0.1.
# Prints PASS/FAIL per check and ends with `docker: N passed, M failed`; exits 1 on any failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly BINARY=target/x86_64-unknown-linux-musl/release/tinyapi
readonly MAX_IMAGE_BYTES=40000   # the whole image, as `docker image inspect` counts it
readonly MAX_STOP_MS=2000        # SIGTERM handled by PID 1: far below docker's 10 s SIGKILL fallback
readonly DAEMON_WAIT_S=60        # a cold dockerd start, containerd included
readonly READY_WAIT_S=10         # container start to first answer
readonly HEALTHY_WAIT_S=30       # a few 1 s health intervals, with room for a slow machine
readonly EXIT_WAIT_S=10          # /panic to container exit
readonly CURL=(curl -sS --max-time 3)

readonly INDEX_BODY=$'Index of tinyapi. These aren\'t the droids you\'re looking for\n'
readonly ALWAYSOK_BODY='{ "status": "OK" }'

id_suffix="$$-$(date +%s)"
readonly IMAGE="tinyapi-docker-test:${id_suffix}"
readonly NAME_PREFIX="tinyapi-docker-test-${id_suffix}"
work=$(mktemp -d)
containers=()
built_images=()   # every image the build created, stages included (the classic builder keeps them)
SUITE=docker
# shellcheck source=tests/harness.sh
. tests/harness.sh

cleanup() {
    local c
    if docker info >/dev/null 2>&1; then
        for c in "${containers[@]}"; do
            docker rm -f "$c" >/dev/null 2>&1 || true
        done
        docker image rm -f "$IMAGE" >/dev/null 2>&1 || true
        for c in "${built_images[@]}"; do
            docker image rm "$c" >/dev/null 2>&1 || true
        done
    fi
    stop_daemon
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools ----------------------------------------------------------------------------------------

command -v curl >/dev/null || apt_install curl

# The image takes whatever release build is there; run `cargo build --release` first to refresh it.
[ -x "$BINARY" ] || cargo build --release

# --- daemon ---------------------------------------------------------------------------------------


# A daemon can start with a storage driver that cannot mount layers here (overlay on overlay, for
# one); running the image once with a bad option shows whether containers start at all: tinyapi
# exits 2, while a daemon-side failure is 125 or above.
image_runs() {
    local rc=0
    timeout 30 docker run --rm --network none "$IMAGE" --no-such-option >/dev/null 2>&1 || rc=$?
    [ "$rc" -eq 2 ]
}

build_image() {
    # The classic builder needs neither buildx nor a registry; FROM scratch is all it fetches.
    DOCKER_BUILDKIT=0 timeout 120 docker build -t "$IMAGE" . >"$work/build.log" 2>&1 || return 1
    # Each step prints ` ---> <id>`; a step taken from the cache prints ` ---> Using cache` first,
    # and that image belongs to an earlier build. The rest are removed on exit, newest first.
    local line cached="" id
    while read -r line; do
        case "$line" in
        "---> Using cache") cached=1 ;;
        "---> "*)
            id=${line#"---> "}
            [[ "$id" =~ ^[0-9a-f]{12}$ ]] && [ -z "$cached" ] && built_images=("$id" "${built_images[@]}")
            cached=""
            ;;
        esac
    done <"$work/build.log"
}

ensure_daemon || give_up "a Docker daemon starts"
note "daemon $(docker version -f '{{.Server.Version}}' 2>/dev/null), storage driver $(docker info -f '{{.Driver}}' 2>/dev/null)"

# --- image ----------------------------------------------------------------------------------------

build_or_give_up() {
    if build_image; then
        pass "docker build -t $IMAGE ."
    else
        cat "$work/build.log"
        give_up "docker build -t $IMAGE ."
    fi
}
build_or_give_up

if ! image_runs && [ -n "$daemon_pid" ] && [ "$(docker info -f '{{.Driver}}')" != vfs ]; then
    note "containers do not start with storage driver $(docker info -f '{{.Driver}}'); retrying with vfs"
    stop_daemon
    start_daemon --storage-driver=vfs || give_up "a Docker daemon starts with --storage-driver=vfs"
    build_or_give_up
fi
check "a container starts (bad option exits 2)" image_runs

image_size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
note "image size: $image_size bytes (binary: $(stat -c %s "$BINARY") bytes)"
check "image size $image_size <= $MAX_IMAGE_BYTES bytes" test "$image_size" -le "$MAX_IMAGE_BYTES"

# Every file in every layer of `docker save`; works for both the classic and the OCI layout.
image_files() {
    local dir="$work/save" f
    rm -rf "$dir" && mkdir -p "$dir"
    timeout 60 docker save "$IMAGE" | tar -x -C "$dir"
    find "$dir" -type f | while read -r f; do
        tar -tf "$f" 2>/dev/null || true
    done | sort
}
files=$(image_files)
note "image files: $(echo "$files" | tr '\n' ' ')"
check "the image holds /tinyapi and nothing else" test "$files" = tinyapi

inspect_image() { docker image inspect -f "$1" "$IMAGE"; }
check "USER 65532:65532" test "$(inspect_image '{{.Config.User}}')" = 65532:65532
check "EXPOSE 8080" test "$(inspect_image '{{json .Config.ExposedPorts}}')" = '{"8080/tcp":{}}'
check 'ENTRYPOINT ["/tinyapi"]' test "$(inspect_image '{{json .Config.Entrypoint}}')" = '["/tinyapi"]'
check 'HEALTHCHECK CMD ["/tinyapi", "--probe"], timeout >= 3 s' test \
    "$(inspect_image '{{json .Config.Healthcheck.Test}} {{ge .Config.Healthcheck.Timeout 3000000000}}')" \
    = '["CMD","/tinyapi","--probe"] true'
# shellcheck disable=SC2016 # a Go template, not shell
labels=$(inspect_image '{{range $k, $v := .Config.Labels}}{{$k}}={{$v}}
{{end}}')
has_labels() {
    local l
    for l in title=tinyapi description= version=0.1.0 licenses=MIT; do
        grep -q "^org.opencontainers.image.$l" <<<"$labels" || return 1
    done
}
check "OCI labels title, description, version, licenses" has_labels
# The source label comes from the publisher (--label), never a placeholder.
check "no OCI source label unless given" test -z "$(grep '^org.opencontainers.image.source=' <<<"$labels")"
check "STOPSIGNAL SIGTERM" test "$(inspect_image '{{.Config.StopSignal}}')" = SIGTERM

# --- containers -----------------------------------------------------------------------------------


# run_container NAME DOCKER-RUN-OPTION...: starts the image detached, hardened, on the host network.
run_container() {
    local name=$1
    shift
    containers+=("$name")
    timeout 30 docker run -d --name "$name" --network host --read-only --cap-drop ALL \
        --security-opt no-new-privileges "$@" "$IMAGE" >/dev/null
}

# wait_ready NAME PORT: until the container answers on 127.0.0.1:PORT, or has exited.
wait_ready() {
    for _ in $(seq 1 $((READY_WAIT_S * 10))); do
        "${CURL[@]}" -o /dev/null "http://127.0.0.1:$2/alwaysok" 2>/dev/null && return 0
        [ "$(docker inspect -f '{{.State.Running}}' "$1")" = true ] || return 1
        sleep 0.1
    done
    return 1
}

# body_is PORT PATH EXPECTED: GET answers 200 with exactly EXPECTED as the body.
body_is() {
    local code
    code=$("${CURL[@]}" -o "$work/body" -w '%{http_code}' "http://127.0.0.1:$1$2") || return 1
    [ "$code" = 200 ] && printf '%s' "$3" | cmp -s - "$work/body"
}

# status_is PORT PATH EXPECTED [CURL-ARG...]: the response status code.
status_is() {
    local url="http://127.0.0.1:$1$2" want=$3 code
    shift 3
    code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' "$@" "$url") || return 1
    [ "$code" = "$want" ]
}

check_endpoints() {
    local port=$1 label=$2
    check "$label: GET / body" body_is "$port" / "$INDEX_BODY"
    check "$label: GET /alwaysok body" body_is "$port" /alwaysok "$ALWAYSOK_BODY"
    check "$label: GET /healthcheck 200" status_is "$port" /healthcheck 200
    check "$label: GET /nope 404" status_is "$port" /nope 404
    check "$label: POST / 405" status_is "$port" / 405 -X POST
}

# process_is NAME UID: PID 1 of the container runs as UID with no capabilities and no_new_privs.
process_is() {
    local pid status
    pid=$(docker inspect -f '{{.State.Pid}}' "$1")
    status=$(cat "/proc/$pid/status") || return 1
    grep -Eq "^Uid:\s+$2\s+$2\s" <<<"$status" &&
        grep -Eq '^CapEff:\s+0+$' <<<"$status" &&
        grep -Eq '^NoNewPrivs:\s+1$' <<<"$status"
}


# logs_have NAME TEXT: stdout or stderr of the container holds TEXT.
logs_have() {
    docker logs "$1" >"$work/logs" 2>&1 && grep -qF -- "$2" "$work/logs"
}

# 1. The default user, PORT from the environment, HEALTHCHECK on a short interval.
port=$(free_port)
main="$NAME_PREFIX-main"
check "hardened run, PORT=$port: starts" run_container "$main" -e "PORT=$port" \
    --health-interval 1s --health-timeout 3s --health-retries 3 --health-start-period 5s
check "hardened run: answers on 127.0.0.1:$port" wait_ready "$main" "$port"
check "hardened run: uid 65532, no capabilities, no_new_privs" process_is "$main" 65532
check_endpoints "$port" "hardened run"
check "HEALTHCHECK: healthy" wait_healthy "$main"
check "docker logs: start-up line" logs_have "$main" "listening on 0.0.0.0:$port"
check "docker logs: access log line" logs_have "$main" '"GET /alwaysok HTTP/1.1" 200'

start_ns=$(date +%s%N)
docker stop "$main" >/dev/null || true
stop_ms=$((($(date +%s%N) - start_ns) / 1000000))
note "docker stop: $stop_ms ms"
check "docker stop in $stop_ms ms < $MAX_STOP_MS ms" test "$stop_ms" -lt "$MAX_STOP_MS"
check "docker stop: exit code 0" test "$(docker inspect -f '{{.State.ExitCode}}' "$main")" = 0
check "docker logs: stop line" logs_have "$main" "tinyapi stopped"

# 2. The image's own HEALTHCHECK, no --health-* overrides: healthy within 10 s of the start.
port=$(free_port)
plain="$NAME_PREFIX-plain-health"
started_ns=$(date +%s%N)
check "own HEALTHCHECK: starts" run_container "$plain" -e "TINYAPI_LISTEN=127.0.0.1:$port"
check "own HEALTHCHECK: healthy" wait_healthy "$plain"
healthy_ms=$((($(date +%s%N) - started_ns) / 1000000))
note "own HEALTHCHECK: healthy after $healthy_ms ms"
check "own HEALTHCHECK: healthy within 10 s ($healthy_ms ms)" test "$healthy_ms" -le 10000
docker stop "$plain" >/dev/null || true

# 3. Another user, and the full address from TINYAPI_LISTEN (loopback only).
port=$(free_port)
other="$NAME_PREFIX-user"
check "--user 12345:12345: starts" run_container "$other" -e "TINYAPI_LISTEN=127.0.0.1:$port" --user 12345:12345
check "--user 12345:12345: answers on 127.0.0.1:$port" wait_ready "$other" "$port"
check "--user 12345:12345: uid 12345, no capabilities, no_new_privs" process_is "$other" 12345
check_endpoints "$port" "--user 12345:12345"
docker stop "$other" >/dev/null || true

# 4. /panic ends the process, and with it the container, with status 1.
port=$(free_port)
doomed="$NAME_PREFIX-panic"
check "/panic container: starts" run_container "$doomed" -e "TINYAPI_LISTEN=127.0.0.1:$port"
check "/panic container: answers on 127.0.0.1:$port" wait_ready "$doomed" "$port"
"${CURL[@]}" -o /dev/null "http://127.0.0.1:$port/panic" 2>/dev/null || true
panic_rc=$(timeout "$EXIT_WAIT_S" docker wait "$doomed" 2>/dev/null) || panic_rc="still running after ${EXIT_WAIT_S}s"
check "/panic: container exits by itself with code 1 (got $panic_rc)" test "$panic_rc" = 1
check "/panic: FATAL line in docker logs" logs_have "$doomed" FATAL

# 5. The worker count follows the CPU quota: --cpus 0.5 and --cpus 1 give one worker (said on the
# start-up line), no quota one per CPU the container may run on.
# processes_in NAME: the container's first process and its children (the workers).
processes_in() {
    local pid
    pid=$(docker inspect -f '{{.State.Pid}}' "$1")
    echo $((1 + $(cat /proc/"$pid"/task/*/children 2>/dev/null | wc -w)))
}

# runs_processes NAME COUNT: the container runs COUNT processes, and still does half a second later
# (workers are forked around the start-up line).
runs_processes() {
    for _ in $(seq 1 $((READY_WAIT_S * 10))); do
        if [ "$(processes_in "$1")" = "$2" ]; then
            sleep 0.5
            [ "$(processes_in "$1")" = "$2" ] && return 0
        fi
        sleep 0.1
    done
    note "$1: $(processes_in "$1") processes, expected $2"
    return 1
}

cpus=$(python3 -c 'import os; print(min(64, len(os.sched_getaffinity(0))))' 2>/dev/null || nproc)
for limit in 0.5 1 none; do
    port=$(free_port)
    name="$NAME_PREFIX-cpus-$limit"
    if [ "$limit" = none ]; then
        limit_args=()
        count=$cpus
        said="$cpus worker$([ "$cpus" = 1 ] || echo s))"
    else
        limit_args=(--cpus "$limit")
        count=1
        said="1 worker$([ "$cpus" = 1 ] || echo ', from the CPU quota'))"
    fi
    check "--cpus $limit: starts" run_container "$name" -e "TINYAPI_LISTEN=127.0.0.1:$port" "${limit_args[@]}"
    check "--cpus $limit: answers on 127.0.0.1:$port" wait_ready "$name" "$port"
    check "--cpus $limit: start-up line ends ($said" logs_have "$name" "listening on 127.0.0.1:$port ($said"
    check "--cpus $limit: $count tinyapi process(es)" runs_processes "$name" "$count"
    note "--cpus $limit: $(docker logs "$name" 2>&1 | grep -m1 ' listening on '); $(processes_in "$name") processes"
    docker stop "$name" >/dev/null || true
done

# --- summary --------------------------------------------------------------------------------------

note "image size: $image_size bytes; docker stop: $stop_ms ms"
summary
[ "$failed" -eq 0 ]
