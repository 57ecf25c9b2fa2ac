# recengine in a container: Debian slim with Debian's Python and ffmpeg; the wheel (and annoy,
# which compiles) is built in a first stage, so the image carries no compiler.
#   docker build -t recengine .          (or: podman build -t recengine .)
# compose.yaml shows the volumes, the API port, PUID/PGID and the health check.
FROM debian:bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv python3-dev g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md LICENSE MANIFEST.in config.yaml ./
COPY recengine ./recengine
COPY plugins ./plugins
RUN python3 -m venv /opt/recengine \
 && /opt/recengine/bin/pip install --no-cache-dir --disable-pip-version-check --upgrade pip \
 && /opt/recengine/bin/pip wheel --no-cache-dir --disable-pip-version-check -w /wheels . \
 && /opt/recengine/bin/pip install --no-cache-dir --disable-pip-version-check --no-index \
      --find-links /wheels recengine

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 ffmpeg \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/recengine /opt/recengine
COPY scripts/container-entrypoint /usr/local/bin/recengine-entrypoint
# the config (and plugins/ beside it) in /config, the catalog and index in /data/recengine, the
# library mounted read-only at /music; the daemon runs as PUID:PGID (entrypoint)
ENV PATH=/opt/recengine/bin:$PATH \
    RECENGINE_CONFIG=/config/config.yaml \
    XDG_DATA_HOME=/data \
    HOME=/config \
    PUID=1000 PGID=1000
VOLUME ["/config", "/data"]
EXPOSE 8741
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["/opt/recengine/bin/python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8741/api/v1/health', timeout=5)"]
ENTRYPOINT ["/usr/local/bin/recengine-entrypoint"]
CMD ["daemon"]
