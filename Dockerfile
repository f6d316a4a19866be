# tinyapi as a scratch image: one static file, no shell, no libc, no package manager.
#
# The binary is built on the host first, then copied in:
#   cargo build --release && docker build -t tinyapi .
#
# TARGETARCH picks which host build is copied: amd64 (the default when the builder does not set it)
# takes target/x86_64-unknown-linux-musl/release/tinyapi, arm64 takes
# target/aarch64-unknown-linux-musl/release/tinyapi. BuildKit sets TARGETARCH from --platform, so an
# arm64 image is `cargo build --release --target aarch64-unknown-linux-musl` followed by
# `docker buildx build --platform linux/arm64 -t tinyapi .`; the classic builder takes
# `--build-arg TARGETARCH=arm64`. The ARG has no default of its own because BuildKit treats a
# declared default as set by the user and would no longer follow --platform.
ARG TARGETARCH

# Dockerfiles cannot map one value to another, so each architecture is a stage that only names its
# Rust target; the stage chosen below reads the name from its environment. The classic builder runs
# every stage, and these two copy nothing, so a missing binary for the other architecture is harmless.
FROM scratch AS rust-target-amd64
ENV RUST_TARGET=x86_64-unknown-linux-musl
FROM scratch AS rust-target-arm64
ENV RUST_TARGET=aarch64-unknown-linux-musl

FROM rust-target-${TARGETARCH:-amd64} AS binary
COPY target/${RUST_TARGET}/release/tinyapi /tinyapi

# The image itself: the binary and nothing else (RUST_TARGET stays behind in the stage above).
FROM scratch
ARG VERSION=0.1.0
# Where the source lives; pass --build-arg SOURCE=<repository URL> when publishing.
ARG SOURCE=https://example.invalid/tinyapi
LABEL org.opencontainers.image.title="tinyapi" \
      org.opencontainers.image.description="The tiny API service (/, /alwaysok, /healthcheck, /panic) as a static no_std binary of a few kilobytes" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT"
COPY --from=binary /tinyapi /tinyapi
# nobody:nogroup by number: there is no /etc/passwd to look a name up in.
USER 65534:65534
EXPOSE 8080
# No shell or curl in the image: the binary probes its own /healthcheck (same --listen/PORT
# settings as the server) and exits 0 when it answers 200. The probe gives up after 2 s.
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/tinyapi", "--probe"]
# Exec form: tinyapi is PID 1 and receives `docker stop`'s SIGTERM itself.
ENTRYPOINT ["/tinyapi"]
