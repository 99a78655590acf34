"""A sandbox server stops promptly whatever its clients' connections are doing (a background
`crmsync sandbox` killed at the end of a script must not outlive it)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from crmsync.sandbox import server as sandbox_server
from crmsync.sandbox.server import HttpsServer

# A hang bound, not a speed target: before the fix these stops took the 30 s socket timeout.
HANG_SECONDS = 5.0
CHUNK = b"x" * (1 << 20)


def _app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """`/big`: 64 MB, more than the sockets' buffers hold, so a client that does not read it
    keeps the server's worker blocked in a write; anything else: a short answer."""
    chunks = 64 if environ.get("PATH_INFO") == "/big" else 0
    body_length = len(CHUNK) * chunks if chunks else 2
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(body_length))])
    return (CHUNK for _ in range(chunks)) if chunks else [b"ok"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[HttpsServer, requests.Session]]:
    ca = sandbox_server.TestCA(tmp_path)  # not imported by name: pytest would collect it
    srv = HttpsServer(_app, ca, threads=2)
    srv.start()
    session = requests.Session()
    session.trust_env = False
    session.verify = str(ca.ca_path)
    yield srv, session
    session.close()


def _stops_within(srv: HttpsServer, seconds: float) -> bool:
    """Whether `stop` returned within `seconds` (run in a thread, so a hang fails the test
    instead of hanging it)."""
    stopper = threading.Thread(target=srv.stop, daemon=True)
    stopper.start()
    stopper.join(seconds)
    return not stopper.is_alive()


def test_stop_with_an_idle_keep_alive_connection(
    server: tuple[HttpsServer, requests.Session],
) -> None:
    """A session that made one call holds its connection open, idle: stop closes it."""
    srv, session = server
    assert session.get(srv.url + "/").text == "ok"
    assert _stops_within(srv, HANG_SECONDS)


def test_stop_with_an_answer_the_client_does_not_read(
    server: tuple[HttpsServer, requests.Session],
) -> None:
    """A session that made one call and has not read its (large) answer: the worker writing
    it is hung up on instead of waiting out the socket timeout."""
    srv, session = server
    answer = session.get(srv.url + "/big", stream=True)
    assert answer.raw.read(10) == b"x" * 10
    assert _stops_within(srv, HANG_SECONDS)


def test_stop_with_a_connection_that_has_not_finished_its_tls_handshake(
    server: tuple[HttpsServer, requests.Session],
) -> None:
    """A client that connected but sent nothing: cheroot's accept thread waits in the TLS
    handshake, and stop ends that wait."""
    srv, _ = server
    with socket.create_connection(("127.0.0.1", srv.port)):
        assert srv.url.startswith("https://")
        assert _stops_within(srv, HANG_SECONDS)
