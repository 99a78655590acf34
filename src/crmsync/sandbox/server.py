"""Serving a sandbox app over HTTPS on localhost, with a test CA made at start.

simple-salesforce always builds https:// URLs, so the sandbox speaks TLS; clients trust the
sandbox by the CA file it writes (never by turning verification off). cheroot serves it: threaded,
HTTP/1.1 keep-alive (a TLS handshake per request would make the sandbox the bottleneck of every
benchmark), and a real connection in the WSGI environ so a fault can hang up on the client.

Stopping is prompt whatever the clients do: cheroot closes idle keep-alive connections itself,
but waits out the socket timeout (30 s) on a TLS handshake a client has not finished (it runs on
the accept thread) and on a worker writing an answer its client does not read; so a stop cuts
handshakes at once and hangs up on every connection still open after a short grace.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import trustme
from cheroot import errors, server, wsgi
from cheroot.makefile import MakeFile
from cheroot.ssl.builtin import BuiltinSSLAdapter

CONNECTION_KEY = "crmsync.connection"
# Seconds a stop gives requests in flight to finish before it hangs up on their connections.
GRACE_SECONDS = 1.0


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


def _hang_up(sock: Any) -> None:
    """End a connection both ways, waking whoever blocks on it; an already closed one is fine."""
    with contextlib.suppress(OSError, ValueError):
        sock.shutdown(socket.SHUT_RDWR)


class _Connections:
    """The server's open connections, for a stop to hang up on (weakly held: cheroot drops
    closed ones)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: weakref.WeakSet[Any] = weakref.WeakSet()

    def add(self, conn: Any) -> None:
        with self._lock:
            self._open.add(conn)

    def hang_up(self) -> None:
        with self._lock:
            conns = list(self._open)
        for conn in conns:
            _hang_up(conn.socket)


class _Server(wsgi.Server):
    """cheroot's WSGI server, knowing its connections."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.open_connections = _Connections()


class _Connection(server.HTTPConnection):
    """cheroot's connection, registering itself with its server."""

    def __init__(self, srv: _Server, sock: Any, makefile: Any = MakeFile) -> None:
        super().__init__(srv, sock, makefile)
        srv.open_connections.add(self)


class _TLSAdapter(BuiltinSSLAdapter):
    """The builtin TLS adapter, whose handshakes in progress a stop can cut (cheroot runs them
    on its accept thread, which a stop waits for)."""

    def __init__(self, certificate: str, private_key: str) -> None:
        super().__init__(certificate, private_key)
        self._lock = threading.Lock()
        self._handshakes: set[socket.socket] = set()
        self._closed = False

    def wrap(self, sock: socket.socket) -> Any:
        # a second descriptor of the connection: wrapping detaches `sock` from it
        handle = sock.dup()
        with self._lock:
            if self._closed:
                handle.close()
                raise errors.FatalSSLAlert("the server is stopping")
            self._handshakes.add(handle)
        try:
            return super().wrap(sock)  # type: ignore[no-untyped-call]
        finally:
            with self._lock:
                self._handshakes.discard(handle)
            handle.close()

    def close(self) -> None:
        """Cut the handshakes in progress and refuse new ones."""
        with self._lock:
            self._closed = True
            for handle in self._handshakes:
                _hang_up(handle)


class HttpsServer:
    """One threaded HTTPS server in a background thread; `url` is where it listens."""

    def __init__(
        self, app: Any, ca: TestCA | None, host: str = "127.0.0.1", port: int = 0, threads: int = 8
    ) -> None:
        self._server = _Server(
            (host, port), app, numthreads=threads, timeout=30, shutdown_timeout=GRACE_SECONDS
        )
        self._server.gateway = _Gateway
        self._server.ConnectionClass = _Connection
        self._server.expiration_interval = 0.05  # how soon `stop` is noticed
        self._adapter: _TLSAdapter | None = None
        if ca is not None:
            self._adapter = _TLSAdapter(str(ca.server_pem), str(ca.server_pem))
            self._server.ssl_adapter = self._adapter
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
        """Stop serving: handshakes are cut, idle connections closed, and requests in flight
        get GRACE_SECONDS before their connections are hung up on."""
        if self._adapter is not None:
            self._adapter.close()
        hang_up = threading.Timer(GRACE_SECONDS, self._server.open_connections.hang_up)
        hang_up.daemon = True
        hang_up.start()
        try:
            self._server.stop()
        finally:
            hang_up.cancel()
        self._thread.join(timeout=5)
