"""The long-running worker behind `crmsync run`.

The main thread keeps the lease: while this worker holds it, an APScheduler 3 background
scheduler runs one sync job per scheduled connection and one job per scheduled workflow; while
another worker holds it, this one stands by and runs nothing. SIGTERM or SIGINT stops the
scheduling, lets the job in flight store its current page and end cleanly, gives the lease up
(so a standby takes over at once) and exits 0. Health and metrics are served from a thread.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import signal
import tempfile
import threading
import time
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import structlog
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from crmsync.app.plan import mappings
from crmsync.config import Config, load_config
from crmsync.errors import CrmsyncError
from crmsync.schedule import cron_trigger
from crmsync.service.catalog import WorkflowCatalog
from crmsync.service.http import HttpServer, make_app
from crmsync.service.jobs import (
    JobContext,
    WorkflowInterrupted,
    last_success,
    run_sync,
    run_workflow,
)
from crmsync.service.lease import Lease, default_holder
from crmsync.service.metrics import Metrics
from crmsync.store import Store, StoreError
from crmsync.workflows.schema import Schedule

log = structlog.get_logger("crmsync.service")

RESCAN_JOB = "workflows:rescan"


def run_service(config_path: Path, *, holder: str | None = None) -> int:
    """Load the config, run the worker until SIGTERM/SIGINT; the exit code (0 when stopped)."""
    config = load_config(config_path)
    worker = Worker(config_path, config, holder=holder)
    worker.install_signal_handlers()
    return worker.run()


def sync_trigger(config: Config, cron: str) -> BaseTrigger:
    """A connection's trigger: its cron in the service's time zone, or the testing interval."""
    seconds = config.service.sync_interval_seconds
    if seconds is not None:
        return IntervalTrigger(seconds=seconds, timezone=UTC)
    return cron_trigger(cron, config.service.timezone)


def workflow_trigger(config: Config, schedule: Schedule) -> BaseTrigger:
    """A workflow's trigger: its own cron and time zone, or the testing interval."""
    seconds = config.service.workflow_interval_seconds
    if seconds is not None:
        return IntervalTrigger(seconds=seconds, timezone=UTC)
    return cron_trigger(schedule.cron, schedule.timezone)


def missed_fire_time(
    trigger: BaseTrigger, last_started: datetime | None, now: datetime
) -> datetime | None:
    """The first time `trigger` fired after the job's last recorded run began, if that is
    before `now`: a run missed while no worker was up. None when nothing was missed, and when
    the job never ran (a new workflow waits for its first scheduled time)."""
    if last_started is None:
        return None
    fire: datetime | None = trigger.get_next_fire_time(
        None, last_started + timedelta(microseconds=1)
    )
    return fire if fire is not None and fire <= now else None


def trigger_period(trigger: BaseTrigger, now: datetime, samples: int = 8) -> float:
    """The longest gap, in seconds, between the trigger's next few fire times."""
    if isinstance(trigger, IntervalTrigger):
        return float(trigger.interval.total_seconds())
    times: list[datetime] = []
    previous: datetime | None = None
    at = now
    for _ in range(samples + 1):
        nxt = trigger.get_next_fire_time(previous, at)
        if nxt is None:
            break
        times.append(nxt)
        previous, at = nxt, nxt + timedelta(microseconds=1)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    return max(gaps, default=86400.0)


def _trigger_key(trigger: BaseTrigger) -> str:
    """What makes two triggers the same schedule (the fields and the time zone)."""
    return f"{trigger} {getattr(trigger, 'timezone', '')}"


class Worker:
    """One `crmsync run` process: lease, scheduler, jobs, health and metrics."""

    def __init__(self, config_path: Path, config: Config, *, holder: str | None = None) -> None:
        self.config_path = config_path
        self.config = config
        self.settings = config.service
        self.holder = holder or default_holder()
        self.store = Store.open(config.store.url)
        self.metrics = Metrics(lambda: self.store)
        self.lease = Lease(
            self.store,
            self.settings.lease_name,
            self.holder,
            timedelta(seconds=self.settings.lease_seconds),
        )
        self._snapshots = Path(tempfile.mkdtemp(prefix="crmsync-workflows-"))
        self.catalog = WorkflowCatalog(
            config.workflow_dir(), mappings(config), self._snapshots, self.metrics
        )
        self.ctx = JobContext(config, config_path, self.store, self._should_stop)
        self._stop = threading.Event()
        self._active = False
        self._active_since = 0.0
        self._valid_until = 0.0  # monotonic time until which our lease is certainly ours
        self._last_tick: float | None = None  # last time the lease loop reached the database
        self._standby_logged = False
        self._seen: dict[str, Any] = {}  # the lease row as a standby last saw it
        self._jobs_lock = threading.Lock()
        self._sync_periods: dict[str, float] = {}
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(self.settings.max_parallel_jobs)},
            job_defaults={
                "max_instances": 1,
                "coalesce": True,
                "misfire_grace_time": self.settings.misfire_grace_seconds,
            },
            timezone=UTC,
        )
        self.scheduler.add_listener(
            self._on_scheduler_event, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES | EVENT_JOB_ERROR
        )
        # APScheduler's own logging would print plain-text lines among the JSON events; the
        # listener above reports what matters through structlog instead.
        aps = logging.getLogger("apscheduler")
        aps.addHandler(logging.NullHandler())
        aps.propagate = False
        self.http: HttpServer | None = None
        if self.settings.http.enabled:
            app = make_app(self.metrics.registry, self.readiness)
            self.http = HttpServer(self.settings.http.host, self.settings.http.port, app)

    # ---- lifecycle ---------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT ask for a clean stop (main thread only)."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("service.stopping", signal=signal.Signals(signum).name)
        self._stop.set()

    def stop(self) -> None:
        """Ask the worker to stop (what the signals do)."""
        self._stop.set()

    def run(self) -> int:
        """Hold or wait for the lease and run the jobs until asked to stop; returns 0."""
        log.info(
            "service.started",
            config=str(self.config_path),
            store=self.store.safe_url,
            holder=self.holder,
            lease_seconds=self.settings.lease_seconds,
            connections=[c.name for c in self.config.connections],
            workflows=str(self.config.workflow_dir()),
        )
        if self.http is not None:
            self.http.start()
        self.catalog.refresh()
        self.scheduler.start()
        try:
            while not self._stop.is_set():
                self._tick()
                self._stop.wait(self._tick_interval())
        finally:
            self._shutdown()
        return 0

    def _shutdown(self) -> None:
        self._stop.set()
        with self._jobs_lock:
            self.scheduler.remove_all_jobs()
        self.scheduler.shutdown(wait=True)  # in-flight jobs end after their current page
        if self._active:
            try:
                self.lease.release()
                log.info("lease.released", holder=self.holder)
            except StoreError as e:
                log.warning("lease.release_failed", error=str(e))
        self._active = False
        self.metrics.lease_held.set(0)
        if self.http is not None:
            self.http.stop()
        self.store.close()
        shutil.rmtree(self._snapshots, ignore_errors=True)
        log.info("service.stopped")

    def _tick_interval(self) -> float:
        lease = self.settings.lease_seconds
        return max(0.2, lease / 3 if self._active else lease / 5)

    # ---- lease -------------------------------------------------------------------------------

    def _tick(self) -> None:
        """Take or renew the lease, and start or stop the jobs when that changes."""
        began = time.monotonic()
        try:
            held = self.lease.acquire()
        except StoreError as e:
            log.error("lease.error", error=str(e))
            if self._active and time.monotonic() >= self._valid_until:
                self._deactivate("lease_unconfirmed")
            return
        self._last_tick = time.monotonic()
        if held:
            self._valid_until = began + self.settings.lease_seconds
            if not self._active:
                self._activate()
            return
        if self._active:
            self._deactivate("lease_taken")
        self._seen = self._lease_state()  # who is active, for /readyz and the takeover event
        if not self._standby_logged:
            log.info(
                "lease.standby",
                holder=self.holder,
                active_holder=self._seen.get("holder"),
                expires_at=self._seen.get("expires_at"),
            )
            self._standby_logged = True

    def _lease_state(self) -> dict[str, Any]:
        try:
            state = self.lease.current()
        except StoreError:
            return {}
        if state is None:
            return {}
        return {"holder": state.holder, "expires_at": state.expires_at.isoformat()}

    def _activate(self) -> None:
        self._active = True
        self._standby_logged = False
        self._active_since = time.monotonic()
        self.metrics.lease_held.set(1)
        log.info(
            "lease.acquired",
            holder=self.holder,
            previous_holder=self._seen.get("holder"),
            previous_expires_at=self._seen.get("expires_at"),
        )
        self._close_abandoned_runs()
        self._register_jobs(initial=True)

    def _close_abandoned_runs(self) -> None:
        """Runs still `running` when this worker takes the jobs over were cut off (a killed
        worker): record them as failed rather than running for ever."""
        try:
            closed = self.store.close_abandoned_runs(
                datetime.now(UTC), "interrupted: the worker running it stopped before it ended"
            )
        except StoreError as e:
            log.warning("runs.close_abandoned_failed", error=str(e))
            return
        if closed:
            log.warning("runs.abandoned", count=closed)

    def _deactivate(self, reason: str) -> None:
        self._active = False
        self.metrics.lease_held.set(0)
        with self._jobs_lock:
            self.scheduler.remove_all_jobs()
        log.warning("lease.lost", holder=self.holder, reason=reason)

    def _lease_valid(self) -> bool:
        return self._active and time.monotonic() < self._valid_until

    def _should_stop(self) -> bool:
        return self._stop.is_set() or not self._lease_valid()

    # ---- jobs --------------------------------------------------------------------------------

    def _register_jobs(self, *, initial: bool = False) -> None:
        """Add, reschedule or remove jobs to match the connections and workflows."""
        now = datetime.now(UTC)
        wanted: dict[str, tuple[BaseTrigger, Any, tuple[str, ...]]] = {}
        periods: dict[str, float] = {}
        for conn in self.config.connections:
            if conn.sync.schedule is None:
                continue
            trigger = sync_trigger(self.config, conn.sync.schedule)
            periods[conn.name] = trigger_period(trigger, now)
            wanted[f"sync:{conn.name}"] = (trigger, self._sync_job, (conn.name,))
        for name, version in sorted(self.catalog.versions().items()):
            if version.schedule is None:
                continue
            trigger = workflow_trigger(self.config, version.schedule)
            wanted[f"workflow:{name}"] = (trigger, self._workflow_job, (name,))
        wanted[RESCAN_JOB] = (
            IntervalTrigger(seconds=self.settings.workflow_rescan_seconds, timezone=UTC),
            self._rescan_job,
            (),
        )
        with self._jobs_lock:
            if not self._active or self._stop.is_set():
                return
            self._sync_periods = periods
            existing = {job.id: job for job in self.scheduler.get_jobs()}
            for job_id in existing.keys() - wanted.keys():
                self.scheduler.remove_job(job_id)
                log.info("job.removed", job_id=job_id)
            for job_id, (trigger, func, args) in wanted.items():
                if job_id in existing:
                    if _trigger_key(existing[job_id].trigger) != _trigger_key(trigger):
                        self.scheduler.reschedule_job(job_id, trigger=trigger)
                        log.info("job.rescheduled", job_id=job_id, trigger=str(trigger))
                    continue
                options: dict[str, Any] = {}
                if initial and job_id.startswith("sync:"):
                    options["next_run_time"] = now  # sync once at start: data fresh at once
                if initial and job_id.startswith("workflow:") and self._missed(job_id, trigger):
                    options["next_run_time"] = now  # its time passed while no worker was up
                self.scheduler.add_job(func, trigger, args=args, id=job_id, name=job_id, **options)
                log.info("job.scheduled", job_id=job_id, trigger=str(trigger))

    def _missed(self, job_id: str, trigger: BaseTrigger) -> bool:
        """Whether the job's scheduled time passed since its last run (one catch-up run)."""
        try:
            last = self.store.last_job_run(job_id)
        except StoreError as e:
            log.warning("job.last_run_unknown", job_id=job_id, error=str(e))
            return False
        missed = missed_fire_time(trigger, last, datetime.now(UTC))
        if missed is None:
            return False
        log.info(
            "job.catch_up",
            job_id=job_id,
            missed_at=missed.isoformat(),
            last_run_at=last.isoformat() if last else None,
        )
        return True

    def _record_run(self, job_id: str, started_at: datetime, status: str) -> None:
        try:
            self.store.record_job_run(
                job_id, started_at=started_at, finished_at=datetime.now(UTC), status=status
            )
        except StoreError as e:
            log.warning("job.record_failed", job_id=job_id, error=str(e))

    def _sync_job(self, connection: str) -> None:
        if self._should_stop():
            log.info("job.skipped", job="sync", connection=connection, reason="not_active")
            return
        started = time.monotonic()
        with structlog.contextvars.bound_contextvars(job="sync", connection=connection):
            try:
                summary = run_sync(self.ctx, connection)
            except CrmsyncError as e:
                self._job_failed("sync", connection, started, e)
                self.metrics.syncs.labels(connection, "failed").inc()
                return
            except Exception as e:
                self._job_failed("sync", connection, started, e)
                return
            duration = time.monotonic() - started
            self.metrics.record_sync(summary, time.time())
            self.metrics.job_duration.labels("sync", connection).observe(duration)
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

    def _workflow_job(self, workflow: str) -> None:
        if self._should_stop():
            log.info("job.skipped", job="workflow", workflow=workflow, reason="not_active")
            return
        started = time.monotonic()
        started_at = datetime.now(UTC)
        with structlog.contextvars.bound_contextvars(job="workflow", workflow=workflow):
            self._refresh_workflows()
            version = self.catalog.get(workflow)
            if version is None:
                log.info("job.skipped", reason="workflow_gone")
                return
            try:
                counts = run_workflow(self.ctx, workflow, version.snapshot)
            except WorkflowInterrupted:
                self.metrics.workflow_runs.labels(workflow, "interrupted").inc()
                log.info("job.interrupted", duration_seconds=round(time.monotonic() - started, 3))
                return
            except Exception as e:
                self._job_failed("workflow", workflow, started, e)
                self.metrics.workflow_runs.labels(workflow, "failed").inc()
                self._record_run(f"workflow:{workflow}", started_at, "failed")
                return
            self._record_run(f"workflow:{workflow}", started_at, "ok")
            duration = time.monotonic() - started
            self.metrics.workflow_runs.labels(workflow, "ok").inc()
            self.metrics.workflow_firings.labels(workflow).set(counts.get("firings", 0))
            self.metrics.job_duration.labels("workflow", workflow).observe(duration)
            log.info(
                "job.finished",
                mode=version.mode,
                version=version.digest[:12],
                duration_seconds=round(duration, 3),
                **counts,
            )

    def _rescan_job(self) -> None:
        if not self._should_stop():
            self._refresh_workflows()

    def _refresh_workflows(self) -> None:
        if self.catalog.refresh():
            self._register_jobs()

    def _job_failed(self, job: str, name: str, started: float, error: BaseException) -> None:
        duration = time.monotonic() - started
        self.metrics.job_errors.labels(job, name).inc()
        self.metrics.job_duration.labels(job, name).observe(duration)
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

    def _on_scheduler_event(self, event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            log.warning(
                "job.missed", job_id=event.job_id, scheduled_at=str(event.scheduled_run_time)
            )
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            log.info("job.skipped", job_id=event.job_id, reason="still_running")
        else:
            log.error("job.crashed", job_id=event.job_id, error=repr(event.exception))

    # ---- readiness ---------------------------------------------------------------------------

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Whether this worker is fit to serve: the checks, each with `ok` and its details."""
        checks: dict[str, dict[str, Any]] = {}
        try:
            self.store.ping()
            checks["database"] = {"ok": True}
        except StoreError as e:
            checks["database"] = {"ok": False, "error": str(e)}
        lease_seconds = self.settings.lease_seconds
        fresh = self._last_tick is not None and time.monotonic() - self._last_tick <= lease_seconds
        role = "active" if self._lease_valid() else "standby"
        checks["lease"] = {"ok": fresh, "role": role, "holder": self.holder}
        if role == "standby":
            checks["lease"]["active_holder"] = self._seen.get("holder")
            checks["lease"]["active_until"] = self._seen.get("expires_at")
        if role == "active" and checks["database"]["ok"]:
            now = datetime.now(UTC)
            factor = self.settings.stale_after_intervals
            for connection, period in sorted(self._sync_periods.items()):
                window = factor * period
                last = last_success(self.store, connection)
                age = (now - last).total_seconds() if last is not None else None
                starting = time.monotonic() - self._active_since <= window
                ok = (age is not None and age <= window) or starting
                checks[f"sync:{connection}"] = {
                    "ok": ok,
                    "last_success": last.isoformat() if last else None,
                    "age_seconds": round(age, 1) if age is not None else None,
                    "max_age_seconds": window,
                }
        failed = sorted(name for name, check in checks.items() if not check["ok"])
        ready = not failed
        return ready, {
            "status": "ready" if ready else "not ready",
            "role": role,
            "failed": failed,
            "checks": checks,
        }
