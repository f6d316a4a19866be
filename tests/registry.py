#!/usr/bin/env python3
"""What tests/image.sh asks a registry, as a scanner or a verifier would, from a digest alone:

    python3 tests/registry.py referrer URL REPOSITORY DIGEST ARTIFACT-TYPE OUT
    python3 tests/registry.py sigstore URL REPOSITORY DIGEST PUBLIC-KEY.pem

`referrer` finds the artifact of ARTIFACT-TYPE whose subject is DIGEST the OCI 1.1 way: the
referrers API (GET /v2/REPOSITORY/referrers/DIGEST), or where the registry answers 404 to that,
the referrers tag schema's fallback tag `sha256-<hex>`. It writes the artifact's layer to OUT
and says which way it was found. `sigstore` checks the signature stored under the tag
`sha256-<hex>.sig` as cosign does: its payload names DIGEST, and its ECDSA signature over the
payload verifies with PUBLIC-KEY.pem (by openssl). URL is the registry's base, such as
http://127.0.0.1:5000. Standard library only; exits 1, saying why, when the check fails.
"""

import base64
import hashlib
import json
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json"])


def get(url, accept=ACCEPT):
    """The body at url, or None on 404; checks a digest in the URL against the body."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers={"Accept": accept}),
                                    timeout=30) as response:
            body = response.read()
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise
    last = url.rsplit("/", 1)[1]
    if last.startswith("sha256:") and "sha256:" + hashlib.sha256(body).hexdigest() != last:
        sys.exit(f"{url}: content does not match its digest")
    return body


def referrer(base, repository, digest, artifact_type, out):
    index = get(f"{base}/v2/{repository}/referrers/{digest}?artifactType={artifact_type}")
    how = "referrers API"
    if index is None:
        how = "fallback tag sha256-" + digest[7:12] + "... (the referrers API answered 404)"
        index = get(f"{base}/v2/{repository}/manifests/sha256-{digest[7:]}")
    if index is None:
        sys.exit(f"no referrers of {digest}: neither the referrers API nor the fallback tag")
    found = [m for m in json.loads(index)["manifests"] if m.get("artifactType") == artifact_type]
    if not found:
        sys.exit(f"no {artifact_type} among the referrers of {digest}")
    manifest = json.loads(get(f"{base}/v2/{repository}/manifests/{found[0]['digest']}"))
    if manifest.get("subject", {}).get("digest") != digest:
        sys.exit(f"{found[0]['digest']} does not name {digest} as its subject")
    layer = manifest["layers"][0]["digest"]
    with open(out, "wb") as f:
        f.write(get(f"{base}/v2/{repository}/blobs/{layer}", "*/*"))
    print(f"      {artifact_type} of {digest[:19]}...: {found[0]['digest'][:19]}..., by the {how}")


def sigstore(base, repository, digest, public_key):
    body = get(f"{base}/v2/{repository}/manifests/sha256-{digest[7:]}.sig")
    if body is None:
        sys.exit(f"no sigstore signature for {digest}")
    layer = json.loads(body)["layers"][0]
    payload = get(f"{base}/v2/{repository}/blobs/{layer['digest']}", "*/*")
    claimed = json.loads(payload)["critical"]["image"]["docker-manifest-digest"]
    if claimed != digest:
        sys.exit(f"the signature names {claimed}, not {digest}")
    signature = base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])
    with tempfile.NamedTemporaryFile() as p, tempfile.NamedTemporaryFile() as s:
        p.write(payload)
        s.write(signature)
        p.flush()
        s.flush()
        done = subprocess.run(["openssl", "dgst", "-sha256", "-verify", public_key,
                               "-signature", s.name, p.name], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"the signature of {digest} does not verify: {done.stdout}{done.stderr}")


def main():
    command, *args = sys.argv[1:]
    {"referrer": referrer, "sigstore": sigstore}[command](*args)


if __name__ == "__main__":
    main()
