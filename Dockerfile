# crmsync as a background service: `crmsync run` with health checks and metrics on port 9464.
#
#   docker build -t crmsync .
#   docker run -d --name crmsync -p 9464:9464 --stop-timeout 120 \
#     -v "$PWD/config:/config:ro" -v "$PWD/workflows:/workflows:ro" -v crmsync-data:/data \
#     -e SALESFORCE_CLIENT_ID -e SALESFORCE_USERNAME -e HUBSPOT_TOKEN crmsync
#
# Paths in the config are relative to it (/config): mappings in ../connectors (/connectors, the
# shipped ones unless you mount your own), workflows in ../workflows (/workflows). The SQLite
# store lives on the /data volume; set CRMSYNC_STORE_URL to a PostgreSQL URL to use that instead
# (the example config reads it: `url: ${CRMSYNC_STORE_URL:-...}`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . \
    && rm -rf /src \
    && useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin crmsync \
    && mkdir -p /data /config /workflows /connectors \
    && chown crmsync:crmsync /data

# Defaults to start from; mount your own over them.
COPY config/crmsync.yaml /config/crmsync.yaml
COPY connectors/ /connectors/
COPY workflows/ /workflows/

# Read by the example config: the store on the data volume, HTTP reachable from outside.
ENV CRMSYNC_STORE_URL=sqlite:////data/crmsync.db \
    CRMSYNC_HTTP_HOST=0.0.0.0 \
    CRMSYNC_HTTP_PORT=9464 \
    CRMSYNC_CONFIG=/config/crmsync.yaml

USER crmsync
WORKDIR /data
VOLUME ["/data"]
EXPOSE 9464

# No curl in the slim image: Python asks /healthz.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CRMSYNC_HTTP_PORT', '9464'), timeout=4)"

# SIGTERM (docker stop) lets the sync in flight store its current page, then exits 0.
STOPSIGNAL SIGTERM
CMD ["crmsync", "run", "-c", "/config/crmsync.yaml"]
