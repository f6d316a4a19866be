# tinyapi as a scratch image: one static file, no shell, no libc, no package manager.
#
# The binary is built on the host first, then copied in:
#   cargo build --release && docker build -t tinyapi .
#
# With BuildKit, --platform picks the binary, for every platform of .cargo/platforms:
#   .cargo/build-target riscv64
#   docker buildx build --platform linux/riscv64 --load -t tinyapi:riscv64 .
# copies target/riscv64gc-unknown-linux-musl/release/tinyapi. The classic builder copies the
# amd64 binary from this file whatever --platform says, and labels every stage it commits before
# a COPY with the host's platform, so no stage here could follow --platform. For it and for
# podman/buildah, which look `rust-target-${TARGETARCH}` up as an image, see
# image/plain.Dockerfile; for all platforms under one tag, without Docker, image/build.sh.
#
# One stage per row of .cargo/platforms names the Rust target of its platform: TARGETARCH and
# TARGETVARIANT are BuildKit's, set from --platform and usable in FROM without being declared
# (arm has variant v6 or v7; BuildKit drops arm64's v8). Declaring them would stop that on older
# BuildKit releases, which take an ARG without a value as empty; the classic builder leaves them
# unset, so the default below applies. tests/image.sh builds every platform and compares the
# binary in the image with the target's.
FROM scratch AS rust-target-amd64
ENV RUST_TARGET=x86_64-unknown-linux-musl
FROM scratch AS rust-target-arm64
ENV RUST_TARGET=aarch64-unknown-linux-musl
FROM scratch AS rust-target-386
ENV RUST_TARGET=i686-unknown-linux-musl
FROM scratch AS rust-target-armv7
ENV RUST_TARGET=thumbv7neon-unknown-linux-musleabihf
FROM scratch AS rust-target-armv6
ENV RUST_TARGET=arm-unknown-linux-musleabihf
FROM scratch AS rust-target-riscv64
ENV RUST_TARGET=riscv64gc-unknown-linux-musl
FROM scratch AS rust-target-ppc64le
ENV RUST_TARGET=powerpc64le-unknown-linux-musl
FROM scratch AS rust-target-s390x
ENV RUST_TARGET=s390x-unknown-linux-musl
FROM scratch AS rust-target-loong64
ENV RUST_TARGET=loongarch64-unknown-linux-musl

FROM rust-target-${TARGETARCH:-amd64}${TARGETVARIANT} AS binary
COPY target/${RUST_TARGET}/release/tinyapi /tinyapi

# The image itself: the binary and nothing else (RUST_TARGET stays behind in the stage above).
# Keep in step with image/plain.Dockerfile and image/layout.py; tests/image.sh compares them.
FROM scratch
COPY --from=binary /tinyapi /tinyapi
ARG VERSION=0.1.0
# source, revision and created come from the caller, when it knows them:
#   --label org.opencontainers.image.source=URL --label org.opencontainers.image.revision=$(git rev-parse HEAD)
LABEL org.opencontainers.image.title="tinyapi" \
      org.opencontainers.image.description="The tiny API service (/, /alwaysok, /healthcheck, /panic) as a static no_std binary of a few kilobytes" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT"
# By number: there is no /etc/passwd to look a name up in. 65532 is distroless's and Chainguard's
# `nonroot` rather than 65534 (nobody), which NFS and other services share (README, Container image).
USER 65532:65532
EXPOSE 8080
# No shell or curl in the image: the binary probes its own /healthcheck (same --listen/PORT
# settings as the server) and exits 0 when it answers 200. The probe gives up after 2 s. Docker
# runs the first check one interval after the start: 5 s makes a new container healthy within
# 10 s (Docker 20.10 has no --start-interval), for one ~1 ms exec of the 28 kB binary per check.
# podman keeps a HEALTHCHECK only in a Docker-format image: `podman build --format docker`.
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/tinyapi", "--probe"]
# tinyapi drains and exits 0 on SIGTERM (Docker's default, stated so the image says it).
STOPSIGNAL SIGTERM
# Exec form: tinyapi is PID 1 and receives `docker stop`'s SIGTERM itself.
ENTRYPOINT ["/tinyapi"]
