"""The scheduler's jobs: one sync job per scheduled connection, one job per scheduled workflow,
the rebuild of the served report (config.report.schedule) and the rescan of the workflow folder,
added, rescheduled or removed to match the config and the workflow files; with the triggers
they run on.

The registry owns the APScheduler 3 background scheduler. What each job does when it fires is
the `ScheduledJobs` it is given (crmsync.service.wrappers); whether jobs may be scheduled at all
(this worker holds the lease and is not stopping) is the worker's `may_run`.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

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

from crmsync.config import Config
from crmsync.schedule import cron_trigger
from crmsync.service.catalog import WorkflowCatalog
from crmsync.store import Store, StoreError
from crmsync.workflows.schema import Schedule

log = structlog.get_logger("crmsync.service")

RESCAN_JOB = "workflows:rescan"
REPORT_JOB = "report:rebuild"


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


def trigger_key(trigger: BaseTrigger) -> str:
    """What makes two triggers the same schedule (the fields and the time zone)."""
    return f"{trigger} {getattr(trigger, 'timezone', '')}"


class ScheduledJobs(Protocol):
    """What the scheduler calls: the job wrappers (crmsync.service.wrappers.JobRunner)."""

    def sync_job(self, connection: str) -> None: ...
    def workflow_job(self, workflow: str) -> None: ...
    def rescan_job(self) -> None: ...
    def report_job(self) -> None: ...


class JobRegistry:
    """The scheduler and the jobs on it, kept in step with the connections and workflows."""

    def __init__(
        self,
        config: Config,
        catalog: WorkflowCatalog,
        store: Store,
        jobs: ScheduledJobs,
        may_run: Callable[[], bool],
    ) -> None:
        self.config = config
        self.settings = config.service
        self.catalog = catalog
        self.store = store
        self.jobs = jobs
        self._may_run = may_run
        self._lock = threading.Lock()
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
            on_scheduler_event, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES | EVENT_JOB_ERROR
        )
        # APScheduler's own logging would print plain-text lines among the JSON events; the
        # listener above reports what matters through structlog instead.
        aps = logging.getLogger("apscheduler")
        aps.addHandler(logging.NullHandler())
        aps.propagate = False

    @property
    def sync_periods(self) -> dict[str, float]:
        """Each scheduled connection's longest gap between syncs, in seconds (for /readyz)."""
        return self._sync_periods

    def start(self) -> None:
        """Start the scheduler (with no jobs until `register`)."""
        self.scheduler.start()

    def clear(self) -> None:
        """Remove every job (the lease was lost, or the worker is stopping)."""
        with self._lock:
            self.scheduler.remove_all_jobs()

    def shutdown(self) -> None:
        """Remove every job and stop the scheduler; in-flight jobs end after their current page."""
        self.clear()
        self.scheduler.shutdown(wait=True)

    def register(self, *, initial: bool = False) -> None:
        """Add, reschedule or remove jobs to match the connections and workflows."""
        now = datetime.now(UTC)
        wanted: dict[str, tuple[BaseTrigger, Any, tuple[str, ...]]] = {}
        periods: dict[str, float] = {}
        for conn in self.config.connections:
            if conn.sync.schedule is None:
                continue
            trigger = sync_trigger(self.config, conn.sync.schedule)
            periods[conn.name] = trigger_period(trigger, now)
            wanted[f"sync:{conn.name}"] = (trigger, self.jobs.sync_job, (conn.name,))
        for name, version in sorted(self.catalog.versions().items()):
            if version.schedule is None:
                continue
            trigger = workflow_trigger(self.config, version.schedule)
            wanted[f"workflow:{name}"] = (trigger, self.jobs.workflow_job, (name,))
        report = cron_trigger(self.config.report.schedule, self.settings.timezone)
        wanted[REPORT_JOB] = (report, self.jobs.report_job, ())
        wanted[RESCAN_JOB] = (
            IntervalTrigger(seconds=self.settings.workflow_rescan_seconds, timezone=UTC),
            self.jobs.rescan_job,
            (),
        )
        with self._lock:
            if not self._may_run():
                return
            self._sync_periods = periods
            existing = {job.id: job for job in self.scheduler.get_jobs()}
            for job_id in existing.keys() - wanted.keys():
                self.scheduler.remove_job(job_id)
                log.info("job.removed", job_id=job_id)
            for job_id, (trigger, func, args) in wanted.items():
                if job_id in existing:
                    if trigger_key(existing[job_id].trigger) != trigger_key(trigger):
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


def on_scheduler_event(event: JobExecutionEvent) -> None:
    """Report a missed, skipped (still running) or crashed job through structlog."""
    if event.code == EVENT_JOB_MISSED:
        log.warning("job.missed", job_id=event.job_id, scheduled_at=str(event.scheduled_run_time))
    elif event.code == EVENT_JOB_MAX_INSTANCES:
        log.info("job.skipped", job_id=event.job_id, reason="previous_run_pending")
    else:
        log.error("job.crashed", job_id=event.job_id, error=repr(event.exception))
