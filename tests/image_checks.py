#!/usr/bin/env python3
"""The checks of tests/image.sh that read JSON, each a command that exits 1 saying what is wrong:

    python3 tests/image_checks.py layout LAYOUT
        the layout's structure: an image per row of .cargo/platforms, in its order, each holding
        the row's release binary; prints `PLATFORM MANIFEST-DIGEST` per image
    VENV/bin/python tests/image_checks.py sbom SBOM.json Cargo.lock LICENSE
        valid CycloneDX 1.5 (cyclonedx-python-lib, from PyPI) that vulnerability databases can
        match: every crate of Cargo.lock with its checksum and licence, a purl for every
        component, CPEs for musl (where linked) and core, the application's licence with
        LICENSE's text, and the compiler that .cargo/build-target recorded for the binary
    python3 tests/image_checks.py provenance STATEMENT.json REVISION INDEX-DIGEST IMAGE-DIGEST...
        an in-toto SLSA v1 provenance statement for those digests, built from REVISION, naming
        each platform's compiler
    python3 tests/image_checks.py tamper LAYOUT OUT
        writes to OUT a layout tagged `tampered`: the amd64 image with its config changed to run
        as root; prints its manifest digest
"""

import gzip
import hashlib
import io
import json
import os
import re
import sys
import tarfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "image"))
import layout as image_layout  # noqa: E402  (image/layout.py: the platform table, its binaries)

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
CYCLONEDX = "application/vnd.cyclonedx+json"
IN_TOTO = "application/vnd.in-toto+json"


def fail(message):
    sys.exit(message)


def load(layout, digest):
    with open(os.path.join(layout, "blobs", "sha256", digest.split(":")[1]), "rb") as f:
        return f.read()


def layout(path):
    with open(os.path.join(path, "index.json")) as f:
        tagged = {m["annotations"]["org.opencontainers.image.ref.name"]: m["digest"]
                  for m in json.load(f)["manifests"]}
    version = next(t for t in tagged if re.fullmatch(r"\d+\.\d+\.\d+", t))
    major, minor, _ = version.split(".")
    image_tags = [t for t in tagged if not t.startswith("sha256-")]
    if sorted(image_tags) != sorted([version, f"{major}.{minor}", major, "latest",
                                     next((t for t in tagged if t.startswith("sha-")), "sha-?")]):
        fail(f"tags {image_tags}: want the version, major.minor, major, latest and sha-<commit>")
    if len({tagged[t] for t in image_tags}) != 1:
        fail("the image tags name different indexes")
    digest = tagged[version]
    index = json.loads(load(path, digest))
    if any("platform" not in m for m in index["manifests"]):
        fail("an index entry without a platform: podman and skopeo would fall back to it")
    rows = image_layout.platforms()
    platforms = [image_layout.platform_name(m["platform"]) for m in index["manifests"]]
    if platforms != [image_layout.platform_name(r.oci) for r in rows]:
        fail(f"platforms {platforms}, want those of .cargo/platforms in its order")
    subjects = {}
    for m, row in zip(index["manifests"], rows):
        if m["mediaType"] != DOCKER_MANIFEST:
            fail(f"{m['digest']}: {m['mediaType']}, not Docker's format (podman's HEALTHCHECK)")
        manifest = json.loads(load(path, m["digest"]))
        if len(manifest["layers"]) != 1:
            fail("more than one layer")
        tar = tarfile.open(fileobj=io.BytesIO(gzip.decompress(
            load(path, manifest["layers"][0]["digest"]))))
        if tar.getnames() != ["tinyapi"]:
            fail(f"the layer holds {tar.getnames()}")
        with open(row.binary, "rb") as f:
            if tar.extractfile("tinyapi").read() != f.read():
                fail(f"{platforms[rows.index(row)]}: the layer's tinyapi is not {row.binary}")
        config = json.loads(load(path, manifest["config"]["digest"]))
        if {k: config.get(k) for k in m["platform"]} != m["platform"]:
            fail(f"{m['digest']}: the config's platform differs from the index's")
        subjects[m["digest"]] = CYCLONEDX
        print(image_layout.platform_name(m["platform"]), m["digest"])
    subjects[digest] = IN_TOTO
    for subject, artifact_type in subjects.items():
        fallback = "sha256-" + subject[7:]
        if fallback not in tagged:
            fail(f"no fallback tag {fallback}")
        referrers = json.loads(load(path, tagged[fallback]))
        types = [m.get("artifactType") for m in referrers["manifests"]]
        if types != [artifact_type]:
            fail(f"referrers of {subject}: {types}, want [{artifact_type}]")
        artifact = json.loads(load(path, referrers["manifests"][0]["digest"]))
        if artifact["subject"]["digest"] != subject or artifact["artifactType"] != artifact_type:
            fail(f"{referrers['manifests'][0]['digest']}: wrong subject or artifactType")


def sbom(path, lock_path, license_path):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
    with open(path) as f:
        text = f.read()
    error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(text)
    if error:
        fail(f"invalid CycloneDX: {error}")
    bom = json.loads(text)
    components = {c["name"]: c for c in bom["components"]}
    with open(lock_path) as f:
        lock = f.read()
    for block in lock.split("[[package]]")[1:]:
        fields = dict(re.findall(r'^(\w+) = "([^"]*)"', block, re.M))
        if "checksum" not in fields:
            continue
        c = components.get(fields["name"], {})
        if c.get("version") != fields["version"] or \
                c.get("hashes") != [{"alg": "SHA-256", "content": fields["checksum"]}]:
            fail(f"{fields['name']} {fields['version']} missing or without its checksum")
        if not c.get("licenses"):
            fail(f"{fields['name']}: no licence")
    for name, c in components.items():
        if not c.get("purl", "").startswith("pkg:"):
            fail(f"{name}: no purl")
    # The memory routines come from musl's libc.a, or with -Zbuild-std from compiler_builtins.
    properties = {p["name"]: p["value"] for p in bom["metadata"]["properties"]}
    build_std = properties.get("tinyapi:build-std") != "no"
    runtime, other = ("compiler_builtins", "musl") if build_std else ("musl", "compiler_builtins")
    if runtime not in components or other in components:
        fail(f"build-std {properties.get('tinyapi:build-std')!r}: want {runtime}, not {other}")
    if not build_std:
        musl = components["musl"]
        if not re.fullmatch(r"\d+\.\d+\.\d+", musl.get("version", "")) or \
                musl.get("purl") != f"pkg:generic/musl@{musl['version']}":
            fail("musl: no version or purl")
    for name in ("core",) if build_std else ("musl", "core"):
        if not components.get(name, {}).get("cpe", "").startswith("cpe:2.3:a:"):
            fail(f"{name}: no CPE")
    # The compiler, as .cargo/build-target recorded it next to the binary.
    app = {p["name"]: p["value"] for p in bom["metadata"]["component"]["properties"]}
    row = next(r for r in image_layout.platforms() if r.target == app["tinyapi:rust-target"])
    with open(row.rustc_record) as f:
        recorded = f.read().strip()
    if properties.get("tinyapi:rustc") != recorded:
        fail(f"rustc {properties.get('tinyapi:rustc')!r}, but {row.rustc_record} says {recorded!r}")
    if components["core"]["version"] not in recorded:
        fail(f"core {components['core']['version']} is not the version of {recorded}")
    with open(license_path) as f:
        license_text = f.read()
    licence = bom["metadata"]["component"]["licenses"][0]["license"]
    if licence.get("id") != "MIT" or licence.get("text", {}).get("content") != license_text:
        fail("the application's licence is not MIT with the text of LICENSE")
    print("      " + ", ".join(f"{c['purl']}" for c in components.values()))


def provenance(path, revision, index, *images):
    with open(path) as f:
        statement = json.load(f)
    if statement.get("_type") != "https://in-toto.io/Statement/v1" or \
            statement.get("predicateType") != "https://slsa.dev/provenance/v1":
        fail("not an in-toto statement with a SLSA v1 provenance predicate")
    named = {"sha256:" + s["digest"]["sha256"] for s in statement["subject"]}
    if named != {index, *images}:
        fail(f"subjects {sorted(named)}, want the index and each image")
    build = statement["predicate"]["buildDefinition"]
    commits = [d.get("digest", {}).get("gitCommit") for d in build["resolvedDependencies"]]
    if revision not in commits:
        fail(f"the source revision {revision} is not among the resolved dependencies")
    if not any(d.get("name") == "rustc" for d in build["resolvedDependencies"]):
        fail("no rustc among the resolved dependencies")
    listed = {(p["name"], p["target"], p["rustc"])
              for p in build["internalParameters"].get("platforms", [])}
    for row in image_layout.platforms():
        with open(row.rustc_record) as f:
            recorded = f.read().strip()
        if (row.name, row.target, recorded) not in listed:
            fail(f"{row.name}: not among the platforms with {row.target} and {recorded}")
    if not build["internalParameters"].get("commands"):
        fail("no commands")
    if not statement["predicate"]["runDetails"]["builder"].get("id"):
        fail("no builder id")
    print(f"      builder {statement['predicate']['runDetails']['builder']['id']}, "
          f"{len(build['resolvedDependencies'])} resolved dependencies, "
          f"commands: {'; '.join(build['internalParameters']['commands'])}")


def tamper(path, out):
    """The amd64 image, its config changed to run as root: what a registry or a mirror could
    serve in its place. A plain OCI image in a layout of its own, tagged `tampered`."""
    with open(os.path.join(path, "index.json")) as f:
        top = json.load(f)["manifests"][0]
    index = json.loads(load(path, top["digest"]))
    amd64 = next(m for m in index["manifests"] if m["platform"]["architecture"] == "amd64")
    manifest = json.loads(load(path, amd64["digest"]))
    config = json.loads(load(path, manifest["config"]["digest"]))
    config["config"]["User"] = "0:0"

    os.makedirs(os.path.join(out, "blobs", "sha256"))

    def blob(media_type, data):
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(out, "blobs", "sha256", digest), "wb") as f:
            f.write(data)
        return {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}

    layer = manifest["layers"][0]
    blob(layer["mediaType"], load(path, layer["digest"]))
    manifest["config"] = blob(manifest["config"]["mediaType"], json.dumps(config).encode())
    image = blob(DOCKER_MANIFEST, json.dumps(manifest).encode())
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            dict(image, annotations={"org.opencontainers.image.ref.name": "tampered"})]}, f)
    with open(os.path.join(out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    print(image["digest"])


def main():
    command, *args = sys.argv[1:]
    {"layout": layout, "sbom": sbom, "provenance": provenance, "tamper": tamper}[command](*args)


if __name__ == "__main__":
    main()
