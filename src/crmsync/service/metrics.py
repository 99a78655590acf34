"""The service's Prometheus metrics, in a registry of their own per worker (not the global one).

Names follow Prometheus' conventions: counters end in `_total`, units are in the name, and no
label of ours is called `job` or `instance` (Prometheus sets those on every target). Each label
has one meaning: `connection` a configured connection, `workflow` a workflow's name. Every
counter is created at zero for each known connection and workflow when the worker starts (and
for each workflow as soon as its file is loaded), so `increase()` and `rate()` have a series to
work on before the first event; gauges not known yet (a quota the CRM has not reported, a
workflow that has not run) are NaN, which no comparison matches. `SERIES` lists every series
with its labels; the README's "Operating" section documents them. Labels carry connection,
workflow and file names only, never credentials.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from crmsync import __version__
from crmsync.actions.executor import ExecSummary
from crmsync.app.sync import SyncSummary
from crmsync.connectors.retry import RetryEvent, add_retry_listener
from crmsync.service.metrics_store import ACTION_STATES, StoreCollector
from crmsync.store import Store

__all__ = ["ACTION_STATES", "SERIES", "SYNC_STATUSES", "WORKFLOW_STATUSES", "Metrics"]

SYNC_STATUSES = ("ok", "stopped", "failed")
WORKFLOW_STATUSES = ("ok", "failed", "interrupted")
API_CALL_KINDS = ("sync", "writeback")
DURATION_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

# Every series crmsync exports (besides Prometheus' own process_* and python_* ones), with its
# labels: what the tests hold the scrape, the dashboard and the alert rules to.
SERIES: dict[str, tuple[str, ...]] = {
    "crmsync_info": ("version",),
    "crmsync_lease_held": (),
    "crmsync_syncs_total": ("connection", "status"),
    "crmsync_sync_duration_seconds": ("connection",),
    "crmsync_records_fetched_total": ("connection",),
    "crmsync_api_calls_total": ("connection", "kind"),
    "crmsync_api_quota_remaining": ("connection",),
    "crmsync_api_quota_limit": ("connection",),
    "crmsync_crm_rate_limited_total": ("connection",),
    "crmsync_crm_retries_total": ("connection",),
    "crmsync_last_successful_sync_timestamp_seconds": ("connection",),
    "crmsync_sync_stale_after_seconds": ("connection",),
    "crmsync_workflow_runs_total": ("workflow", "status"),
    "crmsync_workflow_duration_seconds": ("workflow",),
    "crmsync_workflow_firings": ("workflow", "connection"),
    "crmsync_tasks_created_total": ("workflow", "connection"),
    "crmsync_actions": ("workflow", "connection", "state"),
    "crmsync_workflow_mode": ("workflow", "mode", "source"),
    "crmsync_workflow_reload_errors_total": ("file",),
    "crmsync_workflow_files_invalid": (),
}


class Metrics:
    """Every metric of one worker; `registry` is what /metrics serves.

    `connections` are the configured connections; `stale_after` gives, for each scheduled one,
    how old its last successful sync may be before it counts as stale (what /readyz uses).
    """

    def __init__(
        self,
        store: Callable[[], Store | None] | None = None,
        *,
        connections: Iterable[str] = (),
        stale_after: Mapping[str, float] | None = None,
        lease: bool = True,
    ) -> None:
        """`lease=False` for a worker on the shared queue: it has no lease to report (and
        the alert on `sum(crmsync_lease_held) != 1` must not count it)."""
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no `*_created` series
        r = self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=r)  # process_*: memory, CPU, open files, start time
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.connections: list[str] = list(dict.fromkeys(connections))
        self._pairs: set[tuple[str, str]] = set()
        self.info = Gauge(
            "crmsync_info", "Always 1; the version in a label", ["version"], registry=r
        )
        self.info.labels(__version__).set(1)
        self.lease_held = Gauge(
            "crmsync_lease_held",
            "1 when this worker holds the lease and runs the jobs",
            registry=r if lease else None,
        )
        self._sync_metrics(r)
        self._workflow_metrics(r)
        for name, seconds in sorted((stale_after or {}).items()):
            self.stale_after.labels(name).set(seconds)
        for name in self.connections:
            self.known_connection(name)
        if store is not None:
            r.register(StoreCollector(store, lambda: list(self.connections), self.pairs))
        add_retry_listener(self.on_retry_event)

    def _sync_metrics(self, r: CollectorRegistry) -> None:
        self.syncs = Counter(
            "crmsync_syncs", "Syncs run, by connection and status", ["connection", "status"],
            registry=r,
        )  # fmt: skip
        self.sync_duration = Histogram(
            "crmsync_sync_duration_seconds", "How long syncs took, failed ones too",
            ["connection"], buckets=DURATION_BUCKETS, registry=r,
        )  # fmt: skip
        self.records_fetched = Counter(
            "crmsync_records_fetched", "Records read from the CRM", ["connection"], registry=r
        )
        self.api_calls = Counter(
            "crmsync_api_calls", "CRM API calls spent, by what spent them (sync or writeback)",
            ["connection", "kind"], registry=r,
        )  # fmt: skip
        self.quota_remaining = Gauge(
            "crmsync_api_quota_remaining",
            "Daily API calls the CRM said were left, at the last sync (NaN: not reported yet)",
            ["connection"], registry=r,
        )  # fmt: skip
        self.quota_limit = Gauge(
            "crmsync_api_quota_limit",
            "The CRM's daily API call allowance, at the last sync (NaN: not reported yet)",
            ["connection"], registry=r,
        )  # fmt: skip
        self.rate_limited = Counter(
            "crmsync_crm_rate_limited", "Answers of the CRM saying too many requests (HTTP 429)",
            ["connection"], registry=r,
        )  # fmt: skip
        self.retries = Counter(
            "crmsync_crm_retries", "CRM calls tried again after a passing failure",
            ["connection"], registry=r,
        )  # fmt: skip
        self.stale_after = Gauge(
            "crmsync_sync_stale_after_seconds",
            "How old a scheduled connection's last successful sync may be before it is stale",
            ["connection"], registry=r,
        )  # fmt: skip

    def _workflow_metrics(self, r: CollectorRegistry) -> None:
        self.workflow_runs = Counter(
            "crmsync_workflow_runs", "Workflow runs, by workflow and status",
            ["workflow", "status"], registry=r,
        )  # fmt: skip
        self.workflow_duration = Histogram(
            "crmsync_workflow_duration_seconds", "How long workflow runs took, failed ones too",
            ["workflow"], buckets=DURATION_BUCKETS, registry=r,
        )  # fmt: skip
        self.workflow_firings = Gauge(
            "crmsync_workflow_firings",
            "Rule firings found by the workflow's last run on the connection (NaN: no run yet)",
            ["workflow", "connection"], registry=r,
        )  # fmt: skip
        self.tasks_created = Counter(
            "crmsync_tasks_created", "Follow-up tasks created in the CRM",
            ["workflow", "connection"], registry=r,
        )  # fmt: skip
        self.workflow_mode = Gauge(
            "crmsync_workflow_mode",
            "1 for each workflow's effective mode (live, shadow, dry-run) and where it comes from",
            ["workflow", "mode", "source"], registry=r,
        )  # fmt: skip
        self._modes: dict[str, tuple[str, str]] = {}
        self.reload_errors = Counter(
            "crmsync_workflow_reload_errors",
            "Changed workflow files refused because they are invalid", ["file"], registry=r,
        )  # fmt: skip
        self.invalid_files = Gauge(
            "crmsync_workflow_files_invalid",
            "Workflow files whose current content is invalid (the last good version runs)",
            registry=r,
        )

    # ---- label values known before any event --------------------------------------------------

    def known_connection(self, name: str) -> None:
        """Create the connection's series: counters at 0, quota gauges at NaN."""
        if name not in self.connections:
            self.connections.append(name)
        for status in SYNC_STATUSES:
            self.syncs.labels(name, status)
        for kind in API_CALL_KINDS:
            self.api_calls.labels(name, kind)
        for counter in (self.records_fetched, self.rate_limited, self.retries):
            counter.labels(name)
        self.sync_duration.labels(name)
        for gauge in (self.quota_remaining, self.quota_limit):
            if math.isnan(_value(gauge, name)):
                gauge.labels(name).set(math.nan)

    def known_workflow(self, name: str, file: str, connections: Iterable[str]) -> None:
        """Create a loaded workflow's series, for each connection in its scope."""
        for status in WORKFLOW_STATUSES:
            self.workflow_runs.labels(name, status)
        self.workflow_duration.labels(name)
        self.reload_errors.labels(file)
        for connection in connections:
            if (name, connection) in self._pairs:
                continue
            self._pairs.add((name, connection))
            self.tasks_created.labels(name, connection)
            self.workflow_firings.labels(name, connection).set(math.nan)

    def pairs(self) -> list[tuple[str, str]]:
        """The (workflow, connection) pairs known so far."""
        return sorted(self._pairs)

    # ---- events ---------------------------------------------------------------------------------

    def set_mode(self, workflow: str, mode: str, source: str) -> None:
        """`crmsync_workflow_mode`: the workflow's effective mode now (its old series goes)."""
        old = self._modes.get(workflow)
        if old is not None and old != (mode, source):
            self.workflow_mode.remove(workflow, *old)
        self._modes[workflow] = (mode, source)
        self.workflow_mode.labels(workflow, mode, source).set(1)

    def record_sync(self, summary: SyncSummary, seconds: float) -> None:
        """Count one finished sync (any status) by its summary."""
        conn = summary.connection
        self.syncs.labels(conn, summary.status).inc()
        self.sync_duration.labels(conn).observe(seconds)
        self.records_fetched.labels(conn).inc(summary.fetched)
        self.api_calls.labels(conn, "sync").inc(summary.api_calls)
        if summary.quota_limit is not None:
            self.quota_limit.labels(conn).set(summary.quota_limit)
            if summary.quota_used is not None:
                self.quota_remaining.labels(conn).set(summary.quota_limit - summary.quota_used)

    def record_sync_failed(self, connection: str, seconds: float) -> None:
        """Count a sync that raised (a CRM error, a bug)."""
        self.syncs.labels(connection, "failed").inc()
        self.sync_duration.labels(connection).observe(seconds)

    def record_workflow(
        self,
        workflow: str,
        status: str,
        seconds: float | None = None,
        *,
        firings: Mapping[str, int] | None = None,
        sends: Iterable[ExecSummary] = (),
    ) -> None:
        """Count one workflow run: its status, duration, firings per connection and writes."""
        self.workflow_runs.labels(workflow, status).inc()
        if seconds is not None:
            self.workflow_duration.labels(workflow).observe(seconds)
        for connection, n in (firings or {}).items():
            self._pairs.add((workflow, connection))
            self.workflow_firings.labels(workflow, connection).set(n)
        for sent in sends:
            self._pairs.add((workflow, sent.connection))
            self.tasks_created.labels(workflow, sent.connection).inc(sent.created)
            self.api_calls.labels(sent.connection, "writeback").inc(sent.api_calls)

    def on_retry_event(self, event: RetryEvent, connection: str) -> None:
        """A CRM call was rate limited or retried (crmsync.connectors.retry)."""
        if connection not in self.connections:
            return  # another worker's connection (tests run several workers in one process)
        counter = self.rate_limited if event == "rate_limited" else self.retries
        counter.labels(connection).inc()


def _value(gauge: Gauge, *labels: str) -> float:
    """The gauge's current value for these labels; NaN when the series does not exist yet."""
    for family in gauge.collect():
        for sample in family.samples:
            if tuple(sample.labels.values()) == labels:
                return float(sample.value)
    return math.nan
