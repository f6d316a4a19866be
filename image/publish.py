#!/usr/bin/env python3
"""Pushes the OCI layout of image/build.sh to a registry, every byte as built, and signs it:

    python3 image/publish.py OUT_DIR REGISTRY/REPOSITORY [--plain-http]
        [--sign-by GPG-FINGERPRINT --lookaside DIR] [--sigstore-key KEY.pem]
        [--passphrase-file FILE]

It pushes every tag of OUT_DIR/index.json (the version, its short forms, `latest`, the commit's
`sha-` tag, and the `sha256-<hex>` referrers tags that list the SBOMs and the provenance), with
every manifest and blob they reach. Signatures cover the image index and each image in it, and
are written before any tag, so a tag never names an image that a policy would refuse for want of
one. Two kinds, for the two kinds of verifier:

  --sign-by: a "simple signing" signature made by `skopeo standalone-sign` with a GPG key, written
      to DIR in the lookaside layout (`REPOSITORY-PATH@sha256=<hex>/signature-1`), for the
      publisher to serve over HTTPS. podman, skopeo, CRI-O and buildah check it under a `signedBy`
      policy; Debian's packages can check no other kind.
  --sigstore-key: a sigstore signature (the format of `cosign sign` and of skopeo's
      --sign-by-sigstore-private-key), stored in the registry under the tag `sha256-<hex>.sig`,
      for cosign, Kubernetes admission controllers, and podman builds with sigstore support
      (a `sigstoreSigned` policy). KEY.pem is an ECDSA private key in PEM, encrypted or not
      (`openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -aes256`); openssl signs.

Both take the key's passphrase from --passphrase-file. Why not skopeo for the push: `skopeo copy
--all` pushes an image index and its images unchanged, but rewrites an index of artifacts without
their `artifactType` (which the referrers tag schema requires; --preserve-digests then refuses the
copy), and Debian's skopeo has sigstore signing switched off. The registry API needed here is
five requests, written below with the standard library.

Credentials come from the first of $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json and
~/.docker/config.json that has an `auth` entry for the registry (what `podman login` and
`docker login` write without a credential helper); anonymous otherwise. --plain-http talks HTTP
instead of HTTPS, for a registry on loopback.
"""

import argparse
import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MANIFESTS = (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST)
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"


def canonical(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


class Registry:
    """The registry API's uploads, as the distribution spec has them, with Basic or Bearer
    token authentication."""

    def __init__(self, repository, plain_http):
        host, _, self.name = repository.partition("/")
        if not self.name or "." not in host and ":" not in host and host != "localhost":
            sys.exit(f"publish.py: {repository}: give REGISTRY/REPOSITORY, the registry's host first")
        self.api = "registry-1.docker.io" if host == "docker.io" else host
        self.base = f"{'http' if plain_http else 'https'}://{self.api}"
        self.credentials = find_credentials(host)
        self.authorization = None

    def request(self, method, path, data=None, headers=None, url=None):
        headers = dict(headers or {})
        for attempt in range(2):
            if self.authorization:
                headers["Authorization"] = self.authorization
            req = urllib.request.Request(url or self.base + path, data=data, method=method,
                                         headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=60) as response:
                    return response.status, response.headers, response.read()
            except urllib.error.HTTPError as error:
                if error.code == 401 and attempt == 0:
                    self.authenticate(error.headers.get("WWW-Authenticate", ""))
                    continue
                if method == "HEAD" and error.code == 404:
                    return 404, error.headers, b""
                body = error.read().decode(errors="replace")[:300]
                sys.exit(f"publish.py: {method} {req.full_url}: {error.code} {body}")
        sys.exit(f"publish.py: {method} {path}: not authorised")

    def authenticate(self, challenge):
        scheme, _, params = challenge.partition(" ")
        basic = "Basic " + self.credentials if self.credentials else None
        if scheme.lower() == "basic" and basic:
            self.authorization = basic
            return
        if scheme.lower() != "bearer":
            sys.exit(f"publish.py: {self.api} asks for {challenge or 'credentials'}")
        fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
        query = {"service": fields.get("service", ""),
                 "scope": f"repository:{self.name}:pull,push"}
        url = fields["realm"] + "?" + urllib.parse.urlencode(query)
        req = urllib.request.Request(url, headers={"Authorization": basic} if basic else {})
        with urllib.request.urlopen(req, timeout=60) as response:
            answer = json.load(response)
        self.authorization = "Bearer " + (answer.get("token") or answer["access_token"])

    def has_blob(self, digest):
        return self.request("HEAD", f"/v2/{self.name}/blobs/{digest}")[0] == 200

    def put_blob(self, digest, data):
        if self.has_blob(digest):
            return
        _, headers, _ = self.request("POST", f"/v2/{self.name}/blobs/uploads/", b"")
        location = urllib.parse.urljoin(self.base + "/", headers["Location"])
        location += ("&" if "?" in location else "?") + urllib.parse.urlencode({"digest": digest})
        self.request("PUT", None, data, {"Content-Type": "application/octet-stream"}, url=location)

    def put_manifest(self, reference, media_type, data):
        _, headers, _ = self.request("PUT", f"/v2/{self.name}/manifests/{reference}", data,
                                     {"Content-Type": media_type})
        return headers.get("Docker-Content-Digest")


def find_credentials(host):
    """base64(user:password) for host from the usual auth files, or None."""
    paths = [os.environ.get("REGISTRY_AUTH_FILE"),
             os.environ.get("XDG_RUNTIME_DIR") and
             os.path.join(os.environ["XDG_RUNTIME_DIR"], "containers", "auth.json"),
             os.path.expanduser("~/.docker/config.json")]
    keys = [host, "https://" + host, "https://index.docker.io/v1/"] if host == "docker.io" \
        else [host, "https://" + host]
    for path in filter(None, paths):
        try:
            with open(path) as f:
                auths = json.load(f).get("auths", {})
        except (OSError, ValueError):
            continue
        for key in keys:
            if auths.get(key, {}).get("auth"):
                return auths[key]["auth"]
    return None


class Layout:
    """The blobs and tags of an OCI image layout."""

    def __init__(self, path):
        self.path = path
        with open(os.path.join(path, "index.json")) as f:
            self.tags = [(m["annotations"]["org.opencontainers.image.ref.name"], m)
                         for m in json.load(f)["manifests"]]

    def read(self, digest):
        with open(os.path.join(self.path, "blobs", "sha256", digest.split(":", 1)[1]), "rb") as f:
            return f.read()


def push_tree(registry, layout, descriptor, done):
    """Pushes what descriptor reaches, children first, and the manifest itself by digest."""
    digest, media_type = descriptor["digest"], descriptor["mediaType"]
    if digest in done:
        return
    data = layout.read(digest)
    if media_type in MANIFESTS:
        content = json.loads(data)
        for child in content.get("manifests", []):
            push_tree(registry, layout, child, done)
        for blob in [content["config"]] + content["layers"] if "config" in content else []:
            registry.put_blob(blob["digest"], layout.read(blob["digest"]))
        registry.put_manifest(digest, media_type, data)
    else:
        registry.put_blob(digest, data)
    done.add(digest)


def sign(key, passphrase_file, payload):
    """An ASN.1 ECDSA signature over SHA-256 of payload, as cosign and containers/image make."""
    argv = ["openssl", "dgst", "-sha256", "-sign", key]
    if passphrase_file:
        argv += ["-passin", "file:" + passphrase_file]
    with tempfile.NamedTemporaryFile() as f:
        f.write(payload)
        f.flush()
        return subprocess.run(argv + [f.name], check=True, capture_output=True).stdout


def lookaside_signature(layout, repository, identity, digest, fingerprint, passphrase_file, out):
    """A simple-signing signature of the manifest `digest` in the lookaside directory out."""
    path = os.path.join(out, repository.partition("/")[2] + "@" + digest.replace(":", "="))
    os.makedirs(path, exist_ok=True)
    with tempfile.NamedTemporaryFile() as manifest:
        manifest.write(layout.read(digest))
        manifest.flush()
        argv = ["skopeo", "standalone-sign", manifest.name, identity, fingerprint,
                "-o", os.path.join(path, "signature-1")]
        if passphrase_file:
            argv += ["--passphrase-file", passphrase_file]
        subprocess.run(argv, check=True)


def sigstore_signature(registry, identity, digest, key, passphrase_file):
    """A sigstore signature of the manifest `digest`, claiming the repository `identity`."""
    payload = canonical({
        "critical": {"identity": {"docker-reference": identity},
                     "image": {"docker-manifest-digest": digest},
                     "type": "cosign container image signature"},
        "optional": {"creator": "tinyapi image/publish.py"},
    })
    signature = base64.b64encode(sign(key, passphrase_file, payload)).decode()
    payload_digest = "sha256:" + hashlib.sha256(payload).hexdigest()
    # cosign's config for a signature image: the layer's digest as its diff_id.
    config = canonical({"architecture": "", "os": "", "config": {},
                        "rootfs": {"type": "layers", "diff_ids": [payload_digest]}})
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    registry.put_blob(payload_digest, payload)
    registry.put_blob(config_digest, config)
    manifest = canonical({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": SIMPLE_SIGNING, "digest": payload_digest, "size": len(payload),
                    "annotations": {SIGNATURE_ANNOTATION: signature}}],
    })
    registry.put_manifest(digest.replace(":", "-") + ".sig", OCI_MANIFEST, manifest)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("layout")
    parser.add_argument("repository", help="REGISTRY/REPOSITORY, e.g. ghcr.io/owner/tinyapi")
    parser.add_argument("--sign-by", metavar="FINGERPRINT", help="GPG key to sign with")
    parser.add_argument("--lookaside", metavar="DIR", help="where --sign-by's signatures go")
    parser.add_argument("--sigstore-key", metavar="KEY.pem", help="ECDSA key (PEM) to sign with")
    parser.add_argument("--passphrase-file", help="the key's passphrase, if it has one")
    parser.add_argument("--plain-http", action="store_true", help="HTTP, not HTTPS")
    args = parser.parse_args()
    if bool(args.sign_by) != bool(args.lookaside):
        parser.error("--sign-by and --lookaside go together")

    layout = Layout(args.layout)
    registry = Registry(args.repository, args.plain_http)
    images = [(tag, d) for tag, d in layout.tags if not tag.startswith("sha256-")]
    referrers = [(tag, d) for tag, d in layout.tags if tag.startswith("sha256-")]

    done = set()
    for _, descriptor in layout.tags:
        push_tree(registry, layout, descriptor, done)
    top = images[0][1]
    signed = [top["digest"]] + [m["digest"] for m in
                                json.loads(layout.read(top["digest"])).get("manifests", [])]
    for digest in dict.fromkeys(signed) if args.sign_by or args.sigstore_key else []:
        if args.sign_by:
            # The identity names the version's tag; a `matchRepository` policy accepts any tag.
            lookaside_signature(layout, args.repository, f"{args.repository}:{images[0][0]}",
                                digest, args.sign_by, args.passphrase_file, args.lookaside)
        if args.sigstore_key:
            sigstore_signature(registry, args.repository, digest, args.sigstore_key,
                               args.passphrase_file)
        print(f"signed {digest}")
    for tag, descriptor in referrers + images:
        registry.put_manifest(tag, descriptor["mediaType"], layout.read(descriptor["digest"]))
    print(f"{args.repository}: {' '.join(tag for tag, _ in images)} -> {images[0][1]['digest']}")
    print(f"  referrers tags: {' '.join(tag for tag, _ in referrers)}")


if __name__ == "__main__":
    main()
