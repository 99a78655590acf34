"""What the scheduler runs when a job fires: the service's side of each job around the job
itself (crmsync.service.jobs). Each wrapper skips the run when the worker is stopping or lost
its lease, binds the job's log context, counts it in the metrics, logs how it ended, and for
workflows records the run (what catch-up after a restart reads). Nothing a job raises escapes
into the scheduler.
"""

from __future__ import annotations

import time
import traceback
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import structlog

from crmsync.errors import CrmsyncError, crashes
from crmsync.service.catalog import WorkflowCatalog
from crmsync.service.jobs import JobContext, WorkflowInterrupted, run_sync, run_workflow
from crmsync.service.metrics import Metrics
from crmsync.service.report import LatestReport
from crmsync.store import StoreError
from crmsync.store.fences import FenceLost

if TYPE_CHECKING:
    from crmsync.app.apply import ApplyReport

log = structlog.get_logger("crmsync.service")


class JobRunner:
    """The jobs the registry schedules (crmsync.service.registry.ScheduledJobs).

    `workflows_changed` is called when a refresh of the workflow folder finds workflows that
    appeared, went or changed schedule (the worker registers the jobs again).
    """

    def __init__(
        self,
        ctx: JobContext,
        catalog: WorkflowCatalog,
        metrics: Metrics,
        workflows_changed: Callable[[], None],
        report: LatestReport | None = None,
    ) -> None:
        self.ctx = ctx
        self.report = report
        self.store = ctx.store
        self.catalog = catalog
        self.metrics = metrics
        self._workflows_changed = workflows_changed
        self.on_fenced: Callable[[str], None] | None = None  # a write refused by fencing, by kind

    def sync_job(self, connection: str) -> None:
        """Sync one connection, unless the worker should stop."""
        if self.ctx.should_stop():
            log.info("job.skipped", job="sync", connection=connection, reason="not_active")
            return
        started = time.monotonic()
        with structlog.contextvars.bound_contextvars(job="sync", connection=connection):
            try:
                summary = run_sync(self.ctx, connection)
            except crashes() as e:  # a library's panic too
                self.metrics.record_sync_failed(connection, time.monotonic() - started)
                self._failed(started, e, "sync")
                return
            duration = time.monotonic() - started
            self.metrics.record_sync(summary, duration)
            quota_left = (
                summary.quota_limit - summary.quota_used
                if summary.quota_limit is not None and summary.quota_used is not None
                else None
            )
            log.info(
                "job.finished",
                kind=summary.kind,
                status=summary.status,
                **summary.counts(),
                quota_left=quota_left,
                duration_seconds=round(duration, 3),
            )

    def workflow_job(self, workflow: str, connection: str | None = None) -> None:
        """Run one workflow's last good version (on one connection, or on its whole scope),
        unless the worker should stop."""
        if self.ctx.should_stop():
            log.info("job.skipped", job="workflow", workflow=workflow, reason="not_active")
            return
        started = time.monotonic()
        started_at = datetime.now(UTC)
        scope = {"connection": connection} if connection is not None else {}
        with structlog.contextvars.bound_contextvars(job="workflow", workflow=workflow, **scope):
            self.refresh_workflows()
            version = self.catalog.get(workflow)
            if version is None:
                log.info("job.skipped", reason="workflow_gone")
                return
            reports: list[ApplyReport] = []
            try:
                counts = run_workflow(
                    self.ctx,
                    workflow,
                    version.snapshot,
                    reports.append,
                    connections=[connection] if connection is not None else (),
                )
            except WorkflowInterrupted:
                self.metrics.record_workflow(workflow, "interrupted")
                log.info("job.interrupted", duration_seconds=round(time.monotonic() - started, 3))
                return
            except crashes() as e:  # a library's panic too
                self.metrics.record_workflow(workflow, "failed", time.monotonic() - started)
                self._failed(started, e, "workflow")
                self._record_run(f"workflow:{workflow}", started_at, "failed")
                return
            self._record_run(f"workflow:{workflow}", started_at, "ok")
            duration = time.monotonic() - started
            firings: Counter[str] = Counter()
            for report in reports:
                for w in report.workflows:
                    firings[w.connection] += w.firings
            sends = [s for report in reports for s in report.sends]
            self.metrics.record_workflow(workflow, "ok", duration, firings=firings, sends=sends)
            log.info(
                "job.finished",
                mode=version.mode,
                mode_source=version.mode_source,
                version=version.digest[:12],
                duration_seconds=round(duration, 3),
                **counts,
            )

    def report_job(self) -> None:
        """Rebuild the report /report serves, unless the worker should stop (a failed build
        keeps the previous page)."""
        if self.report is None or self.ctx.should_stop():
            log.info("job.skipped", job="report", reason="not_active")
            return
        started = time.monotonic()
        started_at = datetime.now(UTC)
        with structlog.contextvars.bound_contextvars(job="report"):
            try:
                page = self.report.rebuild()
            except crashes() as e:  # a library's panic too
                self._record_run("report", started_at, "failed")
                log.error(
                    "job.failed",
                    error=str(e),
                    error_type=type(e).__name__,
                    duration_seconds=round(time.monotonic() - started, 3),
                )
                return
            self._record_run("report", started_at, "ok")
            log.info(
                "job.finished",
                charts=page.charts,
                bytes=len(page.html),
                duration_seconds=round(time.monotonic() - started, 3),
            )

    def rescan_job(self) -> None:
        """Read the workflow folder again, unless the worker should stop."""
        if not self.ctx.should_stop():
            self.refresh_workflows()

    def refresh_workflows(self) -> None:
        """Read the workflow folder again; on a change of workflows or schedules, say so."""
        if self.catalog.refresh():
            self._workflows_changed()

    def _record_run(self, job_id: str, started_at: datetime, status: str) -> None:
        try:
            self.store.record_job_run(
                job_id, started_at=started_at, finished_at=datetime.now(UTC), status=status
            )
        except StoreError as e:
            log.warning("job.record_failed", job_id=job_id, error=str(e))

    def _failed(self, started: float, error: BaseException, kind: str) -> None:
        duration = time.monotonic() - started
        if isinstance(error, FenceLost):  # taken over: the newer holder carries on
            if self.on_fenced is not None:
                self.on_fenced(kind)
            log.warning("job.fenced", error=str(error), duration_seconds=round(duration, 3))
            return
        fields: dict[str, Any] = {}
        if not isinstance(error, CrmsyncError):  # a bug: say where, for the report
            frame = traceback.extract_tb(error.__traceback__)[-1:]
            if frame:
                fields["where"] = f"{frame[0].filename}:{frame[0].lineno}"
        log.error(
            "job.failed",
            error=str(error) if isinstance(error, CrmsyncError) else repr(error),
            error_type=type(error).__name__,
            duration_seconds=round(duration, 3),
            **fields,
        )
