"""The service's HTTP endpoint, served from a background thread: /healthz, /readyz, /metrics.

/healthz answers 200 while the process lives; /readyz 200 or 503 with a JSON body naming each
check and whether it passed; /metrics is Prometheus text from the worker's own registry.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import structlog
from prometheus_client import CollectorRegistry, make_wsgi_app

log = structlog.get_logger("crmsync.service")

Readiness = Callable[[], tuple[bool, dict[str, Any]]]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class _Server(ThreadingMixIn, WSGIServer):
    """One thread per request, so a slow readiness check never holds up /healthz."""

    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr: it would break the JSON log lines."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _json(start_response: StartResponse, status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body, default=str).encode()
    start_response(
        status,
        [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
    )
    return [data]


def make_app(registry: CollectorRegistry, readiness: Readiness) -> WsgiApp:
    """The WSGI application routing the three endpoints."""
    metrics_app = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            return _json(start_response, "200 OK", {"status": "alive"})
        if path == "/readyz":
            try:
                ready, body = readiness()
            except Exception as e:  # a check that crashes means not ready, not a dead endpoint
                log.error("http.readiness_failed", error=str(e))
                ready, body = False, {"status": "not ready", "error": type(e).__name__}
            return _json(start_response, "200 OK" if ready else "503 Service Unavailable", body)
        if path == "/metrics":
            return metrics_app(environ, start_response)  # type: ignore[no-any-return]
        return _json(start_response, "404 Not Found", {"error": "not found", "path": path})

    return app


class HttpServer:
    """The endpoint on `host:port` (0: a free port, see `port` once started)."""

    def __init__(self, host: str, port: int, app: WsgiApp) -> None:
        self._server = make_server(
            host, port, app, server_class=_Server, handler_class=_QuietHandler
        )
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="crmsync-http", daemon=True
        )

    def start(self) -> None:
        """Serve from a background thread."""
        self._thread.start()
        log.info("http.listening", host=self.host, port=self.port)

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
