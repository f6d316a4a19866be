#!/usr/bin/env python3
"""Writes tinyapi's multi-platform OCI image layout (image-spec 1.1) from the release binaries.

    python3 image/layout.py OUT_DIR      (image/build.sh builds the binaries, then runs this)

OUT_DIR gets `oci-layout`, `index.json` and `blobs/sha256/`. The image index lists one image per
row of .cargo/platforms, in the table's order, with the row's platform (linux/amd64,
linux/arm64/v8, linux/arm/v7, ...): a single gzip layer holding only `/tinyapi`, the row's
release binary, and the same config as the Dockerfile. index.json tags it with the crate version
and its conventional shorter forms (`0.1.0`, `0.1`, `0`, `latest`) and with `sha-` and the
commit's first 12 hex digits, a tag that no other commit reuses.

Each image's manifest is in Docker's format (schema 2), inside the OCI index: podman and buildah
read a HEALTHCHECK only from a Docker-format image, Docker reads it from either.

Documents about an image are OCI 1.1 artifacts outside the index, found by their `subject`: a
CycloneDX SBOM per image (naming the compiler that built its binary, which differs by row), and
an in-toto SLSA provenance statement for the index. A registry with the referrers API lists them
itself; for one without (Debian's docker-registry 2.8), each subject has the referrers tag
schema's fallback tag, `sha256-<hex digest of the subject>`, an index of its artifacts. Keeping
them out of the image index matters: podman, skopeo and CRI-O fall back to an entry without a
platform when none matches, and would pull an SBOM as an image instead of saying that there is
no image for the platform.

Every byte follows from the commit and the binaries: `created` is the commit time, the layer's tar
entry has a fixed mode, owner and mtime, its gzip header no name or time, and JSON keys come in a
fixed order. Two builds of one commit give the same index digest. The layer is compressed here
because a registry push would otherwise compress it (skopeo does) and change the digests.

Why not umoci: it writes index entries without a platform, cannot make a multi-platform index or
an artifact with a subject, and stamps the config and history with the current time (its
--clear=config.created and mtime options get the layer close, but the index would still need
editing by hand). The JSON here is the whole format, and small enough to read.
"""

import collections
import functools
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import time
import uuid
import zlib
from platform import python_version

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The platforms: one row each, the same table the build, the tests and CI read.
TABLE = os.path.join(ROOT, ".cargo", "platforms")

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
CYCLONEDX = "application/vnd.cyclonedx+json"
IN_TOTO = "application/vnd.in-toto+json"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"

SECOND = 1_000_000_000  # Docker's Healthcheck durations are nanoseconds

# The Dockerfile's settings (tests/image.sh checks that Docker sees the same).
DESCRIPTION = ("The tiny API service (/, /alwaysok, /healthcheck, /panic) as a static no_std "
               "binary of a few kilobytes")
CONFIG = {
    "User": "65532:65532",
    "ExposedPorts": {"8080/tcp": {}},
    "Entrypoint": ["/tinyapi"],
    "StopSignal": "SIGTERM",
    "Healthcheck": {
        "Test": ["CMD", "/tinyapi", "--probe"],
        "Interval": 5 * SECOND,
        "Timeout": 3 * SECOND,
        "StartPeriod": 5 * SECOND,
        "Retries": 3,
    },
}


class Platform(collections.namedtuple("Platform", "name target oci toolchain")):
    """A row of .cargo/platforms: its name, its Rust target, its OCI platform (a dict in the
    image-spec's key order) and its toolchain column (`stable`, or the nightly-DATE that builds
    the target's `core` when the pinned toolchain has no standard library for it)."""

    @property
    def binary(self):
        return os.path.join(ROOT, "target", self.target, "release", "tinyapi")

    @property
    def rustc_record(self):
        """What .cargo/build-target writes next to the binary: `rustc -V` of its compiler."""
        return self.binary + ".rustc"


def platforms():
    """The rows of .cargo/platforms, in its order. Columns are separated by whitespace and `#`
    starts a comment; the first four are name, triple, platform (os/architecture[/variant]) and
    toolchain."""
    rows = []
    with open(TABLE) as f:
        for line in f:
            cells = line.split("#", 1)[0].split()
            if not cells:
                continue
            name, target, platform, toolchain = cells[:4]
            os_name, architecture, *variant = platform.split("/")
            oci = {"architecture": architecture, "os": os_name}
            if variant:
                oci["variant"] = variant[0]
            rows.append(Platform(name, target, oci, toolchain))
    return rows


def pinned_toolchain():
    """The channel rust-toolchain.toml pins: the table's `stable`."""
    with open(os.path.join(ROOT, "rust-toolchain.toml")) as f:
        return re.search(r'^channel\s*=\s*"([^"]+)"', f.read(), re.M).group(1)


def git(*args):
    return subprocess.run(["git", "-C", ROOT, *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def canonical(obj):
    """Compact JSON, keys in the order given. The index and its descriptors use the order of the
    Go types in image-spec, which is how skopeo writes an index it copies: the pushed index then
    has the same bytes, and digest, as the one here."""
    return json.dumps(obj, separators=(",", ":")).encode()


class Layout:
    """An OCI image layout directory: content-addressed blobs and the top-level index.json."""

    def __init__(self, out):
        self.out = out
        os.makedirs(os.path.join(out, "blobs", "sha256"), exist_ok=True)

    def blob(self, media_type, data, **extra):
        """Stores data and returns its descriptor."""
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(self.out, "blobs", "sha256", digest), "wb") as f:
            f.write(data)
        return {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data), **extra}

    def finish(self, tagged):
        """Writes index.json, naming each (tag, descriptor) of tagged."""
        with open(os.path.join(self.out, "oci-layout"), "wb") as f:
            f.write(canonical({"imageLayoutVersion": "1.0.0"}))
        top = {"schemaVersion": 2, "mediaType": OCI_INDEX,
               "manifests": [dict(plain(d), annotations={"org.opencontainers.image.ref.name": tag})
                             for tag, d in tagged]}
        with open(os.path.join(self.out, "index.json"), "wb") as f:
            f.write(canonical(top))


def plain(descriptor):
    """A descriptor without platform or artifact type: what a subject or a tag points with."""
    return {k: descriptor[k] for k in ("mediaType", "digest", "size")}


def layer_tar(binary, mtime):
    """A tar of one entry, `tinyapi`, with nothing taken from the build machine but its bytes."""
    with open(binary, "rb") as f:
        data = f.read()
    info = tarfile.TarInfo("tinyapi")
    info.size, info.mode, info.mtime = len(data), 0o755, mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue(), hashlib.sha256(data).hexdigest()


def layer_blob(layout, tar):
    """The gzip layer (no name, mtime 0: `gzip -n`) and the tar's digest, its diff_id."""
    return layout.blob(DOCKER_LAYER, gzip.compress(tar, compresslevel=9, mtime=0)), \
        "sha256:" + hashlib.sha256(tar).hexdigest()


def cargo_lock():
    """The registry packages of Cargo.lock: name, version, checksum, and the licence that the
    crate's own metadata declares (`cargo metadata`)."""
    with open(os.path.join(ROOT, "Cargo.lock")) as f:
        text = f.read()
    metadata = json.loads(subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked"], check=True,
        capture_output=True, text=True, cwd=ROOT).stdout)
    licenses = {(p["name"], p["version"]): p.get("license") for p in metadata["packages"]}
    packages = []
    for block in text.split("[[package]]")[1:]:
        fields = dict(re.findall(r'^(\w+) = "([^"]*)"', block, re.M))
        if "checksum" in fields:
            fields["license"] = licenses.get((fields["name"], fields["version"]))
            packages.append(fields)
    return sorted(packages, key=lambda p: p["name"])


def musl_version(libc_a):
    """musl's version string, read from the version.lo member of the target's libc.a."""
    with open(libc_a, "rb") as f:
        data = f.read()
    pos = 8  # after "!<arch>\n"; then 60-byte member headers, each member padded to even length
    while pos + 60 <= len(data):
        name, size = data[pos:pos + 16].strip(), int(data[pos + 48:pos + 58])
        member = data[pos + 60:pos + 60 + size]
        if name == b"version.lo/":
            found = re.search(rb"\x00(\d+\.\d+\.\d+)\x00", member)
            return found.group(1).decode() if found else None
        pos += 60 + size + size % 2
    return None


class Compiler:
    """A Rust toolchain installed by rustup, by name: rustc's `-V` line, release and commit,
    cargo's version and the sysroot."""

    def __init__(self, toolchain, verbose):
        self.toolchain = toolchain
        self.rustc = verbose.splitlines()[0]
        self.release = re.search(r"^release: (\S+)", verbose, re.M).group(1)
        self.commit = re.search(r"^commit-hash: (\S+)", verbose, re.M).group(1)
        self.cargo = self.run("cargo", "-V")
        self.sysroot = self.run("rustc", "--print", "sysroot")

    @classmethod
    def find(cls, toolchain):
        """The toolchain, or None when rustup has not installed it (nothing is installed here)."""
        try:
            return cls(toolchain, cls.run_in(toolchain, "rustc", "-vV"))
        except subprocess.CalledProcessError:
            return None

    @staticmethod
    def run_in(toolchain, *argv):
        env = dict(os.environ, RUSTUP_TOOLCHAIN=toolchain, RUSTUP_AUTO_INSTALL="0")
        return subprocess.run(argv, check=True, capture_output=True, text=True, cwd=ROOT,
                              env=env).stdout.strip()

    def run(self, *argv):
        return self.run_in(self.toolchain, *argv)


class Build:
    """How one row's binary was built: by the compiler whose `rustc -V` .cargo/build-target
    recorded next to it, and with what besides our crates. The pinned toolchain links musl's
    libc.a, shipped with the target, for the memory routines; a dated nightly (for a target the
    pinned toolchain has no standard library for) compiles `core` and compiler_builtins from its
    rust-src with -Zbuild-std=core, and there is no libc.a."""

    def __init__(self, row, compilers):
        self.row = row
        record = row.rustc_record
        shown = os.path.relpath(record, ROOT)
        # The wrapper removes the record before a build and writes it after the binary: a
        # missing or older one means the binary was built some other way.
        if not os.path.exists(row.binary) or not os.path.exists(record) or \
                os.stat(record).st_mtime < os.stat(row.binary).st_mtime:
            sys.exit(f"layout.py: {shown} is missing or older than the binary; build it with "
                     f".cargo/build-target {row.name}")
        with open(record) as f:
            self.rustc = f.read().strip()
        toolchains = [pinned_toolchain()] + [row.toolchain] * row.toolchain.startswith("nightly-")
        found = [c for c in map(compilers, toolchains) if c and c.rustc == self.rustc]
        if not found:
            sys.exit(f"layout.py: {shown} says `{self.rustc}`, which is the rustc of none of "
                     f"{', '.join(toolchains)}; rebuild with .cargo/build-target {row.name}")
        self.compiler = found[0]
        self.build_std = self.compiler.toolchain != toolchains[0]

    def libc_a(self):
        """musl's version, the SHA-256 of the target's self-contained libc.a, and its path in
        the sysroot."""
        part = os.path.join(self.row.target, "lib", "self-contained", "libc.a")
        path = os.path.join(self.compiler.sysroot, "lib", "rustlib", part)
        with open(path, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        return musl_version(path), sha, part

    def compiler_builtins(self):
        """The version and licence of compiler_builtins in the toolchain's rust-src."""
        manifest = os.path.join(self.compiler.sysroot, "lib", "rustlib", "src", "rust", "library",
                                "compiler-builtins", "compiler-builtins", "Cargo.toml")
        with open(manifest) as f:
            fields = dict(re.findall(r'^(version|license) = "([^"]*)"', f.read(), re.M))
        return fields["version"], fields["license"]


def spdx(expression):
    """A CycloneDX licence choice: an SPDX id, or an expression such as `MIT OR Apache-2.0`."""
    if re.fullmatch(r"[A-Za-z0-9.+-]+", expression):
        return {"license": {"id": expression}}
    return {"expression": expression}


def runtime_library(build):
    """The library linked in besides our crates and core: musl's libc.a (the pinned toolchain's
    self-contained copy for the target), for memcpy and the rest; or, with -Zbuild-std=core,
    compiler_builtins compiled from the nightly's rust-src, which has no libc.a for the target."""
    if build.build_std:
        version, license = build.compiler_builtins()
        return {
            "type": "library", "bom-ref": "compiler_builtins", "name": "compiler_builtins",
            "version": version, "group": "rust-lang",
            "description": "Rust's compiler runtime library (the intrinsics the compiler calls), "
                           "compiled from the toolchain's rust-src with -Zbuild-std=core and its "
                           "`mem` feature (memcpy and the rest, where no other definition is "
                           "linked)",
            "licenses": [spdx(license)],
            "purl": f"pkg:cargo/compiler_builtins@{version}",
            "properties": [{"name": "tinyapi:source", "value": "library/compiler-builtins in "
                            f"the rust-src of {build.compiler.toolchain}"}],
        }
    musl, libc_a_sha, _ = build.libc_a()
    return {
        "type": "library", "bom-ref": "musl", "name": "musl", "version": musl or "unknown",
        "description": "C library shipped with the Rust target (self-contained); only memcpy, "
                       "memmove, memcmp and bcmp are linked",
        "licenses": [spdx("MIT")],
        "cpe": f"cpe:2.3:a:musl-libc:musl:{musl}:*:*:*:*:*:*:*" if musl else None,
        "purl": f"pkg:generic/musl@{musl}" if musl else None,
        "properties": [
            {"name": "tinyapi:libc.a-sha256", "value": libc_a_sha},
            {"name": "tinyapi:version-source",
             "value": "__libc_version in libc.a(version.lo)" if musl else "not found in libc.a"},
        ],
    }


def sbom(build, binary_sha, version, revision, created, crates, license_text):
    """A CycloneDX 1.5 SBOM of one platform's binary: the crates and the libraries linked in,
    and the compiler that built it. Every component has a purl, and musl and core a CPE too, as
    vulnerability databases match by one or the other (NVD's CPEs are `musl-libc:musl` and
    `rust-lang:rust`; a nightly's `-nightly` goes in the CPE's update field)."""
    target, compiler = build.row.target, build.compiler
    rust_version, _, rust_update = compiler.release.partition("-")

    components = [{
        "type": "library", "bom-ref": f"pkg:cargo/{p['name']}@{p['version']}",
        "name": p["name"], "version": p["version"],
        "licenses": [spdx(p["license"])] if p["license"] else None,
        "purl": f"pkg:cargo/{p['name']}@{p['version']}",
        "hashes": [{"alg": "SHA-256", "content": p["checksum"]}],
    } for p in crates]
    components.append(runtime_library(build))
    components.append({
        "type": "library", "bom-ref": "rust-core", "name": "core", "version": compiler.release,
        "group": "rust-lang",
        "description": "Rust's core library, compiled from the toolchain's rust-src "
                       "(-Zbuild-std=core)" if build.build_std else
                       "Rust's core library, from the rustc toolchain",
        "licenses": [spdx("MIT OR Apache-2.0")],
        "cpe": f"cpe:2.3:a:rust-lang:rust:{rust_version}:{rust_update or '*'}:*:*:*:*:*:*",
        "purl": f"pkg:generic/rust-lang/core@{compiler.release}",
    })
    components = [{k: v for k, v in c.items() if v is not None} for c in components]

    return {
        "bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
        # The same commit and target always get the same serial number.
        "serialNumber": "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL,
                                                     f"tinyapi:{revision}:{target}")),
        "metadata": {
            "timestamp": created,
            "tools": {"components": [{"type": "application", "name": "image/layout.py"}]},
            "component": {
                "type": "application", "bom-ref": "tinyapi", "name": "tinyapi",
                "version": version,
                # The repository's LICENSE file, whole.
                "licenses": [{"license": {"id": "MIT", "text": {
                    "contentType": "text/plain", "content": license_text}}}],
                "purl": f"pkg:generic/tinyapi@{version}",
                "hashes": [{"alg": "SHA-256", "content": binary_sha}],
                "properties": [
                    {"name": "tinyapi:path", "value": "/tinyapi"},
                    {"name": "tinyapi:rust-target", "value": target},
                    {"name": "tinyapi:revision", "value": revision},
                    {"name": "tinyapi:license-file", "value": "LICENSE"},
                ],
            },
            # The compiler that built this binary, as .cargo/build-target recorded it.
            "properties": [
                {"name": "tinyapi:rustc", "value": build.rustc},
                {"name": "tinyapi:rustc-commit-hash", "value": compiler.commit},
                {"name": "tinyapi:rust-toolchain", "value": compiler.toolchain},
                {"name": "tinyapi:build-std",
                 "value": "core, compiler-builtins-mem" if build.build_std else "no"},
            ],
        },
        "components": components,
        "dependencies": [{"ref": "tinyapi", "dependsOn": [c["bom-ref"] for c in components]}],
    }


def provenance(index, images, builds, revision, crates):
    """An in-toto statement with a SLSA v1 provenance predicate for the image index and each
    image: the source revision, the commands image/build.sh runs, each platform's target and
    compiler, and the toolchains. Nothing in it varies between builds of one commit but what
    the builder sets: BUILDER_ID (a URI naming the build system, such as a CI run's address)
    and SOURCE."""
    source = os.environ.get("SOURCE")
    compilers = list({b.compiler.toolchain: b.compiler for b in builds}.values())
    runtimes = []  # each runtime_library once
    for b in builds:
        if b.build_std:
            version, _ = b.compiler_builtins()
            runtime = {"uri": f"pkg:cargo/compiler_builtins@{version}", "annotations": {
                "source": f"library/compiler-builtins in the rust-src of {b.compiler.toolchain}"}}
        else:
            musl, sha, part = b.libc_a()
            runtime = {"uri": f"pkg:generic/musl@{musl}", "digest": {"sha256": sha},
                       "annotations": {"file": part}}
        if runtime not in runtimes:
            runtimes.append(runtime)
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "tinyapi", "digest": {"sha256": index["digest"][7:]}}] + [
            {"name": "tinyapi " + platform_name(image["platform"]),
             "digest": {"sha256": image["digest"][7:]}} for image in images],
        "predicateType": SLSA_PROVENANCE,
        "predicate": {
            "buildDefinition": {
                "buildType": "urn:tinyapi:image-build:v1",
                "externalParameters": {
                    "source": {"uri": f"git+{source}" if source else "git", "revision": revision},
                    "command": "bash image/build.sh OUT_DIR",
                },
                "internalParameters": {
                    "commands": [".cargo/build-target all", "python3 image/layout.py OUT_DIR"],
                    "platforms": [{
                        "name": b.row.name, "platform": platform_name(b.row.oci),
                        "target": b.row.target, "toolchain": b.compiler.toolchain,
                        "rustc": b.rustc,
                        "buildStd": "core, compiler-builtins-mem" if b.build_std else "no",
                    } for b in builds],
                },
                "resolvedDependencies": [
                    {"uri": f"git+{source}@{revision}" if source else "tinyapi",
                     "digest": {"gitCommit": revision}},
                ] + [dep for c in compilers for dep in (
                    {"name": "rustc", "uri": f"pkg:generic/rust-lang/rustc@{c.release}",
                     "annotations": {"commit-hash": c.commit, "toolchain": c.toolchain}},
                    {"name": "cargo", "annotations": {"version": c.cargo,
                                                      "toolchain": c.toolchain}},
                )] + [
                    {"name": "python3", "uri": f"pkg:generic/python@{python_version()}",
                     "annotations": {"zlib": zlib.ZLIB_RUNTIME_VERSION}},
                ] + runtimes + [
                    {"uri": f"pkg:cargo/{p['name']}@{p['version']}",
                     "digest": {"sha256": p["checksum"]}} for p in crates
                ],
            },
            "runDetails": {
                "builder": {"id": os.environ.get("BUILDER_ID", "urn:tinyapi:builder:unnamed")},
            },
        },
    }


def platform_name(p):
    return f"{p['os']}/{p['architecture']}" + (f"/{p['variant']}" if "variant" in p else "")


def tags(version, revision):
    """The conventional set: the version, its major.minor and major, latest; and one per commit."""
    parts = version.split(".")
    return [version, ".".join(parts[:2]), parts[0], "latest", "sha-" + revision[:12]]


def attach(layout, subject, artifact_type, data, created, annotations=None):
    """An OCI 1.1 artifact about subject (the guidance's form: empty config, one layer), returned
    as the descriptor a referrers index lists: with its artifact type and annotations."""
    annotations = {"org.opencontainers.image.created": created, **(annotations or {})}
    layer = layout.blob(artifact_type, data)
    empty = layout.blob(OCI_EMPTY, b"{}")
    manifest = layout.blob(OCI_MANIFEST, canonical({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
        "config": empty, "layers": [layer], "subject": plain(subject),
        "annotations": annotations,
    }))
    return dict(manifest, artifactType=artifact_type, annotations=annotations)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: image/layout.py OUT_DIR")
    out = sys.argv[1]
    if os.path.exists(os.path.join(out, "index.json")):
        sys.exit(f"layout.py: {out} already holds a layout; give an empty or new directory")

    revision = git("log", "-1", "--format=%H")
    epoch = int(git("log", "-1", "--format=%ct"))
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    if git("status", "--porcelain", "--untracked-files=no"):
        print(f"layout.py: uncommitted changes; the revision label still names {revision}",
              file=sys.stderr)
    with open(os.path.join(ROOT, "Cargo.toml")) as f:
        version = re.search(r'^version = "([^"]+)"', f.read(), re.M).group(1)
    with open(os.path.join(ROOT, "LICENSE")) as f:
        license_text = f.read()
    compilers = functools.lru_cache(Compiler.find)  # each toolchain asked once
    builds = [Build(row, compilers) for row in platforms()]
    crates = cargo_lock()

    labels = {
        "org.opencontainers.image.title": "tinyapi",
        "org.opencontainers.image.description": DESCRIPTION,
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.licenses": "MIT",
        "org.opencontainers.image.revision": revision,
        "org.opencontainers.image.created": created,
    }
    if os.environ.get("SOURCE"):
        labels["org.opencontainers.image.source"] = os.environ["SOURCE"]

    layout = Layout(out)
    images, referrers = [], {}
    for build in builds:
        tar, binary_sha = layer_tar(build.row.binary, epoch)
        layer, diff_id = layer_blob(layout, tar)
        platform = build.row.oci
        config = layout.blob(DOCKER_CONFIG, canonical({
            **platform, "created": created,
            "config": dict(CONFIG, Labels=labels),
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": created, "created_by": "COPY tinyapi /tinyapi"}],
        }))
        image = layout.blob(DOCKER_MANIFEST, canonical({
            "schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": config, "layers": [layer],
        }), platform=platform)
        images.append(image)
        referrers[image["digest"]] = [attach(
            layout, image, CYCLONEDX,
            canonical(sbom(build, binary_sha, version, revision, created, crates,
                           license_text)), created)]

    index = layout.blob(OCI_INDEX, canonical({
        "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": images,
        "annotations": {"org.opencontainers.image.revision": revision,
                        "org.opencontainers.image.created": created},
    }))
    referrers[index["digest"]] = [attach(
        layout, index, IN_TOTO, canonical(provenance(index, images, builds, revision, crates)),
        created, {"in-toto.io/predicate-type": SLSA_PROVENANCE})]

    # The referrers tag schema's fallback: `sha256-<hex>` tags an index of the subject's artifacts.
    fallback = [("sha256-" + subject[7:], layout.blob(OCI_INDEX, canonical({
        "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": artifacts})))
        for subject, artifacts in referrers.items()]
    layout.finish([(tag, index) for tag in tags(version, revision)] + fallback)
    print(f"{out}: tinyapi {version} ({revision[:12]}), image index {index['digest']}")
    print(f"  tags: {' '.join(tags(version, revision))}")
    for image, build in zip(images, builds):
        print(f"  {platform_name(image['platform'])}: manifest {image['digest']}, {build.rustc}"
              + (" (-Zbuild-std=core)" if build.build_std else ""))


if __name__ == "__main__":
    main()
