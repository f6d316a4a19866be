#!/usr/bin/env bash
# Builds tinyapi's multi-platform OCI image layout, one image per row of .cargo/platforms,
# without Docker:
#
#   bash image/build.sh OUT_DIR
#
# then `python3 image/publish.py OUT_DIR REGISTRY/tinyapi` pushes every tag, signed, with the SBOMs
# and the provenance. Builds the release binary of every row with .cargo/build-target (each with
# its row's toolchain, recording the compiler that the image's SBOM names), then writes the
# layout (README, "One tag for every platform"). Set SOURCE=<repository URL> to add the
# org.opencontainers.image.source label, and BUILDER_ID=<URI> to name the builder in the provenance.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: image/build.sh OUT_DIR" >&2; exit 2; }
cd "$(dirname "${BASH_SOURCE[0]}")/.."
.cargo/build-target all
exec python3 image/layout.py "$1"
