"""Serving a sandbox app over HTTPS on localhost, with a test CA made at start.

simple-salesforce always builds https:// URLs, so the sandbox speaks TLS; clients trust the
sandbox by the CA file it writes (never by turning verification off). cheroot serves it: threaded,
HTTP/1.1 keep-alive (a TLS handshake per request would make the sandbox the bottleneck of every
benchmark), and a real connection in the WSGI environ so a fault can hang up on the client.
"""

from __future__ import annotations

import ssl
import threading
import time
from pathlib import Path
from typing import Any

import trustme
from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

CONNECTION_KEY = "crmsync.connection"


class TestCA:
    """A throw-away certificate authority and a localhost server certificate signed by it."""

    def __init__(self, directory: Path) -> None:
        self._ca = trustme.CA(organization_name="crmsync sandbox")
        self._cert = self._ca.issue_cert("127.0.0.1", "localhost", "::1")
        directory.mkdir(parents=True, exist_ok=True)
        self.ca_path = directory / "sandbox-ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_path))
        self.server_pem = directory / "sandbox-server.pem"
        self._cert.private_key_and_cert_chain_pem.write_to_path(str(self.server_pem))
        self.server_pem.chmod(0o600)

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._cert.configure_cert(ctx)
        return ctx


class _Gateway(wsgi.Gateway_10):
    """The standard WSGI 1.0 gateway, plus the client connection under CONNECTION_KEY."""

    def get_environ(self) -> dict[str, Any]:  # type: ignore[override]  # cheroot's stub says None
        env: dict[str, Any] = super().get_environ()  # type: ignore[no-untyped-call]
        env[CONNECTION_KEY] = self.req.conn
        return env


class HttpsServer:
    """One threaded HTTPS server in a background thread; `url` is where it listens."""

    def __init__(
        self, app: Any, ca: TestCA | None, host: str = "127.0.0.1", port: int = 0, threads: int = 8
    ) -> None:
        self._server = wsgi.Server(
            (host, port), app, numthreads=threads, timeout=30, shutdown_timeout=1
        )
        self._server.gateway = _Gateway
        self._server.expiration_interval = 0.05  # how soon `stop` is noticed
        if ca is not None:
            adapter = BuiltinSSLAdapter(str(ca.server_pem), str(ca.server_pem))
            self._server.ssl_adapter = adapter
        self._server.prepare()  # binds now, so the port is known before serving starts
        self.port = int(self._server.bind_addr[1])
        scheme = "https" if ca is not None else "http"
        self.url = f"{scheme}://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve, name=f"sandbox-{self.port}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 5
        while not self._server.ready and time.monotonic() < deadline:
            time.sleep(0.005)

    def stop(self) -> None:
        self._server.stop()
        self._thread.join(timeout=5)
