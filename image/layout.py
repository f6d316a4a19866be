#!/usr/bin/env python3
"""Writes tinyapi's multi-platform OCI image layout (image-spec 1.1) from the release binaries.

    python3 image/layout.py OUT_DIR      (image/build.sh builds the binaries, then runs this)

OUT_DIR gets `oci-layout`, `index.json` and `blobs/sha256/`. index.json names one image index,
tagged with the crate version (`oci:OUT_DIR:0.1.0`), which lists:
  - one image per platform (linux/amd64, linux/arm64/v8): a single gzip layer holding only
    `/tinyapi`, and the same config as the Dockerfile;
  - one CycloneDX SBOM per image, as an OCI artifact whose `subject` is that image. It has no
    platform, so `docker pull` never picks it, and `skopeo copy --all` carries it along.

Every byte follows from the commit and the binaries: `created` is the commit time, the layer's tar
entry has a fixed mode, owner and mtime, its gzip header no name or time, and JSON keys come in a
fixed order. Two builds of one commit give the same index digest. The layer is compressed here
because a registry push would otherwise compress it (skopeo does) and change the digests.

Why not umoci: it writes index entries without a platform, cannot make a multi-platform index or
an artifact with a subject, and stamps the config and history with the current time (its
--clear=config.created and mtime options get the layer close, but the index would still need
editing by hand). The JSON here is the whole format, and small enough to read.
"""

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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Docker's platform name, its variant, and the Rust target that builds it.
PLATFORMS = [
    ("amd64", None, "x86_64-unknown-linux-musl"),
    ("arm64", "v8", "aarch64-unknown-linux-musl"),
]

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
CYCLONEDX = "application/vnd.cyclonedx+json"

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

    def finish(self, index, tag):
        with open(os.path.join(self.out, "oci-layout"), "wb") as f:
            f.write(canonical({"imageLayoutVersion": "1.0.0"}))
        top = {"schemaVersion": 2, "mediaType": OCI_INDEX,
               "manifests": [dict(index, annotations={"org.opencontainers.image.ref.name": tag})]}
        with open(os.path.join(self.out, "index.json"), "wb") as f:
            f.write(canonical(top))


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
    return layout.blob(OCI_LAYER, gzip.compress(tar, compresslevel=9, mtime=0)), \
        "sha256:" + hashlib.sha256(tar).hexdigest()


def cargo_lock():
    """The registry packages of Cargo.lock: name, version and checksum."""
    with open(os.path.join(ROOT, "Cargo.lock")) as f:
        text = f.read()
    packages = []
    for block in text.split("[[package]]")[1:]:
        fields = dict(re.findall(r'^(\w+) = "([^"]*)"', block, re.M))
        if "checksum" in fields:
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


def sbom(target, binary_sha, version, revision, created, rustc):
    """A CycloneDX 1.5 SBOM of one platform's binary: the crates and the libraries linked in."""
    sysroot = subprocess.run(["rustc", "--print", "sysroot"], check=True, capture_output=True,
                             text=True, cwd=ROOT).stdout.strip()
    libc_a = os.path.join(sysroot, "lib", "rustlib", target, "lib", "self-contained", "libc.a")
    musl = musl_version(libc_a)
    with open(libc_a, "rb") as f:
        libc_a_sha = hashlib.sha256(f.read()).hexdigest()
    rust = re.search(r"^release: (\S+)", rustc, re.M).group(1)
    rust_commit = re.search(r"^commit-hash: (\S+)", rustc, re.M).group(1)

    components = [{
        "type": "library", "bom-ref": f"pkg:cargo/{p['name']}@{p['version']}",
        "name": p["name"], "version": p["version"],
        "purl": f"pkg:cargo/{p['name']}@{p['version']}",
        "hashes": [{"alg": "SHA-256", "content": p["checksum"]}],
    } for p in cargo_lock()]
    components.append({
        "type": "library", "bom-ref": "musl", "name": "musl", "version": musl or "unknown",
        "purl": f"pkg:generic/musl@{musl}" if musl else None,
        "description": "C library shipped with the Rust target (self-contained); only memcpy, "
                       "memcmp, bcmp and strlen are linked",
        "licenses": [{"license": {"id": "MIT"}}],
        "properties": [
            {"name": "tinyapi:libc.a-sha256", "value": libc_a_sha},
            {"name": "tinyapi:version-source",
             "value": "__libc_version in libc.a(version.lo)" if musl else "not found in libc.a"},
        ],
    })
    components.append({
        "type": "library", "bom-ref": "rust-core", "name": "core", "version": rust,
        "group": "rust-lang", "description": "Rust's core library, from the rustc toolchain",
        "licenses": [{"expression": "MIT OR Apache-2.0"}],
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
                "version": version, "licenses": [{"license": {"id": "MIT"}}],
                "hashes": [{"alg": "SHA-256", "content": binary_sha}],
                "properties": [
                    {"name": "tinyapi:path", "value": "/tinyapi"},
                    {"name": "tinyapi:rust-target", "value": target},
                    {"name": "tinyapi:revision", "value": revision},
                ],
            },
            "properties": [
                {"name": "tinyapi:rustc", "value": f"rustc {rust} ({rust_commit})"},
            ],
        },
        "components": components,
        "dependencies": [{"ref": "tinyapi", "dependsOn": [c["bom-ref"] for c in components]}],
    }


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
    rustc = subprocess.run(["rustc", "-vV"], check=True, capture_output=True, text=True,
                           cwd=ROOT).stdout

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
    images, sboms = [], []
    for arch, variant, target in PLATFORMS:
        binary = os.path.join(ROOT, "target", target, "release", "tinyapi")
        tar, binary_sha = layer_tar(binary, epoch)
        layer, diff_id = layer_blob(layout, tar)
        platform = {"architecture": arch, "os": "linux"}
        if variant:
            platform["variant"] = variant
        config = layout.blob(OCI_CONFIG, canonical({
            **platform, "created": created,
            "config": dict(CONFIG, Labels=labels),
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": created, "created_by": "COPY tinyapi /tinyapi"}],
        }))
        image = layout.blob(OCI_MANIFEST, canonical({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer],
            "annotations": {"org.opencontainers.image.created": created},
        }), platform=platform)
        images.append(image)

        # The SBOM artifact (image-spec 1.1 "artifact" guidance: empty config, one layer).
        bom = layout.blob(CYCLONEDX, canonical(sbom(target, binary_sha, version, revision,
                                                     created, rustc)))
        empty = layout.blob(OCI_EMPTY, b"{}")
        subject = {k: image[k] for k in ("mediaType", "digest", "size")}
        sboms.append(layout.blob(OCI_MANIFEST, canonical({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": CYCLONEDX,
            "config": empty, "layers": [bom], "subject": subject,
            "annotations": {"org.opencontainers.image.created": created},
        })))  # no artifactType in the descriptor: skopeo 1.9 drops it, changing the digest

    index = layout.blob(OCI_INDEX, canonical({
        "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": images + sboms,
        "annotations": {"org.opencontainers.image.revision": revision,
                        "org.opencontainers.image.created": created},
    }))
    layout.finish(index, version)
    print(f"{out}: tinyapi {version} ({revision[:12]}), image index {index['digest']}")
    for image in images:
        p = image["platform"]
        print(f"  {p['os']}/{p['architecture']}{'/' + p['variant'] if 'variant' in p else ''}: "
              f"manifest {image['digest']}")


if __name__ == "__main__":
    main()
