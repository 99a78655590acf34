"""What the service's scheduled jobs do: sync one connection, run one workflow.

`run_workflow` is the single seam between the scheduler and the workflow engine: it runs the
apply step (plan, outbox, CRM writes; a shadow workflow only plans).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from crmsync.app.factory import build_connector
from crmsync.app.sync import SyncSummary, sync
from crmsync.config import Config
from crmsync.connectors.base import ApiMeter
from crmsync.connectors.retry import stop_waits
from crmsync.errors import StopRequested
from crmsync.store import Store, quota

if TYPE_CHECKING:
    from crmsync.app.apply import ApplyReport
    from crmsync.workflows.load import LoadedWorkflow

__all__ = [
    "JobContext",
    "ShutdownRequested",
    "WorkflowInterrupted",
    "last_full_pass",
    "last_success",
    "quota_blocked",
    "run_sync",
    "run_workflow",
]


class ShutdownRequested(StopRequested):
    """Raised after a committed page when the worker is stopping or lost its lease.

    A QuotaStop on purpose: the sync engine already ends a sync cleanly on one (run recorded
    as `stopped`, the cursor where the last page left it), and the next run resumes from there.
    """


class WorkflowInterrupted(Exception):
    """Raised when the worker stops before a workflow run starts; nothing was planned or sent
    yet. (A run under way finishes: each write is recorded before and after it is sent.)"""


@dataclass
class JobContext:
    """What every job needs: the loaded config, the worker's store, and whether to stop."""

    config: Config
    config_path: Path
    store: Store
    should_stop: Callable[[], bool]


# ---- sync --------------------------------------------------------------------------------------


def run_sync(ctx: JobContext, connection: str) -> SyncSummary:
    """Sync one connection incrementally (a reconcile when `reconcile_every` has passed).

    It stops after the page being stored when the worker is asked to stop. CRM errors are
    raised after the run is recorded as failed, as `crmsync sync` does.
    """
    conn = ctx.config.connection(connection)
    connector = build_connector(conn)

    def progress(_summary: SyncSummary) -> None:
        if ctx.should_stop():
            raise ShutdownRequested(
                f"{connection}: stopped by the service's shutdown; the next run resumes here"
            )

    org = conn.quota_org
    recheck = timedelta(seconds=ctx.config.service.quota_recheck_seconds)
    _seed_quota(ctx.store, org, connector.meter, recheck)
    try:
        reconcile = _reconcile_due(ctx.store, connection, conn.sync.reconcile_every)
        with stop_waits(ctx.should_stop):  # a retry's wait ends when the worker stops
            summary = sync(
                ctx.store,
                connector,
                reconcile=reconcile,
                progress=progress,
                snapshots=ctx.config.report,  # the day's pipeline snapshot after an `ok` sync
            )
    finally:
        connector.close()
    now = datetime.now(UTC)
    reading = connector.meter.quota
    if reading.used is not None and reading.limit is not None:
        quota.record(ctx.store, org, reading.used, reading.limit, now)
    if summary.status == "stopped" and not isinstance(summary.failure, StopRequested):
        quota.block(ctx.store, org, now + recheck, summary.error or "quota")
    return summary


def _seed_quota(store: Store, org: str, meter: ApiMeter, recheck: timedelta) -> None:
    """Start the connector from the org's newest reading, whichever worker took it, so the
    `quota_share` guard stops this job before its first call when the org is already there."""
    budget = quota.read(store, org)
    if budget is None or budget.observed_at is None:
        return
    if datetime.now(UTC) - budget.observed_at <= recheck:
        meter.read_quota(budget.used, budget.allowance)


def quota_blocked(ctx: JobContext, connection: str) -> quota.Budget | None:
    """The org's budget row when jobs on `connection` must wait (a recent stop for quota)."""
    budget = quota.read(ctx.store, ctx.config.connection(connection).quota_org)
    return budget if budget is not None and budget.blocked(datetime.now(UTC)) else None


def _reconcile_due(store: Store, connection: str, every: timedelta | None) -> bool:
    """Whether the last complete pass (full or reconcile) is older than `every`."""
    if every is None:
        return False
    last = last_full_pass(store, connection)
    return last is not None and datetime.now(UTC) - last >= every


def last_full_pass(store: Store, connection: str) -> datetime | None:
    """When the connection's last successful full sync or reconcile started, or None."""
    return store.last_full_pass(connection)


def last_success(store: Store, connection: str) -> datetime | None:
    """When the connection's last successful sync finished, or None."""
    return store.last_successful_sync(connection)


# ---- workflows ---------------------------------------------------------------------------------

COUNT_KEYS = (
    "connections",
    "evaluated",
    "firings",
    "opened",
    "resolved",
    "planned",
    "created",
    "flagged",
    "completed",
    "parked",
    "api_calls",
)


# checked and compiled workflows by version of their snapshot file and the mappings they were
# checked against: a worker runs each workflow per connection, and compiling it every time
# was a good part of a small run's time
_LOADED: dict[tuple[object, ...], tuple[LoadedWorkflow, list[object]]] = {}
_LOADED_KEPT = 256


def run_workflow(
    ctx: JobContext,
    workflow: str,
    path: Path,
    on_report: Callable[[ApplyReport], None] | None = None,
    connections: Sequence[str] = (),
) -> dict[str, int]:
    """Run one workflow, from `path` (the last good version of its file), over `connections`
    (by default every connection in its scope): plan, record its intended writes and send them
    (crmsync.app.apply; a shadow workflow plans only). Returns counts for the job's log event;
    `on_report` gets the whole report (per connection, for the metrics)."""
    from crmsync.app.apply import apply
    from crmsync.app.plan import mappings
    from crmsync.workflows.load import load_workflow

    if ctx.should_stop():
        raise WorkflowInterrupted(workflow)
    maps = mappings(ctx.config)
    st = path.stat()
    # the mappings' ids in the key stay theirs: the entry keeps the objects alive
    key = (str(path), st.st_mtime_ns, st.st_size, tuple((n, id(m)) for n, m in maps.items()))
    kept = _LOADED.get(key)
    if kept is None:
        kept = (load_workflow(path, connections=maps), list(maps.values()))
        if len(_LOADED) >= _LOADED_KEPT:
            _LOADED.clear()
        _LOADED[key] = kept
    loaded = kept[0]
    report = apply(
        ctx.config, ctx.store, workflows=[workflow], connections=connections, loaded=[loaded]
    )
    if on_report is not None:
        on_report(report)
    counts: Counter[str] = Counter(dict.fromkeys(COUNT_KEYS, 0))
    for w in report.workflows:
        counts["connections"] += 1
        counts["evaluated"] += w.evaluated
        counts["firings"] += w.firings
        counts["opened"] += w.opened
        counts["resolved"] += w.resolved
        counts["planned"] += sum(w.planned.values())
    for s in report.sends:
        counts["created"] += s.created
        counts["flagged"] += s.flagged
        counts["completed"] += s.completed
        counts["parked"] += s.parked
        counts["api_calls"] += s.api_calls
    return dict(counts)
