# Viva's container image: `viva serve` on Debian, as a non-root user, with its models.
#
#   docker build -t viva .                         # or: podman build --format docker -t viva .
#   docker run -d --name viva -p 8080:8080 -v viva-data:/var/lib/viva viva
#   docker exec viva viva api-key                  # the recruiter API key it generated
#
# Phone calls (SIP on 5060, RTP on 20000-20999/udp) and browser calls (WebRTC media on
# 21000-21999/udp) need those ports too, and the address callers reach: `--network host` is
# simplest; behind NAT set VIVA_SIP_PUBLIC_IP and VIVA_WEBRTC_PUBLIC_IP. docs/deploy.md has the rest.
#
# Build arguments:
#   BASE     the runtime base (default debian:12-slim).
#   BUILDER  a Debian 12 image with Rust 1.95 or later, as cargo and rustc on PATH
#            (default rust:1.95-bookworm).
#   MODELS   bake (default): scripts/setup downloads the speech models (SHA-256 pinned) into
#            the image, about 260 MB. mount: none; mount a models directory made by
#            `scripts/setup` at /opt/viva/models (e.g. -v "$PWD/models:/opt/viva/models:ro").
ARG BASE=debian:12-slim
ARG BUILDER=rust:1.95-bookworm

FROM ${BUILDER} AS build
ARG MODELS=bake
WORKDIR /src
COPY . .
# Portable CPU flags: left to itself whisper.cpp tunes for the build machine's CPU (GGML_NATIVE)
# and the image dies with SIGILL on an older one. This is x86-64-v3 (AVX2, FMA, F16C), which
# every x86 server CPU since 2015 has and without which Whisper is too slow for live calls.
ENV GGML_NATIVE=OFF GGML_SSE42=ON GGML_AVX=ON GGML_AVX2=ON GGML_BMI2=ON GGML_FMA=ON GGML_F16C=ON
# The caches keep the crates, the compiled dependencies and the model downloads between builds.
# Cargo tells a changed source from a built one by modification time, and a cached build can be
# newer than an edit made before it: Viva's own sources are touched so they always rebuild.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    --mount=type=cache,target=/root/.cache/viva \
    find crates -type f -exec touch {} + \
    && case "$MODELS" in \
      bake) scripts/setup --runtime-only ;; \
      mount) scripts/setup --runtime-only --no-models && mkdir -p models ;; \
      *) echo "MODELS must be bake or mount, not '$MODELS'" >&2; exit 2 ;; \
    esac \
    && install -D --strip target/release/viva /out/viva

FROM ${BASE}
# espeak-ng turns text into phonemes for the Piper voice; the ONNX Runtime library (under
# models/) needs only glibc and libstdc++.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       libespeak-ng1 espeak-ng-data libstdc++6 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --user-group --uid 10001 --home-dir /var/lib/viva --create-home viva
COPY --from=build /out/viva /usr/local/bin/viva
COPY --from=build /src/models /opt/viva/models
COPY config/viva.toml /etc/viva/viva.toml
# Admins edit jobs in the browser, which writes their files: they live in the data volume,
# which a new volume gets seeded with these examples.
COPY --chown=viva:viva config/jobs /var/lib/viva/jobs
# The documented config file, with the addresses and paths of a container. Any setting can be
# changed the same way (`docker run -e VIVA_SERVER_DATABASE=postgres://...`), or mount a
# config file of your own at /etc/viva/viva.toml.
ENV VIVA_CONFIG=/etc/viva/viva.toml \
    VIVA_SERVER_HTTP=0.0.0.0:8080 \
    VIVA_SERVER_DATA_DIR=/var/lib/viva \
    VIVA_SERVER_JOBS_DIR=/var/lib/viva/jobs \
    VIVA_MODELS_DIR=/opt/viva/models \
    VIVA_SIP_UDP=0.0.0.0:5060 \
    VIVA_SIP_TCP=0.0.0.0:5060 \
    VIVA_WEBRTC_UDP_PORT_MIN=21000 \
    VIVA_WEBRTC_UDP_PORT_MAX=21999 \
    VIVA_LOG_FORMAT=json
USER viva
WORKDIR /var/lib/viva
VOLUME /var/lib/viva
EXPOSE 8080/tcp 5060/udp 5060/tcp 20000-20999/udp 21000-21999/udp
# Alive, not ready: a draining node is healthy (it finishes its interviews); `viva health
# --ready` is the readiness probe.
HEALTHCHECK --interval=10s --timeout=6s --start-period=120s --retries=3 CMD ["viva", "health"]
# SIGTERM drains: no new calls, live interviews finish (server.drain_secs; give the runtime a
# stop timeout as long, e.g. `docker stop -t 3600`).
STOPSIGNAL SIGTERM
ENTRYPOINT ["viva"]
CMD ["serve"]
