#!/usr/bin/env bash
# Builds tinyapi's multi-platform OCI image layout (linux/amd64 and linux/arm64/v8) without Docker:
#
#   bash image/build.sh OUT_DIR
#
# then, for example, `skopeo copy --all oci:OUT_DIR:0.1.0 docker://REGISTRY/tinyapi:0.1.0`.
# Builds both release binaries first; image/layout.py writes the layout (README, "One tag for
# every platform"). Set SOURCE=<repository URL> to add the org.opencontainers.image.source label.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: image/build.sh OUT_DIR" >&2; exit 2; }
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --quiet --target x86_64-unknown-linux-musl
cargo build --release --quiet --target aarch64-unknown-linux-musl
exec python3 image/layout.py "$1"
