# tinyapi as a scratch image: one static file, no shell, no libc, no package manager.
#
# The binary is built on the host first, then copied in:
#   cargo build --release && docker build -t tinyapi .
#
# With BuildKit, --platform picks the binary: `docker buildx build --platform linux/arm64 --load
# -t tinyapi:arm64 .` copies target/aarch64-unknown-linux-musl/release/tinyapi (build it first with
# `cargo build --release --target aarch64-unknown-linux-musl`). The classic builder always makes the
# amd64 image from this file: it labels every stage it commits before a COPY with the host's
# platform, so no stage here can follow --platform. Its arm64 image is image/arm64.Dockerfile, where
# the COPY comes first. For all platforms under one tag, without Docker, see image/build.sh.
#
# TARGETARCH is BuildKit's, set from --platform and usable in FROM without being declared.
# Declaring it would stop that on older BuildKit releases, which take an ARG without a value as
# empty; the classic builder leaves it unset, so the default below applies.
FROM scratch AS rust-target-amd64
ENV RUST_TARGET=x86_64-unknown-linux-musl
FROM scratch AS rust-target-arm64
ENV RUST_TARGET=aarch64-unknown-linux-musl

FROM rust-target-${TARGETARCH:-amd64} AS binary
COPY target/${RUST_TARGET}/release/tinyapi /tinyapi

# The image itself: the binary and nothing else (RUST_TARGET stays behind in the stage above).
# Keep in step with image/arm64.Dockerfile and image/layout.py; tests/image.sh compares them.
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
