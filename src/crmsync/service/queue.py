"""The shared job queue of a scaled-out service: Procrastinate's App over the store's PostgreSQL
database, with crmsync's tasks on it.

- `crmsync.sync`, `crmsync.workflow`, `crmsync.report`: one unit of work each
  (crmsync.service.units), deferred by the tick with the unit's key as both `lock` (one job of a
  key runs at a time) and `queueing_lock` (one waits at a time: no pile-up).
- `crmsync.tick`: periodic, one per `service.tick_seconds` whichever worker defers it
  (Procrastinate's unique periodic defers): queues what is due (crmsync.service.tick).
  It and the stalled-jobs task live on a queue of their own (CONTROL_QUEUE) that each process
  serves apart from its job slots: busy slots must not hold up the tick that feeds them, nor the
  takeover of a dead worker's jobs.
- `crmsync.stalled`: periodic (a third of the timeout, at most a minute): jobs of workers whose
  heartbeat is older than `service.stalled_after_seconds` go back to the queue. Procrastinate
  leaves that recovery to its users; fencing (crmsync.store.fences) keeps a worker that was
  only slow from writing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

import procrastinate
import sqlalchemy as sa
import structlog
from procrastinate import JobContext, exceptions
from procrastinate.jobs import Job, Status
from procrastinate.manager import JobManager

from crmsync.service.units import Unit

__all__ = [
    "CONTROL_QUEUE",
    "JOBS_QUEUE",
    "TAKEN_FROM",
    "TASK_REPORT",
    "TASK_STALLED",
    "TASK_SYNC",
    "TASK_TICK",
    "TASK_WORKFLOW",
    "QueueJobs",
    "build_app",
    "conninfo",
    "every",
]

log = structlog.get_logger("crmsync.service")

TASK_SYNC = "crmsync.sync"
TASK_WORKFLOW = "crmsync.workflow"
TASK_REPORT = "crmsync.report"
TASK_TICK = "crmsync.tick"
TASK_STALLED = "crmsync.stalled"
# the units of work (Procrastinate's default queue, so jobs queued before an upgrade still run)
JOBS_QUEUE = "default"
# the tick and the stalled-jobs task: short, and served by slots of their own in every worker
CONTROL_QUEUE = "crmsync.control"
CONTROL_TASKS = frozenset({TASK_TICK, TASK_STALLED})
# the job argument that marks a job queued again after its worker was taken for dead
TAKEN_FROM = "taken_from"
PRUNED = "unknown (already pruned)"  # a taken-over job's dead worker, when its record is gone
TASK_OF_KIND = {"sync": TASK_SYNC, "workflow": TASK_WORKFLOW, "report": TASK_REPORT}
KIND_OF_TASK = {task: kind for kind, task in TASK_OF_KIND.items()}


class QueueJobs(Protocol):
    """What the tasks call: the worker process (crmsync.service.queue_worker)."""

    def run_unit(
        self, kind: str, key: str, args: dict[str, str], due: str, job_id: int
    ) -> None: ...

    def tick(self, defer: Callable[[list[tuple[Unit, datetime]]], set[str]]) -> None: ...

    def taken_over(self, count: int) -> None: ...


class OwnJobsOnly(JobManager):
    """Procrastinate's job manager, except that finishing a job this worker no longer holds is
    logged, not raised: a worker taken for dead that wakes up finds its jobs failed and queued
    again under new ids, and its attempt to finish them would otherwise end the process."""

    async def finish_job(self, job: Job, status: Status, delete_job: bool) -> None:
        try:
            await super().finish_job(job=job, status=status, delete_job=delete_job)
        except exceptions.ConnectorException as e:
            reason = str(e.__cause__ or e).splitlines()[0]
            log.warning("job.not_finished", job_id=job.id, task=job.task_name, reason=reason)


def conninfo(url: str) -> str:
    """The libpq connection string of a store URL (`postgresql+psycopg://...?options=...`)."""
    parsed = sa.make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def every(seconds: int) -> str:
    """A Procrastinate cron for `seconds` (a 6th field for seconds under a minute)."""
    if seconds < 60:
        return f"* * * * * */{seconds}"
    return f"*/{max(1, seconds // 60)} * * * *"


def build_app(url: str, jobs: QueueJobs, *, tick_seconds: int, stalled_after: int) -> Any:
    """Procrastinate's App on the store's database, with crmsync's tasks registered."""
    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=conninfo(url)),
        periodic_defaults={"max_delay": 600},
    )
    app.job_manager = OwnJobsOnly(app.connector)

    def unit_task(kind: str) -> Callable[..., None]:
        def run(context: JobContext, key: str, due: str, **args: str) -> None:
            assert context.job.id is not None
            jobs.run_unit(kind, key, args, due, context.job.id)

        return run

    for kind, name in TASK_OF_KIND.items():
        app.task(name=name, queue=JOBS_QUEUE, pass_context=True, retry=False)(unit_task(kind))

    def defer_one(unit: Unit, due: datetime) -> bool:
        task = app.tasks[TASK_OF_KIND[unit.kind]]
        try:
            task.configure(lock=unit.key, queueing_lock=unit.key).defer(
                key=unit.key, due=due.isoformat(), **unit.args
            )
        except exceptions.AlreadyEnqueued:
            return False
        return True

    def defer(batch: list[tuple[Unit, datetime]]) -> set[str]:
        """Queue the units in one statement, but those whose key already waits; should one
        be queued meanwhile by someone else, one at a time."""
        waiting = {
            row["queueing_lock"]
            for row in app.connector.execute_query_all(
                "SELECT queueing_lock FROM procrastinate_jobs "
                "WHERE status = 'todo' AND queueing_lock = ANY(%(keys)s)",
                keys=[u.key for u, _ in batch],
            )
        }
        fresh = [(u, due) for u, due in batch if u.key not in waiting]
        jobs = [
            app.tasks[TASK_OF_KIND[u.kind]]
            .configure(lock=u.key, queueing_lock=u.key)
            .make_new_job(key=u.key, due=due.isoformat(), **u.args)
            for u, due in fresh
        ]
        try:
            if jobs:
                app.job_manager.batch_defer_jobs(jobs)
        except exceptions.AlreadyEnqueued:  # a race: the batch was refused whole
            return {u.key for u, due in fresh if defer_one(u, due)}
        return {u.key for u, _ in fresh}

    @app.periodic(cron=every(tick_seconds), periodic_id="tick")
    @app.task(name=TASK_TICK, queue=CONTROL_QUEUE, queueing_lock=TASK_TICK, retry=False)
    def tick(timestamp: int) -> None:
        jobs.tick(defer)

    # a third of the timeout, so a dead worker's job waits at most about 4/3 of it
    @app.periodic(cron=every(max(5, min(60, stalled_after // 3))), periodic_id="stalled")
    @app.task(name=TASK_STALLED, queue=CONTROL_QUEUE, queueing_lock=TASK_STALLED, retry=False)
    async def stalled(timestamp: int) -> None:
        manager = app.job_manager
        found = list(await manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after))
        back = 0
        for job in found:
            assert job.id is not None
            # Failed under its old id and queued afresh under a new one (not retried in place):
            # should the dead worker wake up and finish the old id, it cannot touch the new job.
            await manager.finish_job_by_id_async(job.id, Status.FAILED, delete_job=False)
            if job.task_name in CONTROL_TASKS:
                continue  # periodic: the next one is deferred on time anyway
            # a worker pruned as stalled (by any worker, maybe before its job was found here)
            # leaves its jobs without a worker id
            dead = job.worker_id if job.worker_id is not None else PRUNED
            try:
                await (
                    app.tasks[job.task_name]
                    .configure(lock=job.lock, queueing_lock=job.queueing_lock)
                    .defer_async(**{**job.task_kwargs, TAKEN_FROM: str(dead)})
                )
                back += 1
                outcome = "requeued"
            except exceptions.AlreadyEnqueued:
                outcome = "already_queued"  # that job will do the work
            log.warning(
                "job.taken_over",
                job_id=job.id,
                task=job.task_name,
                key=job.lock,
                dead_worker=dead,
                outcome=outcome,
            )
        pruned = await manager.prune_stalled_workers(stalled_after)
        if found or pruned:
            jobs.taken_over(back)
            log.info("workers.pruned", count=len(pruned), jobs=len(found))

    return app
