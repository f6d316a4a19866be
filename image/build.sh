#!/usr/bin/env bash
# Builds tinyapi's multi-platform OCI image layout (linux/amd64 and linux/arm64/v8) without Docker:
#
#   bash image/build.sh OUT_DIR
#
# then `python3 image/publish.py OUT_DIR REGISTRY/tinyapi` pushes every tag, signed, with the SBOMs
# and the provenance. Builds the release binary of each target that image/layout.py lists, then
# writes the layout (README, "One tag for every platform"). Set SOURCE=<repository URL> to add the
# org.opencontainers.image.source label, and BUILDER_ID=<URI> to name the builder in the provenance.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: image/build.sh OUT_DIR" >&2; exit 2; }
cd "$(dirname "${BASH_SOURCE[0]}")/.."
for target in $(python3 image/layout.py --targets); do
    cargo build --release --quiet --target "$target"
done
exec python3 image/layout.py "$1"
