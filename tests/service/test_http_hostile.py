"""The HTTP endpoint under hostile clients: only GET and HEAD, silent and half-sent connections
hold no thread and are closed, and an address it cannot listen on is one line (exit 2)."""

from __future__ import annotations

import http.client
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from crmsync.cli import main
from crmsync.errors import InvalidInput
from crmsync.service import http as endpoint
from crmsync.service.http import HttpServer, make_app
from crmsync.service.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server() -> Iterator[HttpServer]:
    """An endpoint on a free port that is always ready."""
    served = HttpServer("127.0.0.1", 0, make_app(Metrics().registry, lambda: (True, {})))
    served.start()
    try:
        yield served
    finally:
        served.stop()


def request(server: HttpServer, method: str, path: str = "/healthz") -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request(method, path)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


@pytest.mark.parametrize("method", ["TRACE", "DELETE", "POST", "PUT", "OPTIONS", "PATCH"])
def test_methods_other_than_get_and_head_are_405(server: HttpServer, method: str) -> None:
    """TRACE, DELETE and the rest are refused with 405 and an Allow header, on every path."""
    for path in ("/healthz", "/metrics", "/nope"):
        response = request(server, method, path)
        assert response.status == 405
        assert response.getheader("Allow") == "GET, HEAD"


def test_head_is_answered(server: HttpServer) -> None:
    """HEAD /healthz is 200, like GET."""
    assert request(server, "HEAD").status == 200
    assert request(server, "GET").status == 200


def test_silent_connections_hold_no_thread(server: HttpServer) -> None:
    """300 connections that send nothing and 20 that send half a request neither add a
    thread each nor keep /healthz from answering at once."""
    threads = threading.active_count()
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(300)]
    half = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(20)]
    try:
        for conn in half:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        time.sleep(0.2)
        started = time.monotonic()
        url = f"http://127.0.0.1:{server.port}/healthz"
        with urllib.request.urlopen(url, timeout=10) as answer:
            assert answer.status == 200
        assert time.monotonic() - started < 2
        assert threading.active_count() <= threads + endpoint.THREADS
    finally:
        for conn in idle + half:
            conn.close()


def test_a_half_sent_request_is_closed_when_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection that stops mid-request is closed after the idle timeout."""
    monkeypatch.setattr(endpoint, "IDLE_SECONDS", 1)
    served = HttpServer("127.0.0.1", 0, make_app(Metrics().registry, lambda: (True, {})))
    served.start()
    try:
        conn = socket.create_connection(("127.0.0.1", served.port))
        conn.sendall(b"GET /healthz HTTP/1.1\r\n")
        conn.settimeout(10)
        started = time.monotonic()
        assert conn.recv(100) == b""  # closed by the server, not by our timeout
        assert time.monotonic() - started < 4
        conn.close()
    finally:
        served.stop()


def test_a_port_in_use_is_one_line(server: HttpServer) -> None:
    """A second endpoint on a taken port: InvalidInput naming the address and the reason."""
    app = make_app(Metrics().registry, lambda: (True, {}))
    with pytest.raises(InvalidInput) as info:
        HttpServer("127.0.0.1", server.port, app)
    assert info.value.exit_code == 2
    assert str(info.value) == (
        f"service.http: cannot listen on 127.0.0.1:{server.port}: the port is already in use "
        "(set service.http.port to a free one, or 0)"
    )


def test_a_host_that_does_not_resolve_is_one_line() -> None:
    """A host name that does not resolve: InvalidInput, not a socket traceback."""
    app = make_app(Metrics().registry, lambda: (True, {}))
    with pytest.raises(InvalidInput, match="host name does not resolve"):
        HttpServer("no-such-host.invalid", 0, app)


def test_crmsync_run_on_a_port_in_use_exits_2(tmp_path: Path, server: HttpServer) -> None:
    """`crmsync run` whose port is taken prints one line and exits 2, no traceback."""
    (tmp_path / "workflows").mkdir()
    config = tmp_path / "crmsync.yaml"
    config.write_text(
        f"store: {{url: 'sqlite:///{tmp_path / 'store.db'}'}}\n"
        f"workflows: {tmp_path / 'workflows'}\n"
        f"service: {{http: {{host: 127.0.0.1, port: {server.port}}}}}\n"
        "connections:\n"
        "  - name: hs\n"
        "    type: hubspot\n"
        f"    mapping: {ROOT / 'connectors' / 'hubspot.yaml'}\n"
        "    auth: {method: private_app, access_token: pat-secret-123}\n"
    )
    result = CliRunner().invoke(main, ["--log-level", "error", "run", "-c", str(config)])
    assert result.exit_code == 2, result.output + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("crmsync:")]
    assert lines == [
        f"crmsync: error: service.http: cannot listen on 127.0.0.1:{server.port}: the port is "
        "already in use (set service.http.port to a free one, or 0)"
    ]
