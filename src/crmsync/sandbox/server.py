"""Serving a sandbox app over HTTPS on localhost, with a test CA made at start.

simple-salesforce always builds https:// URLs, so the sandbox speaks TLS; clients trust the
sandbox by the CA file it writes (never by turning verification off).
"""

from __future__ import annotations

import ssl
import threading
from pathlib import Path
from typing import Any

import trustme
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


class _QuietHandler(WSGIRequestHandler):
    """Request handler that does not print a line per request to stderr."""

    def log(self, type: str, message: str, *args: Any) -> None:
        return None


class TestCA:
    """A throw-away certificate authority and a localhost server certificate signed by it."""

    def __init__(self, directory: Path) -> None:
        self._ca = trustme.CA(organization_name="crmsync sandbox")
        self._cert = self._ca.issue_cert("127.0.0.1", "localhost", "::1")
        directory.mkdir(parents=True, exist_ok=True)
        self.ca_path = directory / "sandbox-ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_path))

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._cert.configure_cert(ctx)
        return ctx


class HttpsServer:
    """One threaded HTTPS server in a background thread; `url` is where it listens."""

    def __init__(self, app: Any, ca: TestCA | None, host: str = "127.0.0.1", port: int = 0) -> None:
        ctx = ca.server_context() if ca is not None else None
        self._server: BaseWSGIServer = make_server(
            host, port, app, threaded=True, request_handler=_QuietHandler, ssl_context=ctx
        )
        scheme = "https" if ctx is not None else "http"
        self.port = self._server.server_port
        self.url = f"{scheme}://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"sandbox-{self.port}",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
