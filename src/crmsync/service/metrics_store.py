"""Metrics read from the store at each scrape: the outbox by workflow, connection and state, and
each connection's last successful sync.

Read from the store rather than counted in memory, so every worker (the active one and any
standby) reports the same values, and a restart loses nothing. When the database does not
answer, a scrape still succeeds with the values of the last good read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator

import structlog
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from crmsync.store import Store
from crmsync.store.outbox import STATES
from crmsync.store.outbox_counts import outbox_counts_by_workflow

log = structlog.get_logger("crmsync.service")

ACTION_STATES = STATES  # the outbox's own states, each exported even when no row is in it


class StoreCollector(Collector):
    """`crmsync_actions{workflow, connection, state}` and
    `crmsync_last_successful_sync_timestamp_seconds{connection}` (0 until the first success)."""

    def __init__(
        self,
        store: Callable[[], Store | None],
        connections: Callable[[], Iterable[str]],
        pairs: Callable[[], Iterable[tuple[str, str]]],
    ) -> None:
        """`connections` and `pairs` (workflow, connection) name the label values exported at
        zero before anything happened."""
        self._store = store
        self._connections = connections
        self._pairs = pairs
        self._lock = threading.Lock()
        self._actions: dict[tuple[str, str, str], int] = {}
        self._last_ok: dict[str, float] = {}

    def _read(self) -> None:
        store = self._store()
        if store is None:
            return
        try:
            actions = outbox_counts_by_workflow(store)
            last_ok: dict[str, float] = {}
            for name in self._connections():
                at = store.last_successful_sync(name)
                last_ok[name] = at.timestamp() if at is not None else 0.0
        except Exception as e:  # a scrape must not fail because the database is away
            log.warning("metrics.store_unavailable", error=str(e))
            return
        self._actions, self._last_ok = actions, last_ok

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            self._read()
            actions, last_ok = dict(self._actions), dict(self._last_ok)
        family = GaugeMetricFamily(
            "crmsync_actions",
            "CRM write-back actions in the outbox, by workflow, connection and state",
            labels=["workflow", "connection", "state"],
        )
        pairs = set(self._pairs()) | {(w, c) for w, c, _ in actions}
        for workflow, connection in sorted(pairs):
            for state in ACTION_STATES:
                n = actions.get((workflow, connection, state), 0)
                family.add_metric([workflow, connection, state], n)
        yield family
        synced = GaugeMetricFamily(
            "crmsync_last_successful_sync_timestamp_seconds",
            "When the connection's last successful sync finished (Unix time; 0: never)",
            labels=["connection"],
        )
        for name, at in sorted(last_ok.items()):
            synced.add_metric([name], at)
        yield synced
