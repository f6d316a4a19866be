# tinyapi's image for the builders without BuildKit: Docker's classic builder (DOCKER_BUILDKIT=0)
# and podman or buildah. Give the platform and the Rust target of one row of .cargo/platforms
# together; from the repository root, after `.cargo/build-target riscv64`:
#   podman build --no-cache --format docker --platform linux/riscv64 \
#       --build-arg RUST_TARGET=riscv64gc-unknown-linux-musl -f image/plain.Dockerfile -t tinyapi:riscv64 .
#   DOCKER_BUILDKIT=0 docker build --no-cache --platform linux/riscv64 \
#       --build-arg RUST_TARGET=riscv64gc-unknown-linux-musl -f image/plain.Dockerfile -t tinyapi:riscv64 .
# RUST_TARGET defaults to amd64's, for a build on an amd64 machine without --platform.
# `--format docker`: podman keeps a HEALTHCHECK only in a Docker-format image. `--no-cache`:
# neither builder's cache tells platforms apart (Docker 20.10, podman 4.3): a step cached by a
# build for another platform would be reused, and the classic builder then refuses it, while
# podman returns the other platform's image when the binary is the same.
#
# The classic builder labels an image with --platform only when the stage's first step is a COPY;
# any other step (an ARG too) commits an image of the host's platform, which the next COPY
# refuses ("does not match the specified platform"). So the stage that picks the binary opens
# with a COPY of LICENSE, which the build context always holds, and the image takes only
# /tinyapi from that stage.
FROM scratch AS binary
COPY LICENSE /LICENSE
ARG RUST_TARGET=x86_64-unknown-linux-musl
COPY target/${RUST_TARGET}/release/tinyapi /tinyapi

# The image itself: the same as in ../Dockerfile (tests/image.sh compares them).
FROM scratch
COPY --from=binary /tinyapi /tinyapi
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="tinyapi" \
      org.opencontainers.image.description="The tiny API service (/, /alwaysok, /healthcheck, /panic) as a static no_std binary of a few kilobytes" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT"
USER 65532:65532
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/tinyapi", "--probe"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/tinyapi"]
