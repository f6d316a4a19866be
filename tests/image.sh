#!/usr/bin/env bash
# Tests the multi-platform OCI layout of image/build.sh the way it is published and used, and the
# Dockerfiles that build one platform's image:
#
#   tests/image.sh            (as root: it may install packages, start dockerd, mount binfmt_misc)
#
# - two builds of the layout are byte-identical (same image index digest), with the conventional
#   tags, an image per row of .cargo/platforms holding that row's binary, and a referrers
#   fallback tag per image and for the index; nothing in the index lacks a platform;
# - image/publish.py pushes it to a local registry (Debian's docker-registry, on 127.0.0.1 only)
#   under the same digest and every tag, signed with throwaway keys (GPG and sigstore); `skopeo
#   copy --all` pushes the same digest too;
# - from each image's digest alone, the registry gives its SBOM (by the referrers API, or the
#   fallback tag where, as here, there is none), valid CycloneDX (cyclonedx-python-lib's strict
#   validator, from PyPI) with a purl for every component, licences, the LICENSE text and the
#   compiler that built the binary; from the index's digest, an in-toto SLSA v1 provenance
#   statement naming this commit and each platform's compiler; each sigstore signature verifies
#   with the public key;
# - podman, under a policy.json that requires the GPG key, pulls the signed image for every
#   platform (each the layout's manifest for it) and refuses an unsigned one and a tampered one
#   carrying a genuine signature; the pulled image, run hardened under podman, is `healthy` by
#   its own HEALTHCHECK; `podman build --format docker` keeps it;
# - Docker pulls every platform from there with the right architecture, variant and HEALTHCHECK;
#   Docker, podman and skopeo asked for a platform the index lacks (linux/mips64le) say there is
#   no image for it;
# - every platform's image serves every endpoint hardened and reports `healthy`: natively where
#   the table has no emulator (amd64, 386), under qemu-user through binfmt_misc otherwise, when
#   binfmt_misc can be used here (each skipped, saying why, when it cannot);
# - the Dockerfile under BuildKit, and image/plain.Dockerfile under the classic builder and under
#   podman, build every platform's image with that platform's binary and the layout's config.
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
binfmt_registered=()
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
    for c in "${binfmt_registered[@]}"; do echo -1 >"$BINFMT/$c" 2>/dev/null || true; done
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
command -v qemu-s390x-static >/dev/null || need+=(qemu-user-static)
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

# The rows of .cargo/platforms, one a line: NAME TRIPLE PLATFORM EMULATOR QEMU_CPU.
mapfile -t rows < <(awk '{sub(/#.*/, "")} NF {print $1, $2, $3, $5, $6}' .cargo/platforms)
# One line per image: PLATFORM MANIFEST.
layout_ok() { python3 tests/image_checks.py layout "$work/one" >"$work/images"; }
check "layout: tags $tag, major.minor, major, latest, sha-<commit>; an image per row of .cargo/platforms ($(printf '%s\n' "${rows[@]}" | cut -d' ' -f3 | paste -sd' ')) in Docker's format, one layer holding only the row's tinyapi; an SBOM per image and a provenance for the index, behind sha256-<hex> fallback tags; no index entry without a platform" \
    layout_ok
read -ra image_digests <<<"$(cut -d' ' -f2 "$work/images" | tr '\n' ' ')"
# manifest_of PLATFORM: the layout's image manifest for PLATFORM.
manifest_of() { awk -v p="$1" '$1 == p {print $2}' "$work/images"; }

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
    check "SBOM of ${image:0:19}: valid CycloneDX 1.5; Cargo.lock's crates with checksums and licences, a purl for every component, CPEs for musl (where linked) and core, LICENSE, the compiler recorded for the binary" \
        "$work/venv/bin/python" -I tests/image_checks.py sbom "$work/sbom-$image.json" Cargo.lock LICENSE
done
if check "provenance: found from the index digest through the registry" \
    python3 tests/registry.py referrer "http://$REGISTRY" tinyapi "$digest" \
    application/vnd.in-toto+json "$work/provenance.json"; then
    check "provenance: in-toto SLSA v1 for the index and each image, commit $(git rev-parse --short HEAD), each platform's target and compiler, the commands" \
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

# Every platform, as a machine of that kind pulls it: each under the signature policy, and each
# the layout's image for that platform.
podman_pulls() {
    local platform=$1 id got want
    id=$(podman pull -q --tls-verify=false --platform "$platform" "$REPOSITORY:latest" 2>"$work/podman-pull.log") ||
        { cat "$work/podman-pull.log"; return 1; }
    # Digest names what was asked for (the index); RepoDigests the manifest taken from it too.
    got=$(podman image inspect -f '{{.Os}}/{{.Architecture}} {{range .RepoDigests}}{{.}} {{end}}' "$id")
    want="$(cut -d/ -f1,2 <<<"$platform") .*@$(manifest_of "$platform") "
    [[ "$got" =~ ^$want ]] || { note "podman image inspect: $got; want $want"; return 1; }
}
for row in "${rows[@]}"; do
    read -r _ _ platform _ _ <<<"$row"
    check "podman pull --platform $platform: signed, the layout's $platform manifest" podman_pulls "$platform"
done

podman_port=$(free_port)
readonly PODMAN_CONTAINER="$NAME_PREFIX-podman"
# The pulls above moved the tag to the last platform: back to the host's, as a plain pull takes it.
podman pull -q --tls-verify=false "$REPOSITORY:latest" >/dev/null
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
# The platform as Docker's image inspect spells it: os/architecture[/variant].
readonly PLATFORM_OF='{{.Os}}/{{.Architecture}}{{with .Variant}}/{{.}}{{end}}'
readonly HEALTHCHECK='{"Test":["CMD","/tinyapi","--probe"],"Interval":5000000000,"Timeout":3000000000,"StartPeriod":5000000000,"Retries":3}'
local_tag() { echo "tinyapi-image-test:$1-$id_suffix"; }

images+=("$IMAGE")
for row in "${rows[@]}"; do
    read -r name _ platform _ _ <<<"$row"
    if ! pull "$platform" "$(local_tag "$name")"; then
        fail "docker pull --platform $platform"
        continue
    fi
    pass "docker pull --platform $platform"
    sed 's/^/      | /' "$work/pull-${platform//\//-}"
    check "$platform: the image's platform" test "$(inspect "$(local_tag "$name")" "$PLATFORM_OF")" = "$platform"
    check "$platform: Healthcheck" test "$(inspect "$(local_tag "$name")" '{{json .Config.Healthcheck}}')" = "$HEALTHCHECK"
    check "$platform: User 65532:65532, Entrypoint, StopSignal" test \
        "$(inspect "$(local_tag "$name")" '{{.Config.User}} {{json .Config.Entrypoint}} {{.Config.StopSignal}}')" = \
        '65532:65532 ["/tinyapi"] SIGTERM'
    note "$platform image size: $(inspect "$(local_tag "$name")" '{{.Size}}') bytes"
done

# --- a platform the index lacks -------------------------------------------------------------------

# no_image_for LOG COMMAND...: the command fails, saying that the index has no image for the
# platform; not by taking an entry without a platform (an SBOM, say) and failing on that.
no_image_for() {
    local log="$work/missing-$1"
    shift
    if timeout 60 "$@" >"$log" 2>&1; then
        note "it succeeded"
        return 1
    fi
    note "$(grep -v '^\s*$' "$log" | tail -1)"
    grep -qiE 'no matching manifest for linux/mips64le|no image found in (manifest list|image index) for architecture mips64le' "$log" &&
        ! grep -qiE 'artifact|application/vnd' "$log"
}
readonly MISSING=linux/mips64le
check "docker pull --platform $MISSING: no image for that platform" \
    no_image_for docker docker pull --platform "$MISSING" "$IMAGE"
check "podman pull --platform $MISSING: no image for that platform" \
    no_image_for podman podman pull --tls-verify=false --platform "$MISSING" "$IMAGE"
check "skopeo copy --override-arch mips64le: no image for that platform" \
    no_image_for skopeo skopeo copy -q --src-tls-verify=false --override-os linux --override-arch mips64le \
    "docker://$IMAGE" "dir:$work/mips64le"

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
# serves LABEL IMAGE [DOCKER-RUN-OPTION...]: hardened on a free loopback port, every endpoint,
# healthy. The container's name is in $served.
serves() {
    local label=$1 image=$2 port
    shift 2
    port=$(free_port)
    served="$NAME_PREFIX-${label//[^a-z0-9]/-}"
    check "$label: starts hardened on 127.0.0.1:$port" \
        run_container "$served" -e "TINYAPI_LISTEN=127.0.0.1:$port" "$@" "$image" || return 1
    check "$label: answers" wait_ready "$served" "$port" || return 1
    local path
    for path in / /alwaysok /healthcheck; do
        check "$label: GET $path 200" status_200 "$port" "$path"
    done
    check "$label: healthy" wait_healthy "$served"
    docker stop "$served" >/dev/null || true
}

# binfmt_ready EMULATOR: a binfmt_misc handler runs EMULATOR's (qemu-ARCH-static's) binaries
# inside containers. qemu-user-static's own, from /usr/lib/binfmt.d/qemu-ARCH.conf, with the F
# flag (the interpreter is opened at registration, so it need not exist inside the container):
# the one registered already, or registered here under a name of our own, removed on exit. A
# handler registered later is tried first.
binfmt_ready() {
    local arch=${1#qemu-}
    arch=${arch%-static}
    if [ ! -e "$BINFMT/register" ]; then
        mount -t binfmt_misc binfmt_misc "$BINFMT" 2>"$work/binfmt.err" || return 1
        binfmt_mounted=1
    fi
    grep -qs '^enabled' "$BINFMT/status" || { echo "binfmt_misc is disabled" >"$work/binfmt.err"; return 1; }
    local f
    for f in "$BINFMT/qemu-$arch" "$BINFMT/tinyapi-qemu-$arch"; do
        grep -qs '^enabled' "$f" && grep -qs '^flags:.*F' "$f" && return 0
    done
    sed "s/^:qemu-$arch:/:tinyapi-qemu-$arch:/" "/usr/lib/binfmt.d/qemu-$arch.conf" \
        >"$BINFMT/register" 2>"$work/binfmt.err" || return 1
    binfmt_registered+=("tinyapi-qemu-$arch")
}

for row in "${rows[@]}"; do
    read -r name _ platform emulator qemu_cpu <<<"$row"
    if [ "$emulator" = - ]; then
        serves "$platform image" "$(local_tag "$name")" --platform "$platform" || true
        continue
    fi
    if ! binfmt_ready "$emulator"; then
        note "SKIP $platform image under qemu: binfmt_misc unusable here ($(head -c 200 "$work/binfmt.err"))"
        continue
    fi
    # qemu reads QEMU_CPU from the environment, which the container and its health checks share.
    cpu=()
    [ "$qemu_cpu" = - ] || cpu=(-e "QEMU_CPU=$qemu_cpu")
    # qemu-user has no seccomp: the server says so once and serves without the filter.
    serves "$platform image under $emulator${cpu[*]:+ ${cpu[1]}}" "$(local_tag "$name")" --platform "$platform" "${cpu[@]}" &&
        check "$platform image under qemu: one line says it serves without the seccomp filter" test \
            "$(docker logs "$served" 2>&1 | grep -c 'serving without the seccomp filter')" = 1
done

# --- the Dockerfiles, for every platform ----------------------------------------------------------

# BuildKit: buildx where the client has it, else a client from before Docker 23 (Debian's
# docker.io), whose `docker build` drives the daemon's BuildKit itself.
buildkit_client=""
for c in docker /usr/bin/docker; do
    major=$("$c" version -f '{{.Client.Version}}' 2>/dev/null | cut -d. -f1) || continue
    [[ "$major" =~ ^[0-9]+$ ]] && ((major < 23)) && buildkit_client=$c && break
done
buildkit() {
    if docker buildx version >/dev/null 2>&1; then
        timeout 120 docker buildx build --load "$@"
    else
        DOCKER_BUILDKIT=1 timeout 120 "$buildkit_client" build "$@"
    fi
}
# holds_binary ENGINE IMAGE FILE: the image's /tinyapi is FILE (copied out of a container created,
# not started, from the image).
holds_binary() {
    local c rc=0
    c=$("$1" create "$2" 2>/dev/null) || return 1
    "$1" cp "$c:/tinyapi" "$work/copied" >/dev/null && cmp -s "$work/copied" "$3" || rc=1
    "$1" rm "$c" >/dev/null 2>&1
    return $rc
}
# The config a Dockerfile gives, without the labels only the layout knows (revision, created).
# shellcheck disable=SC2016 # a Go template
readonly CONFIG='{{.Config.User}} {{json .Config.ExposedPorts}} {{json .Config.Entrypoint}} {{json .Config.Healthcheck}} {{.Config.StopSignal}} {{range $k, $v := .Config.Labels}}{{if and (ne $k "org.opencontainers.image.revision") (ne $k "org.opencontainers.image.created")}}{{$k}}={{$v}};{{end}}{{end}}'
# built_right ENGINE BUILT PLATFORM TRIPLE NAME: the image BUILT has PLATFORM's binary and
# platform (BuildKit drops arm64's v8, the classic builder keeps what --platform says; podman 4.3
# shows no variant), and the config of the layout's image that Docker pulled for the row NAME.
built_right() {
    local engine=$1 built=$2 platform=$3 triple=$4 name=$5 want got
    holds_binary "$engine" "$built" "target/$triple/release/tinyapi" || { note "not the $triple binary"; return 1; }
    if [ "$engine" = podman ]; then
        want=$(cut -d/ -f1,2 <<<"$platform")
        test "$(podman image inspect -f '{{.Os}}/{{.Architecture}}' "$built")" = "$want" &&
            test "$(podman image inspect -f '{{json .HealthCheck.Test}}' "$built")" = '["CMD","/tinyapi","--probe"]'
    else
        got=$(inspect "$built" "$PLATFORM_OF")
        test "${got%/v8}" = "${platform%/v8}" &&
            test "$(inspect "$built" "$CONFIG")" = "$(inspect "$(local_tag "$name")" "$CONFIG")"
    fi
}

# build_then_check WHAT CLIENT BUILT CMD...: runs the build command; checks the image it tagged
# BUILT (built_right, for the row in $name, $triple and $platform), or shows the build's output.
build_then_check() {
    local what=$1 client=$2 built=$3
    shift 3
    if "$@" >"$work/build.log" 2>&1; then
        check "$what, --platform $platform: $triple's binary, the image's config" \
            built_right "$client" "$built" "$platform" "$triple" "$name"
    else
        cat "$work/build.log"
        fail "$what, --platform $platform"
    fi
}

for row in "${rows[@]}"; do
    read -r name triple platform _ _ <<<"$row"
    built="tinyapi-image-test:buildkit-$name-$id_suffix"
    images+=("$built")
    if [ -z "$buildkit_client" ] && ! docker buildx version >/dev/null 2>&1; then
        note "SKIP BuildKit build of $platform: no buildx and no client from before Docker 23 here"
    else
        build_then_check "BuildKit, Dockerfile" docker "$built" \
            buildkit -q --platform "$platform" -t "$built" .
    fi
    built="tinyapi-image-test:classic-$name-$id_suffix"
    images+=("$built")
    build_then_check "classic builder, image/plain.Dockerfile" docker "$built" \
        env DOCKER_BUILDKIT=0 timeout 120 docker build -q --no-cache --platform "$platform" \
        --build-arg "RUST_TARGET=$triple" -f image/plain.Dockerfile -t "$built" .
    built="tinyapi-image-test:podman-$name-$id_suffix"
    build_then_check "podman build, image/plain.Dockerfile" podman "$built" \
        podman build -q --no-cache --format docker --platform "$platform" \
        --build-arg "RUST_TARGET=$triple" -f image/plain.Dockerfile -t "$built" .
done

summary
[ "$failed" -eq 0 ]
