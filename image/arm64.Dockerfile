# The arm64 image for the classic builder (DOCKER_BUILDKIT=0), which labels an image with the
# --platform it was given only when the first instruction is a COPY; BuildKit builds it from
# ../Dockerfile. Run from the repository root after
# `cargo build --release --target aarch64-unknown-linux-musl`:
#   docker build --platform linux/arm64 -f image/arm64.Dockerfile -t tinyapi:arm64 .
# Everything after the COPY is the same as in ../Dockerfile (tests/image.sh compares them).
FROM scratch
COPY target/aarch64-unknown-linux-musl/release/tinyapi /tinyapi
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
