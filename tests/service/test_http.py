"""The HTTP endpoint in process: routes, status codes, JSON bodies, Prometheus text."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from prometheus_client import generate_latest

from crmsync.service.http import HttpServer, make_app
from crmsync.service.metrics import Metrics
from crmsync.store import Store
from crmsync.store.outbox import STATES
from crmsync.store.schema import outbox
from tests.service.support import metric


class Ready:
    """A readiness answer the test sets."""

    def __init__(self) -> None:
        self.answer: tuple[bool, dict[str, Any]] = (True, {"status": "ready"})

    def __call__(self) -> tuple[bool, dict[str, Any]]:
        return self.answer


@pytest.fixture
def served() -> Iterator[tuple[HttpServer, Metrics, Ready]]:
    metrics, ready = Metrics(), Ready()
    server = HttpServer("127.0.0.1", 0, make_app(metrics.registry, ready))
    server.start()
    try:
        yield server, metrics, ready
    finally:
        server.stop()


def _get(server: HttpServer, path: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=10) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read().decode()


def test_port_zero_picks_a_free_port(served: tuple[HttpServer, Metrics, Ready]) -> None:
    """Port 0 in the config becomes a real port, reported by the server."""
    server, _, _ = served
    assert server.port > 0


def test_healthz_and_unknown_paths(served: tuple[HttpServer, Metrics, Ready]) -> None:
    """/healthz is 200 while the process runs; other paths are 404."""
    server, _, ready = served
    ready.answer = (False, {"status": "not ready"})
    assert _get(server, "/healthz")[0] == 200  # alive even when not ready
    assert _get(server, "/nope")[0] == 404


def test_readyz_follows_the_checks(served: tuple[HttpServer, Metrics, Ready]) -> None:
    """/readyz is 200 when ready and 503 with the failed checks in JSON when not."""
    server, _, ready = served
    status, kind, body = _get(server, "/readyz")
    assert (status, kind, json.loads(body)) == (200, "application/json", {"status": "ready"})
    ready.answer = (False, {"status": "not ready", "failed": ["database"]})
    status, _, body = _get(server, "/readyz")
    assert status == 503 and json.loads(body)["failed"] == ["database"]


def test_a_crashing_readiness_check_is_not_ready() -> None:
    """A check that raises answers 503, and the endpoint stays up."""

    def boom() -> tuple[bool, dict[str, Any]]:
        raise RuntimeError("no")

    server = HttpServer("127.0.0.1", 0, make_app(Metrics().registry, boom))
    server.start()
    try:
        assert _get(server, "/readyz")[0] == 503
        assert _get(server, "/healthz")[0] == 200
    finally:
        server.stop()


def test_metrics_are_prometheus_text(served: tuple[HttpServer, Metrics, Ready]) -> None:
    """/metrics serves the worker's own registry in the text format."""
    server, metrics, _ = served
    metrics.syncs.labels("sf", "ok").inc(3)
    metrics.lease_held.set(1)
    status, kind, body = _get(server, "/metrics")
    assert status == 200 and kind.startswith("text/plain")
    assert metric(body, "crmsync_syncs_total", connection="sf", status="ok") == 3
    assert metric(body, "crmsync_lease_held") == 1
    assert not re.search(r"^\w+_created[{ ]", body, re.MULTILINE)  # no `*_created` series


def test_registries_are_private() -> None:
    """Two workers in one process keep separate counts (no global registry)."""
    a, b = Metrics(), Metrics()
    a.syncs.labels("sf", "ok").inc()
    assert metric(generate_latest(b.registry).decode(), "crmsync_syncs_total") is None


def _scrape_with_outbox(store: Store, states: list[str]) -> str:
    """/metrics text after putting one outbox row in the store per entry of `states`."""
    now = datetime.now(UTC)
    rows = [
        dict(
            key=f"k{i}",
            seq=i,
            connection="sf",
            workflow="wf",
            rule="r",
            opp_key="sf:1",
            native_id="1",
            kind="flag.write",
            payload={},
            state=state,
            attempts=0,
            created_at=now,
            updated_at=now,
        )
        for i, state in enumerate(states)
    ]
    with store.writing("test") as conn:
        conn.execute(sa.insert(outbox), rows)
    return generate_latest(Metrics(lambda: store).registry).decode()


def test_actions_by_state_come_from_the_outbox(store: Store) -> None:
    """crmsync_actions counts outbox rows per state, with 0 for the known states not present."""
    text = _scrape_with_outbox(store, ["planned", "planned", "parked"])
    labels = {"workflow": "wf", "connection": "sf"}
    assert metric(text, "crmsync_actions", state="planned", **labels) == 2
    assert metric(text, "crmsync_actions", state="parked", **labels) == 1
    assert metric(text, "crmsync_actions", state="confirmed", **labels) == 0


def test_actions_are_exported_under_the_outboxs_own_states(store: Store) -> None:
    """Every state an outbox row can be in is a label (rows in `sent` and `failed` counted),
    and no label names a state that does not exist."""
    text = _scrape_with_outbox(store, ["sent", "sent", "failed", "confirmed"])
    labels = set(re.findall(r'^crmsync_actions\{.*state="([^"]+)".*\}', text, re.MULTILINE))
    assert labels == set(STATES)
    assert metric(text, "crmsync_actions", state="sent") == 2
    assert metric(text, "crmsync_actions", state="failed") == 1
    assert metric(text, "crmsync_actions", state="planned") == 0


def test_a_stop_logs_no_error() -> None:
    """Closing the sockets under the serving loop is the stop itself, not `http.failed` (an
    error line on 2 of 3 clean shutdowns tripped operators' alerts on error logs)."""
    from structlog.testing import capture_logs

    with capture_logs() as logs:
        for _ in range(10):
            server = HttpServer("127.0.0.1", 0, make_app(Metrics().registry, Ready()))
            server.start()
            url = f"http://127.0.0.1:{server.port}/healthz"
            with urllib.request.urlopen(url, timeout=5) as answer:
                assert answer.status == 200
            server.stop()
    assert [e for e in logs if e["event"] == "http.failed"] == []
