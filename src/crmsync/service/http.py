"""The service's HTTP endpoint, served from a background thread: /healthz, /readyz, /metrics,
/report.

/healthz answers 200 while the process lives; /readyz 200 or 503 with a JSON body naming each
check and whether it passed; /metrics is Prometheus text from the worker's own registry;
/report the latest pipeline review page (crmsync.service.report; 503 while the first is being
built). Only GET and HEAD are answered (others: 405); connections are bounded in time and
threads.
"""

from __future__ import annotations

import errno
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterable
from datetime import UTC
from email.utils import format_datetime
from typing import Any

import structlog
import waitress.server
from prometheus_client import CollectorRegistry, make_wsgi_app

from crmsync.errors import InvalidInput
from crmsync.service.report import ReportPage

log = structlog.get_logger("crmsync.service")
# waitress speaks through the standard logging module, in plain text: keep it off the JSON lines
_waitress_log = logging.getLogger("waitress")
_waitress_log.addHandler(logging.NullHandler())
_waitress_log.propagate = False

Readiness = Callable[[], tuple[bool, dict[str, Any]]]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
ReportSource = Callable[[], ReportPage | None]

METHODS = ("GET", "HEAD")  # any other method is answered 405
THREADS = 4  # complete requests answered at once; more wait for a free thread
MAX_CONNECTIONS = 500  # open connections (each a file descriptor); more wait to be accepted
IDLE_SECONDS = 5  # a connection without a complete request for this long is closed
MAX_HEADER_BYTES = 16 * 1024
MAX_BODY_BYTES = 1024  # GET and HEAD carry none; a longer body is refused (413)


def _refused(host: str, port: int, error: OSError) -> InvalidInput:
    """The one line for an address the endpoint cannot listen on (a config mistake: exit 2)."""
    if isinstance(error, socket.gaierror):
        reason = "the host name does not resolve (set service.http.host)"
    elif error.errno == errno.EADDRINUSE:
        reason = "the port is already in use (set service.http.port to a free one, or 0)"
    else:
        reason = error.strerror or type(error).__name__
    return InvalidInput(f"service.http: cannot listen on {host}:{port}: {reason}")


def _json(start_response: StartResponse, status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body, default=str).encode()
    start_response(
        status,
        [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
    )
    return [data]


def _text(
    start_response: StartResponse, status: str, text: str, *extra: tuple[str, str]
) -> list[bytes]:
    data = text.encode()
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(data)))]
    start_response(status, [*headers, *extra])
    return [data]


def _report(
    environ: dict[str, Any], start_response: StartResponse, source: ReportSource
) -> list[bytes]:
    """The latest report page (gzipped when the client accepts it), or why there is none."""
    try:
        page = source()
    except Exception as e:  # said in the log; the page only says where to look
        log.error("http.report_failed", error=str(e), error_type=type(e).__name__)
        return _text(
            start_response,
            "500 Internal Server Error",
            "The pipeline report could not be built; the service's log says why "
            "(event report.render_failed).\n",
        )
    if page is None:
        return _text(
            start_response,
            "503 Service Unavailable",
            "The pipeline report is being built; try again in a minute.\n",
            ("Retry-After", "60"),
        )
    gzipped = "gzip" in environ.get("HTTP_ACCEPT_ENCODING", "")
    data = page.gzipped if gzipped else page.html
    headers = [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", str(len(data))),
        ("Cache-Control", "no-cache"),
        ("Last-Modified", format_datetime(page.built_at.astimezone(UTC), usegmt=True)),
        ("X-Content-Type-Options", "nosniff"),
        ("Vary", "Accept-Encoding"),
    ]
    if gzipped:
        headers.append(("Content-Encoding", "gzip"))
    start_response("200 OK", headers)
    return [data]


def make_app(
    registry: CollectorRegistry, readiness: Readiness, report: ReportSource | None = None
) -> WsgiApp:
    """The WSGI application routing the endpoints (/report only when given a source)."""
    metrics_app = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") not in METHODS:
            data = b'{"error": "method not allowed"}'
            start_response(
                "405 Method Not Allowed",
                [
                    ("Allow", ", ".join(METHODS)),
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(data))),
                ],
            )
            return [data]
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
        if path == "/report" and report is not None:
            return _report(environ, start_response, report)
        return _json(start_response, "404 Not Found", {"error": "not found", "path": path})

    return app


class HttpServer:
    """The endpoint on `host:port` (0: a free port, see `port` once started), served by waitress:
    connections are read without threads (a silent or half-sent one holds none) and closed after
    IDLE_SECONDS without a complete request; at most MAX_CONNECTIONS are open (more wait to be
    accepted); THREADS answer complete requests; headers are at most MAX_HEADER_BYTES.

    An address it cannot listen on (port in use, a host that does not resolve) is an
    `InvalidInput` naming it.
    """

    def __init__(self, host: str, port: int, app: WsgiApp) -> None:
        self._map: dict[int, Any] = {}  # waitress's sockets: listening, its trigger, connections
        try:  # one address (a name may resolve to several), so one listening socket
            address = socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )[0][4][0]
            server = waitress.server.create_server(
                app,
                map=self._map,
                host=address,
                port=port,
                threads=THREADS,
                connection_limit=MAX_CONNECTIONS,
                channel_timeout=IDLE_SECONDS,
                cleanup_interval=1,
                asyncore_loop_timeout=0.2,  # how soon `stop` is noticed
                max_request_header_size=MAX_HEADER_BYTES,
                max_request_body_size=MAX_BODY_BYTES,
                ident="crmsync",
                expose_tracebacks=False,
            )
        except OSError as e:
            raise _refused(host, port, e) from None
        assert isinstance(server, waitress.server.TcpWSGIServer)  # one address: one socket
        self._server = server
        self.host = host
        self.port = int(server.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, name="crmsync-http", daemon=True)
        self._stopping = threading.Event()

    def _serve(self) -> None:
        try:
            self._server.run()
        except Exception as e:  # the endpoint dying must be said, never silent
            if self._stopping.is_set() and isinstance(e, OSError):
                return  # `stop` closed the sockets under the loop's select: the stop itself
            log.error("http.failed", error=type(e).__name__)

    def start(self) -> None:
        """Serve from a background thread."""
        self._thread.start()
        log.info("http.listening", host=self.host, port=self.port)

    def stop(self) -> None:
        """Stop serving and close the socket and every connection (the loop ends with them)."""
        self._stopping.set()
        while self._map:
            for dispatcher in list(self._map.values()):
                dispatcher.handle_close()
        self._server.task_dispatcher.shutdown()
        self._thread.join(timeout=5)
