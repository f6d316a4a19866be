#!/usr/bin/env bash
# Tests the multi-platform OCI layout of image/build.sh the way it is published and used:
#
#   tests/image.sh            (as root: it may install packages, start dockerd, mount binfmt_misc)
#
# - two builds of the layout are byte-identical (same image index digest);
# - each image's CycloneDX SBOM is valid (cyclonedx-python-lib's strict validator, from PyPI) and
#   names the crates of Cargo.lock with their checksums, and musl;
# - `skopeo copy --all` pushes it to a local registry (Debian's docker-registry, on 127.0.0.1 only)
#   under the same digest;
# - Docker pulls each platform from there with the right architecture, variant and HEALTHCHECK;
# - the amd64 image serves every endpoint hardened and reports `healthy`; the arm64 one does too
#   under qemu, when binfmt_misc can be used here (skipped, saying why, when it cannot);
# - the classic builder's arm64 image (image/arm64.Dockerfile) is labelled arm64 and has the same
#   config as the layout's.
# Starts the registry, and dockerd if none is running (as tests/docker.sh does), and stops what it
# started, by PID. Only loopback traffic. Ends with `image: N passed, M failed`; exits 1 on a failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly DAEMON_WAIT_S=60
readonly READY_WAIT_S=20   # the arm64 container starts under emulation
readonly HEALTHY_WAIT_S=30
readonly CURL=(curl -sS --max-time 3)
readonly BINFMT=/proc/sys/fs/binfmt_misc

id_suffix="$$-$(date +%s)"
readonly TAG="test-${id_suffix}"
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

# blob LAYOUT DIGEST: the path of a blob.
blob() { echo "$1/blobs/sha256/${2#sha256:}"; }
# index_digest LAYOUT: the digest of the image index that index.json tags.
index_digest() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$1/index.json"; }

bash image/build.sh "$work/one" >"$work/build.log" 2>&1 || { cat "$work/build.log"; give_up "image/build.sh"; }
bash image/build.sh "$work/two" >>"$work/build.log" 2>&1 || { cat "$work/build.log"; give_up "image/build.sh (again)"; }
pass "image/build.sh builds the layout twice"
digest=$(index_digest "$work/one")
tag=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"])' "$work/one/index.json")
note "image index $digest (tag $tag)"
check "two builds: same index digest ($digest)" test "$digest" = "$(index_digest "$work/two")"
check "two builds: byte-identical layouts" diff -r "$work/one" "$work/two"

# The layout's structure, SBOM artifacts included; prints one line per image: ARCH VARIANT MANIFEST.
python3 - "$work/one" "$digest" >"$work/images" 2>"$work/layout.err" <<'EOF' || true
import json, sys, tarfile, gzip, io
out, digest = sys.argv[1:]
def load(d): return open(f"{out}/blobs/sha256/{d.split(':')[1]}", "rb").read()
index = json.loads(load(digest))
images = {m["digest"]: m for m in index["manifests"] if "platform" in m}
artifacts = [m for m in index["manifests"] if "platform" not in m]
assert sorted((m["platform"]["architecture"], m["platform"].get("variant")) for m in images.values()) \
    == [("amd64", None), ("arm64", "v8")], "platforms"
for d, m in images.items():
    manifest = json.loads(load(d))
    assert len(manifest["layers"]) == 1, "one layer"
    names = tarfile.open(fileobj=io.BytesIO(gzip.decompress(load(manifest["layers"][0]["digest"])))).getnames()
    assert names == ["tinyapi"], f"layer holds {names}"
    p = m["platform"]
    print(p["architecture"], p.get("variant", "-"), d)
subjects = set()
for a in artifacts:
    manifest = json.loads(load(a["digest"]))
    assert manifest["artifactType"] == "application/vnd.cyclonedx+json", "artifactType"
    assert manifest["layers"][0]["mediaType"] == "application/vnd.cyclonedx+json", "SBOM media type"
    subjects.add(manifest["subject"]["digest"])
    print("sbom", manifest["subject"]["digest"], manifest["layers"][0]["digest"])
assert subjects == set(images), "one SBOM per image, each naming its image as subject"
EOF
check "layout: linux/amd64 and linux/arm64/v8, one layer holding only tinyapi, an SBOM per image" \
    test ! -s "$work/layout.err"
[ -s "$work/layout.err" ] && cat "$work/layout.err"

# --- SBOM -----------------------------------------------------------------------------------------

# sbom_ok FILE: valid CycloneDX 1.5, and it names what Cargo.lock and the toolchain put in.
sbom_ok() {
    "$work/venv/bin/python" -I - "$1" Cargo.lock <<'EOF'
import json, re, sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
sbom_text, lock = open(sys.argv[1]).read(), open(sys.argv[2]).read()
error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(sbom_text)
if error:
    sys.exit(f"invalid CycloneDX: {error}")
components = {c["name"]: c for c in json.loads(sbom_text)["components"]}
for block in lock.split("[[package]]")[1:]:
    fields = dict(re.findall(r'^(\w+) = "([^"]*)"', block, re.M))
    if "checksum" not in fields:
        continue
    c = components.get(fields["name"], {})
    if c.get("version") != fields["version"] or c.get("hashes") != [{"alg": "SHA-256", "content": fields["checksum"]}]:
        sys.exit(f"{fields['name']} {fields['version']} missing or without its Cargo.lock checksum")
if not re.fullmatch(r"\d+\.\d+\.\d+", components.get("musl", {}).get("version", "")):
    sys.exit("no musl version")
print(f"      musl {components['musl']['version']}, " + ", ".join(
    f"{n} {c['version']}" for n, c in sorted(components.items()) if n not in ("musl",)))
EOF
}
while read -r kind subject sbom; do
    [ "$kind" = sbom ] || continue
    check "SBOM of ${subject:0:19}: valid CycloneDX 1.5 with the Cargo.lock crates and musl" \
        sbom_ok "$(blob "$work/one" "$sbom")"
done <"$work/images"

# --- registry -------------------------------------------------------------------------------------

port=$(free_port)
readonly REGISTRY="127.0.0.1:$port"
mkdir -p "$work/registry"
cat >"$work/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: $REGISTRY
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 1 40); do
    "${CURL[@]}" -o /dev/null "http://$REGISTRY/v2/" 2>/dev/null && break
    sleep 0.25
done
"${CURL[@]}" -o /dev/null "http://$REGISTRY/v2/" || { cat "$work/registry.log"; give_up "registry on $REGISTRY"; }
pass "registry listens on $REGISTRY"

readonly IMAGE="$REGISTRY/tinyapi:$TAG"
check "skopeo copy --all oci:LAYOUT:$tag docker://$IMAGE" \
    skopeo copy -q --all --dest-tls-verify=false "oci:$work/one:$tag" "docker://$IMAGE"
pushed=$(skopeo inspect --raw --tls-verify=false "docker://$IMAGE" | sha256sum | cut -d' ' -f1)
check "the registry serves the same index (sha256:$pushed)" test "sha256:$pushed" = "$digest"

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
