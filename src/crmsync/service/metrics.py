"""The service's Prometheus metrics, in a registry of their own per worker (not the global one).

Names and labels are documented in the README's "Operating" section. Labels carry connection,
workflow and file names only, never credentials.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import structlog
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from crmsync import __version__
from crmsync.app.sync import SyncSummary
from crmsync.store import Store
from crmsync.store.outbox import STATES, outbox_counts

log = structlog.get_logger("crmsync.service")

ACTION_STATES = STATES  # the outbox's own states, each exported even when no row is in it
JOB_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class ActionsCollector(Collector):
    """`crmsync_actions{state}`: outbox rows per state, read from the store at each scrape."""

    def __init__(self, store: Callable[[], Store | None]) -> None:
        self._store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "crmsync_actions", "CRM write-back actions in the outbox, by state", labels=["state"]
        )
        store = self._store()
        if store is None:
            return
        try:
            found = outbox_counts(store)
        except Exception as e:  # a scrape must not fail because the database is away
            log.warning("metrics.actions_unavailable", error=str(e))
            return
        counts = dict.fromkeys(ACTION_STATES, 0) | {str(s): int(n) for s, n in found.items()}
        for state, n in sorted(counts.items()):
            family.add_metric([state], n)
        yield family


class Metrics:
    """Every metric of one worker; `registry` is what /metrics serves."""

    def __init__(self, store: Callable[[], Store | None] | None = None) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no `*_created` series
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.info = Gauge(
            "crmsync_info", "Always 1; the version in a label", ["version"], registry=r
        )
        self.info.labels(__version__).set(1)
        self.syncs = Counter(
            "crmsync_syncs",
            "Syncs run, by connection and status",
            ["connection", "status"],
            registry=r,
        )
        self.records_fetched = Counter(
            "crmsync_records_fetched", "Records read from the CRM", ["connection"], registry=r
        )
        self.api_calls = Counter(
            "crmsync_api_calls", "CRM API calls made by syncs", ["connection"], registry=r
        )
        self.quota_remaining = Gauge(
            "crmsync_api_quota_remaining",
            "Daily API calls the CRM said were left, at the last sync",
            ["connection"],
            registry=r,
        )
        self.last_sync_ok = Gauge(
            "crmsync_last_successful_sync_timestamp_seconds",
            "When the connection's last successful sync finished (Unix time)",
            ["connection"],
            registry=r,
        )
        self.workflow_runs = Counter(
            "crmsync_workflow_runs",
            "Workflow runs, by workflow and status",
            ["workflow", "status"],
            registry=r,
        )
        self.workflow_firings = Gauge(
            "crmsync_workflow_firings",
            "Rule firings found by the workflow's last run",
            ["workflow"],
            registry=r,
        )
        self.workflow_mode = Gauge(
            "crmsync_workflow_mode",
            "1 for each workflow's effective mode (live, shadow, dry-run) and where it comes from",
            ["workflow", "mode", "source"],
            registry=r,
        )
        self._modes: dict[str, tuple[str, str]] = {}
        self.job_duration = Histogram(
            "crmsync_job_duration_seconds",
            "How long scheduled jobs took",
            ["job", "name"],
            buckets=JOB_BUCKETS,
            registry=r,
        )
        self.job_errors = Counter(
            "crmsync_job_errors", "Scheduled jobs that failed", ["job", "name"], registry=r
        )
        self.reload_errors = Counter(
            "crmsync_workflow_reload_errors",
            "Changed workflow files refused because they are invalid",
            ["file"],
            registry=r,
        )
        self.invalid_files = Gauge(
            "crmsync_workflow_files_invalid",
            "Workflow files whose current content is invalid (the last good version runs)",
            registry=r,
        )
        self.lease_held = Gauge(
            "crmsync_lease_held", "1 when this worker holds the lease and runs the jobs", registry=r
        )
        if store is not None:
            r.register(ActionsCollector(store))

    def set_mode(self, workflow: str, mode: str, source: str) -> None:
        """`crmsync_workflow_mode`: the workflow's effective mode now (its old series goes)."""
        old = self._modes.get(workflow)
        if old is not None and old != (mode, source):
            self.workflow_mode.remove(workflow, *old)
        self._modes[workflow] = (mode, source)
        self.workflow_mode.labels(workflow, mode, source).set(1)

    def record_sync(self, summary: SyncSummary, finished_at: float) -> None:
        """Count one finished sync (any status) by its summary."""
        conn = summary.connection
        self.syncs.labels(conn, summary.status).inc()
        self.records_fetched.labels(conn).inc(summary.fetched)
        self.api_calls.labels(conn).inc(summary.api_calls)
        if summary.quota_limit is not None and summary.quota_used is not None:
            self.quota_remaining.labels(conn).set(summary.quota_limit - summary.quota_used)
        if summary.status == "ok":
            self.last_sync_ok.labels(conn).set(finished_at)
