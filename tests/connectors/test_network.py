"""A failure without an HTTP answer is told in words with its host and port, through both
clients' exception chains (it was the bare class name: "MaxRetryError", "ConnectionError")."""

from __future__ import annotations

import pytest
import requests
import urllib3

from crmsync.connectors.network import network_failure


def _closed_port() -> int:
    import socket

    with socket.socket() as s:  # a port nothing listens on once this socket is closed
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connection_refused_through_urllib3() -> None:
    port = _closed_port()
    http = urllib3.PoolManager(retries=urllib3.Retry(total=0))
    with pytest.raises(urllib3.exceptions.HTTPError) as caught:
        http.request("GET", f"http://127.0.0.1:{port}/")
    assert network_failure(caught.value) == f"connection refused (127.0.0.1:{port})"


def test_connection_refused_through_requests() -> None:
    port = _closed_port()
    with pytest.raises(requests.ConnectionError) as caught:
        requests.get(f"http://127.0.0.1:{port}/", timeout=5)
    assert network_failure(caught.value) == f"connection refused (127.0.0.1:{port})"


def test_a_plain_error_keeps_its_class_name() -> None:
    assert network_failure(OSError("something odd")) == "OSError"
