#!/usr/bin/env bash
# Tests the multi-platform OCI layout of image/build.sh the way it is published and used:
#
#   tests/image.sh            (as root: it may install packages, start dockerd, mount binfmt_misc)
#
# - two builds of the layout are byte-identical (same image index digest), with the conventional
#   tags and a referrers fallback tag per image and for the index;
# - image/publish.py pushes it to a local registry (Debian's docker-registry, on 127.0.0.1 only)
#   under the same digest and every tag, signed with throwaway keys (GPG and sigstore); `skopeo
#   copy --all` pushes the same digest too;
# - from each image's digest alone, the registry gives its SBOM (by the referrers API, or the
#   fallback tag where, as here, there is none), valid CycloneDX (cyclonedx-python-lib's strict
#   validator, from PyPI) with a purl for every component, licences and the LICENSE text; from
#   the index's digest, an in-toto SLSA v1 provenance statement naming this commit; each
#   sigstore signature verifies with the public key;
# - podman, under a policy.json that requires the GPG key, pulls the signed image and refuses an
#   unsigned one and a tampered one carrying a genuine signature; the pulled image, run hardened
#   under podman, is `healthy` by its own HEALTHCHECK; `podman build --format docker` keeps it;
# - Docker pulls each platform from there with the right architecture, variant and HEALTHCHECK;
# - the amd64 image serves every endpoint hardened and reports `healthy`; the arm64 one does too
#   under qemu, when binfmt_misc can be used here (skipped, saying why, when it cannot);
# - the classic builder's arm64 image (image/arm64.Dockerfile) is labelled arm64 and has the same
#   config as the layout's.
# Starts the registry, and dockerd if none is running (as tests/docker.sh does), and stops what it
# started, by PID. podman keeps its images and containers under the scratch directory, removed at
# the end. Only loopback traffic. Ends with `image: N passed, M failed`; exits 1 on a failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly DAEMON_WAIT_S=60
readonly READY_WAIT_S=20   # the arm64 container starts under emulation
readonly HEALTHY_WAIT_S=30
readonly CURL=(curl -sS --max-time 3)
readonly BINFMT=/proc/sys/fs/binfmt_misc

id_suffix="$$-$(date +%s)"
readonly NAME_PREFIX="tinyapi-image-test-${id_suffix}"
work=$(mktemp -d)
registry_pid=""
binfmt_mounted=""
binfmt_registered=""
containers=()
images=()
SUITE=image
# shellcheck source=tests/harness.sh
. tests/harness.sh

cleanup() {
    local c
    if docker info >/dev/null 2>&1; then
        for c in "${containers[@]}"; do docker rm -f "$c" >/dev/null 2>&1 || true; done
        for c in "${images[@]}"; do docker image rm -f "$c" >/dev/null 2>&1 || true; done
    fi
    [ ! -d "$work/podman" ] || podman rm -af >/dev/null 2>&1 || true
    [ ! -d "$work/gnupg" ] || gpgconf --kill gpg-agent 2>/dev/null || true
    stop_daemon
    [ -z "$registry_pid" ] || stop_pid "$registry_pid"
    [ -z "$binfmt_registered" ] || echo -1 >"$BINFMT/$binfmt_registered" 2>/dev/null || true
    [ -z "$binfmt_mounted" ] || umount "$BINFMT" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools ----------------------------------------------------------------------------------------


need=()
command -v curl >/dev/null || need+=(curl)
command -v openssl >/dev/null || need+=(openssl)
command -v gpg >/dev/null || need+=(gpg)
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
command -v skopeo >/dev/null || need+=(skopeo)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v dockerd >/dev/null || docker info >/dev/null 2>&1 || need+=(docker.io)
command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
((${#need[@]} == 0)) || apt_install "${need[@]}"

# The SBOM validator, from PyPI, in a virtual environment of its own.
python3 -m venv "$work/venv" >/dev/null 2>&1 || { apt_install python3-venv && python3 -m venv "$work/venv"; }
"$work/venv/bin/pip" install -q 'cyclonedx-python-lib[json-validation]' ||
    give_up "pip install cyclonedx-python-lib[json-validation]"


# --- the layout -----------------------------------------------------------------------------------

# index_digest LAYOUT: the digest of the image index that index.json tags first (the version).
index_digest() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$1/index.json"; }
# tags LAYOUT: the image's tags in index.json, without the referrers tags.
tags() { python3 -c 'import json, sys; print(*[t for m in json.load(open(sys.argv[1]))["manifests"] if not (t := m["annotations"]["org.opencontainers.image.ref.name"]).startswith("sha256-")])' "$1/index.json"; }

bash image/build.sh "$work/one" >"$work/build.log" 2>&1 || { cat "$work/build.log"; give_up "image/build.sh"; }
bash image/build.sh "$work/two" >>"$work/build.log" 2>&1 || { cat "$work/build.log"; give_up "image/build.sh (again)"; }
pass "image/build.sh builds the layout twice"
digest=$(index_digest "$work/one")
read -ra all_tags <<<"$(tags "$work/one")"
tag=${all_tags[0]}
note "image index $digest (tags ${all_tags[*]})"
check "two builds: same index digest ($digest)" test "$digest" = "$(index_digest "$work/two")"
check "two builds: byte-identical layouts" diff -r "$work/one" "$work/two"

# One line per image: ARCH VARIANT MANIFEST.
layout_ok() { python3 tests/image_checks.py layout "$work/one" >"$work/images"; }
check "layout: tags $tag, major.minor, major, latest, sha-<commit>; linux/amd64 and linux/arm64/v8 in Docker's format, one layer holding only tinyapi; an SBOM per image and a provenance for the index, behind sha256-<hex> fallback tags" \
    layout_ok
read -ra image_digests <<<"$(cut -d' ' -f3 "$work/images" | tr '\n' ' ')"

# --- registry and keys ----------------------------------------------------------------------------

port=$(free_port)
readonly REGISTRY="127.0.0.1:$port"
mkdir -p "$work/registry"
cat >"$work/registry.yml" <<END
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: $REGISTRY
END
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 1 40); do
    "${CURL[@]}" -o /dev/null "http://$REGISTRY/v2/" 2>/dev/null && break
    sleep 0.25
done
"${CURL[@]}" -o /dev/null "http://$REGISTRY/v2/" || { cat "$work/registry.log"; give_up "registry on $REGISTRY"; }
pass "registry listens on $REGISTRY"

# Throwaway keys, as a publisher has them: a GPG key in a keyring of its own, and an ECDSA P-256
# key for sigstore signatures; both behind one passphrase.
export GNUPGHOME="$work/gnupg"
mkdir -m 700 "$GNUPGHOME"
echo "throwaway-$id_suffix" >"$work/passphrase"
gpg --batch -q --pinentry-mode loopback --passphrase-file "$work/passphrase" \
    --quick-gen-key "tinyapi test <test-$id_suffix@tinyapi.invalid>" ed25519 sign never 2>/dev/null ||
    give_up "gpg --quick-gen-key"
fingerprint=$(gpg --list-keys --with-colons 2>/dev/null | awk -F: '$1 == "fpr" {print $10; exit}')
gpg --export "$fingerprint" >"$work/key.gpg"
{ openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -aes256 \
    -pass "file:$work/passphrase" -out "$work/sigstore.pem" &&
    openssl pkey -in "$work/sigstore.pem" -passin "file:$work/passphrase" -pubout -out "$work/sigstore.pub"; } 2>/dev/null ||
    give_up "openssl genpkey"
pass "throwaway keys: GPG $fingerprint, ECDSA P-256"

# --- publish --------------------------------------------------------------------------------------

readonly REPOSITORY="$REGISTRY/tinyapi"
readonly IMAGE="$REPOSITORY:$tag"
check "image/publish.py: every tag, signed (GPG into a lookaside directory, sigstore into the registry)" \
    python3 image/publish.py "$work/one" "$REPOSITORY" --plain-http --sign-by "$fingerprint" \
    --lookaside "$work/lookaside" --sigstore-key "$work/sigstore.pem" --passphrase-file "$work/passphrase"
for t in "${all_tags[@]}"; do
    pushed=$(skopeo inspect --raw --tls-verify=false "docker://$REPOSITORY:$t" | sha256sum | cut -d' ' -f1)
    check "the registry serves the same index as :$t" test "sha256:$pushed" = "$digest"
done
# The standard tool pushes the images under one tag (without referrers or signatures).
check "skopeo copy --all oci:LAYOUT:$tag docker://$REGISTRY/tinyapi-skopeo:$tag" \
    skopeo copy -q --all --dest-tls-verify=false "oci:$work/one:$tag" "docker://$REGISTRY/tinyapi-skopeo:$tag"
pushed=$(skopeo inspect --raw --tls-verify=false "docker://$REGISTRY/tinyapi-skopeo:$tag" | sha256sum | cut -d' ' -f1)
check "skopeo's copy has the same digest (sha256:$pushed)" test "sha256:$pushed" = "$digest"

# --- SBOM, provenance and signatures, found from the digests --------------------------------------

for image in "${image_digests[@]}"; do
    check "SBOM of ${image:0:19}: found from the image digest through the registry" \
        python3 tests/registry.py referrer "http://$REGISTRY" tinyapi "$image" \
        application/vnd.cyclonedx+json "$work/sbom-$image.json" || continue
    check "SBOM of ${image:0:19}: valid CycloneDX 1.5; Cargo.lock's crates with checksums and licences, a purl for every component, CPEs for musl and core, LICENSE" \
        "$work/venv/bin/python" -I tests/image_checks.py sbom "$work/sbom-$image.json" Cargo.lock LICENSE
done
if check "provenance: found from the index digest through the registry" \
    python3 tests/registry.py referrer "http://$REGISTRY" tinyapi "$digest" \
    application/vnd.in-toto+json "$work/provenance.json"; then
    check "provenance: in-toto SLSA v1 for the index and each image, commit $(git rev-parse --short HEAD), rustc, the commands" \
        python3 tests/image_checks.py provenance "$work/provenance.json" "$(git rev-parse HEAD)" "$digest" "${image_digests[@]}"
fi
for d in "$digest" "${image_digests[@]}"; do
    check "sigstore signature of ${d:0:19} (tag sha256-<hex>.sig) verifies with the public key" \
        python3 tests/registry.py sigstore "http://$REGISTRY" tinyapi "$d" "$work/sigstore.pub"
done

# --- podman: signature policy and HEALTHCHECK -----------------------------------------------------

# podman reads policy.json and registries.d from ~/.config/containers first: a HOME of our own
# keeps the machine's configuration out of it. Images and containers live under $work. runc, as
# Docker uses (crun cannot set up containers under a hybrid cgroup layout). The ulimits: podman
# raises both to its maximum by default, which a machine without CAP_SYS_RESOURCE refuses.
mkdir -p "$work/home/.config/containers/registries.d"
cat >"$work/home/.config/containers/policy.json" <<END
{"default": [{"type": "insecureAcceptAnything"}],
 "transports": {"docker": {"$REGISTRY": [{"type": "signedBy", "keyType": "GPGKeys",
   "keyPath": "$work/key.gpg", "signedIdentity": {"type": "matchRepository"}}]}}}
END
cat >"$work/home/.config/containers/registries.d/tinyapi.yaml" <<END
docker:
  $REGISTRY:
    lookaside: file://$work/lookaside
END
podman_bin=$(command -v podman)
podman() {
    HOME="$work/home" timeout 120 "$podman_bin" --root "$work/podman/root" --runroot "$work/podman/run" \
        --storage-driver vfs --cgroup-manager cgroupfs --events-backend file --runtime runc "$@"
}
# refused REFERENCE: podman's pull fails for want of a valid signature.
refused() {
    if podman pull -q --tls-verify=false "$1" >"$work/refused.log" 2>&1; then
        note "pulled $1"
        return 1
    fi
    note "$(tail -1 "$work/refused.log")"
    grep -qi signature "$work/refused.log"
}
check "podman pull $REPOSITORY:latest under a policy requiring the key: accepted" \
    podman pull -q --tls-verify=false "$REPOSITORY:latest"
check "podman pull of the unsigned $REGISTRY/tinyapi-skopeo:$tag: refused" refused "$REGISTRY/tinyapi-skopeo:$tag"
# Tampered: the amd64 image made to run as root, carrying the genuine image's signature.
tampered=$(python3 tests/image_checks.py tamper "$work/one" "$work/tampered")
python3 image/publish.py "$work/tampered" "$REPOSITORY" --plain-http >/dev/null
mkdir -p "$work/lookaside/tinyapi@${tampered/:/=}"
cp "$work/lookaside/tinyapi@${image_digests[0]/:/=}/signature-1" "$work/lookaside/tinyapi@${tampered/:/=}/"
check "podman pull of a tampered image carrying a genuine signature: refused" refused "$REPOSITORY:tampered"

podman_port=$(free_port)
readonly PODMAN_CONTAINER="$NAME_PREFIX-podman"
check "podman: the image's HEALTHCHECK" test \
    "$(podman image inspect -f '{{json .HealthCheck.Test}}' "$REPOSITORY:latest")" = '["CMD","/tinyapi","--probe"]'
podman_run() {
    podman run -d --name "$PODMAN_CONTAINER" --network host --read-only --cap-drop ALL \
        --security-opt no-new-privileges --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
        -e "TINYAPI_LISTEN=127.0.0.1:$podman_port" "$REPOSITORY:latest" >"$work/podman-run.log" 2>&1 ||
        { cat "$work/podman-run.log"; return 1; }
}
podman_healthy() {
    for _ in $(seq 1 $((HEALTHY_WAIT_S * 2))); do
        # Without systemd no timer runs the checks: run each, as the timer would.
        podman healthcheck run "$PODMAN_CONTAINER" >/dev/null 2>&1 &&
            [ "$(podman inspect -f '{{.State.Health.Status}}' "$PODMAN_CONTAINER")" = healthy ] && return 0
        sleep 0.5
    done
    return 1
}
if check "podman run, hardened, on 127.0.0.1:$podman_port" podman_run; then
    check "podman healthcheck run: healthy" podman_healthy
    note "podman inspect: $(podman inspect -f '{{.State.Health.Status}}, failing streak {{.State.Health.FailingStreak}}' "$PODMAN_CONTAINER" 2>/dev/null)"
fi
podman rm -f "$PODMAN_CONTAINER" >/dev/null 2>&1 || true
# podman build writes OCI-format images unless told otherwise, and drops the HEALTHCHECK there.
podman_build_keeps_healthcheck() {
    podman build -q --format docker -t "tinyapi-image-test:podman-$id_suffix" . >"$work/podman-build.log" 2>&1 ||
        { cat "$work/podman-build.log"; return 1; }
    test "$(podman image inspect -f '{{json .HealthCheck.Test}}' "tinyapi-image-test:podman-$id_suffix")" = \
        '["CMD","/tinyapi","--probe"]'
}
check "podman build --format docker: the Dockerfile's HEALTHCHECK kept" podman_build_keeps_healthcheck

# --- Docker ---------------------------------------------------------------------------------------

# A daemon we start may pull from the local registry (a loopback registry needs no
# --insecure-registry in one that is already running).
ensure_daemon --insecure-registry "$REGISTRY" || give_up "a Docker daemon starts"

# pull PLATFORM LOCAL-TAG: pulls IMAGE for PLATFORM and tags it locally, as the next pull
# replaces the tag. Keeps what docker pull printed in $work/pull-PLATFORM. The image is removed
# on exit by ID: its digest reference would keep it alive otherwise.
pull() {
    local log="$work/pull-${1//\//-}"
    timeout 120 docker pull --platform "$1" "$IMAGE" >"$log" 2>&1 || { cat "$log"; return 1; }
    images+=("$(docker image inspect -f '{{.Id}}' "$IMAGE")")
    docker tag "$IMAGE" "$2"
}
inspect() { docker image inspect -f "$2" "$1"; }
readonly HEALTHCHECK='{"Test":["CMD","/tinyapi","--probe"],"Interval":5000000000,"Timeout":3000000000,"StartPeriod":5000000000,"Retries":3}'

images+=("$IMAGE")
for platform in linux/arm64 linux/amd64; do
    local_tag="tinyapi-image-test:${platform#linux/}-$id_suffix"
    if ! pull "$platform" "$local_tag"; then
        fail "docker pull --platform $platform"
        continue
    fi
    pass "docker pull --platform $platform"
    sed 's/^/      | /' "$work/pull-${platform//\//-}"
    want=${platform#linux/}
    [ "$want" = arm64 ] && want="arm64 v8" || want="amd64 "
    check "$platform: Architecture and Variant '$want'" test "$(inspect "$local_tag" '{{.Architecture}} {{.Variant}}')" = "$want"
    check "$platform: Healthcheck" test "$(inspect "$local_tag" '{{json .Config.Healthcheck}}')" = "$HEALTHCHECK"
    check "$platform: User 65532:65532, Entrypoint, StopSignal" test \
        "$(inspect "$local_tag" '{{.Config.User}} {{json .Config.Entrypoint}} {{.Config.StopSignal}}')" = \
        '65532:65532 ["/tinyapi"] SIGTERM'
    note "$platform image size: $(inspect "$local_tag" '{{.Size}}') bytes"
done

# --- running the pulled images --------------------------------------------------------------------

run_container() {
    local name=$1
    shift
    containers+=("$name")
    timeout 60 docker run -d --name "$name" --network host --read-only --cap-drop ALL \
        --security-opt no-new-privileges --health-interval 1s --health-start-period 5s "$@" >/dev/null
}
wait_ready() {
    for _ in $(seq 1 $((READY_WAIT_S * 10))); do
        "${CURL[@]}" -o /dev/null "http://127.0.0.1:$2/alwaysok" 2>/dev/null && return 0
        [ "$(docker inspect -f '{{.State.Running}}' "$1")" = true ] || { docker logs "$1" 2>&1 | tail -3; return 1; }
        sleep 0.1
    done
    return 1
}
status_200() { [ "$("${CURL[@]}" -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1$2")" = 200 ]; }
# serves LABEL IMAGE [DOCKER-RUN-OPTION...]: hardened on a free loopback port, every endpoint, healthy.
serves() {
    local label=$1 image=$2 port name
    shift 2
    port=$(free_port)
    name="$NAME_PREFIX-${label//[^a-z0-9]/-}"
    check "$label: starts hardened on 127.0.0.1:$port" \
        run_container "$name" -e "TINYAPI_LISTEN=127.0.0.1:$port" "$@" "$image" || return 0
    check "$label: answers" wait_ready "$name" "$port" || return 0
    local path
    for path in / /alwaysok /healthcheck; do
        check "$label: GET $path 200" status_200 "$port" "$path"
    done
    check "$label: healthy" wait_healthy "$name"
    docker stop "$name" >/dev/null || true
}

serves "amd64 image" "tinyapi-image-test:amd64-$id_suffix"

# qemu-user for arm64 binaries inside containers: an aarch64 handler with the F flag (the
# interpreter is opened now, so it need not exist inside the container).
binfmt_ready() {
    if [ ! -e "$BINFMT/register" ]; then
        mount -t binfmt_misc binfmt_misc "$BINFMT" 2>"$work/binfmt.err" || return 1
        binfmt_mounted=1
    fi
    grep -qs '^enabled' "$BINFMT/status" || { echo "binfmt_misc is disabled" >"$work/binfmt.err"; return 1; }
    local f
    for f in "$BINFMT"/*; do
        grep -qs '^flags:.*F' "$f" && grep -qs '^magic 7f454c460201010000000000000000000200b700' "$f" && return 0
    done
    printf ':tinyapi-aarch64:M::\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00:\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff:%s:F' \
        "$(command -v qemu-aarch64-static)" >"$BINFMT/register" 2>"$work/binfmt.err" || return 1
    binfmt_registered=tinyapi-aarch64
}
if binfmt_ready; then
    # qemu-user has no seccomp: the server says so once and serves without the filter.
    serves "arm64 image under qemu" "tinyapi-image-test:arm64-$id_suffix" --platform linux/arm64
    check "arm64 image under qemu: one line says it serves without the seccomp filter" test \
        "$(docker logs "$NAME_PREFIX-arm64-image-under-qemu" 2>&1 | grep -c 'serving without the seccomp filter')" = 1
else
    note "SKIP arm64 image under qemu: binfmt_misc unusable here ($(head -c 200 "$work/binfmt.err"))"
fi

# --- the classic builder's arm64 image ------------------------------------------------------------

readonly CLASSIC="tinyapi-image-test:classic-arm64-$id_suffix"
images+=("$CLASSIC")
if DOCKER_BUILDKIT=0 timeout 120 docker build -q --platform linux/arm64 -f image/arm64.Dockerfile \
    -t "$CLASSIC" . >"$work/classic.log" 2>&1; then
    pass "classic build --platform linux/arm64 -f image/arm64.Dockerfile"
    check "classic arm64 image: Architecture arm64" test "$(inspect "$CLASSIC" '{{.Architecture}}')" = arm64
    # The same config as the layout's, except the labels that only the layout knows.
    # shellcheck disable=SC2016 # a Go template
    config='{{.Config.User}} {{json .Config.ExposedPorts}} {{json .Config.Entrypoint}} {{json .Config.Healthcheck}} {{.Config.StopSignal}} {{range $k, $v := .Config.Labels}}{{if and (ne $k "org.opencontainers.image.revision") (ne $k "org.opencontainers.image.created")}}{{$k}}={{$v}};{{end}}{{end}}'
    check "classic arm64 image: the layout's config" test \
        "$(inspect "$CLASSIC" "$config")" = "$(inspect "tinyapi-image-test:arm64-$id_suffix" "$config")"
else
    cat "$work/classic.log"
    fail "classic build --platform linux/arm64 -f image/arm64.Dockerfile"
fi

summary
[ "$failed" -eq 0 ]
