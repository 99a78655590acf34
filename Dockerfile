# syntax=docker/dockerfile:1
# crmsync as a background service: `crmsync run` with health checks and metrics on port 9464.
#
#   docker build -t crmsync .
#   docker run -d --name crmsync -p 9464:9464 --stop-timeout 120 \
#     -v "$PWD/config:/config:ro" -v "$PWD/workflows:/workflows:ro" -v crmsync-data:/data \
#     -e SALESFORCE_CLIENT_ID -e SALESFORCE_USERNAME -e HUBSPOT_TOKEN crmsync
#
# buildah and podman build OCI images by default, which have no HEALTHCHECK: build with
# `buildah bud --format docker` or `podman build --format docker` to keep it.
#
# Paths in the config are relative to it (/config): mappings in ../connectors (/connectors, the
# shipped ones unless you mount your own), workflows in ../workflows (/workflows). The SQLite
# store lives on the /data volume; set CRMSYNC_STORE_URL to a PostgreSQL URL to use that instead
# (the example config reads it: `url: ${CRMSYNC_STORE_URL:-...}`).
#
# The base image is pinned by version and digest (the multi-platform index of
# python:3.11.16-slim-bookworm); to move to a newer patch release, change both, e.g. from
# `docker buildx imagetools inspect python:3.11-slim-bookworm`.
ARG PYTHON_IMAGE=python:3.11.16-slim-bookworm@sha256:c425d915a89a6dcd3183b1797ad9bd8878caff5a417f6371c8df93c8ea8b727f

# ---- build: the dependencies from the lock, then crmsync itself, in a virtual environment ----
FROM ${PYTHON_IMAGE} AS build

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/crmsync

# The dependencies in a layer of their own, from the hash-pinned lock only: a change to the
# code does not install them again, and every build gets the same versions.
WORKDIR /src
COPY requirements.lock ./
RUN /opt/crmsync/bin/pip install --require-hashes --no-deps -r requirements.lock \
    && rm -rf /opt/crmsync/lib/python3.11/site-packages/pyarrow/include \
        /opt/crmsync/lib/python3.11/site-packages/pyarrow/src \
        /opt/crmsync/lib/python3.11/site-packages/pyarrow/tests \
    && find /opt/crmsync \( -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' \) -delete

# crmsync itself, built with the base image's own setuptools (no download), without the
# sandbox: it is for tests and demos, and its dependencies (the `sandbox` extra) are not here.
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
    && /opt/crmsync/bin/pip install --no-deps /wheels/*.whl \
    && rm -rf /opt/crmsync/lib/python3.11/site-packages/crmsync/sandbox \
    && /opt/crmsync/bin/pip uninstall --yes setuptools pip

# ---- the image: the base image, the virtual environment, defaults, a user of its own ----
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/crmsync/bin:$PATH

RUN useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin crmsync \
    && mkdir -p /data /config /workflows /connectors \
    && chown crmsync:crmsync /data

COPY --from=build /opt/crmsync /opt/crmsync

# Defaults to start from; mount your own over them.
COPY config/crmsync.yaml /config/crmsync.yaml
COPY connectors/ /connectors/
COPY workflows/ /workflows/

# Read by the example config: the store on the data volume, HTTP reachable from outside.
ENV CRMSYNC_STORE_URL=sqlite:////data/crmsync.db \
    CRMSYNC_HTTP_HOST=0.0.0.0 \
    CRMSYNC_HTTP_PORT=9464 \
    CRMSYNC_CONFIG=/config/crmsync.yaml

# Numeric, so Kubernetes' runAsNonRoot can check it.
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 9464

# No curl in the slim image: Python asks /healthz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CRMSYNC_HTTP_PORT', '9464'), timeout=4)"]

# SIGTERM (docker stop) lets the sync in flight store its current page, then exits 0.
STOPSIGNAL SIGTERM
CMD ["crmsync", "run", "-c", "/config/crmsync.yaml"]
