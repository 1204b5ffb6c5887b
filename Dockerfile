# syntax=docker/dockerfile:1
#
# Portcullis container image.
#
#   docker build -t portcullis .
#   docker run --rm -p 4180:4180 \
#     -v "$PWD/portcullis.toml:/etc/portcullis/portcullis.toml:ro" \
#     -e PORTCULLIS_OIDC__CLIENT_SECRET=... \
#     -e PORTCULLIS_COOKIE__SECRETS='["<output of: portcullis secret>"]' \
#     portcullis
#
# The configuration file must set server.listen = "0.0.0.0:4180" (the default,
# 127.0.0.1:4180, is unreachable from outside the container); the Helm chart
# in helm/portcullis does that.

# --- build -------------------------------------------------------------------
# Debian 12 (bookworm), like the runtime image below, so the binary links
# against the same glibc.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# The build command is the same one used outside Docker, scripts/build-release:
#   cargo build --release --locked -p portcullis
# (--locked: the committed Cargo.lock is used as is, never updated.)
# tests/helm/test_chart.py checks that the two stay the same.
# The cache mounts only keep downloaded crates and build outputs between local
# builds; the binary is copied out of them before the step ends.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p portcullis \
    && install -D -m 0755 target/release/portcullis /out/portcullis

# --- runtime -----------------------------------------------------------------
# glibc, libgcc and CA certificates, no shell, no package manager; runs as
# uid/gid 65532 ("nonroot"). TLS to the identity provider uses rustls with the
# system trust store (/etc/ssl/certs); for a private CA, mount its bundle and
# set SSL_CERT_FILE to it.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/portcullis /usr/local/bin/portcullis
# Numeric, so that Kubernetes' runAsNonRoot can verify it without a runAsUser
# (the chart sets runAsUser 65532 as well).
USER 65532:65532
EXPOSE 4180
# No HEALTHCHECK: the image has no shell and no curl to run one. Kubernetes
# probes /ping (liveness) and /ready (readiness) over HTTP instead (the Helm
# chart does); elsewhere, point the orchestrator's HTTP check at them.
ENTRYPOINT ["/usr/local/bin/portcullis"]
CMD ["serve", "--config", "/etc/portcullis/portcullis.toml"]
