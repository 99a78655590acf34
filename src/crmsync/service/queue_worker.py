"""`crmsync run` on a PostgreSQL store: one of any number of equal workers sharing one queue.

Each process runs a Procrastinate worker (crmsync.service.queue) for up to
`service.max_parallel_jobs` jobs at a time, and a second one, with slots of its own, for the tick
and the stalled-jobs task whenever Procrastinate hands them to it (so busy job slots never delay
them). A job takes its unit's fencing token before it starts, so a
worker that lost the job (declared dead, then woke up) writes nothing. SIGTERM or SIGINT stops
taking jobs, lets the ones running end after their current page, and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from procrastinate.worker import Worker

from crmsync.config import Config
from crmsync.service import tick as ticking
from crmsync.service.catalog import service_catalog
from crmsync.service.http import HttpServer, make_app
from crmsync.service.jobs import JobContext, quota_blocked
from crmsync.service.lease import default_holder
from crmsync.service.metrics import Metrics
from crmsync.service.queue import (
    CONTROL_QUEUE,
    JOBS_QUEUE,
    KIND_OF_TASK,
    TAKEN_FROM,
    build_app,
)
from crmsync.service.queue_metrics import KINDS, QueueMetrics
from crmsync.service.readiness import LeaseStatus, readiness
from crmsync.service.registry import sync_trigger, trigger_period
from crmsync.service.report import for_worker
from crmsync.service.staleness import stale_after
from crmsync.service.units import units
from crmsync.service.wrappers import JobRunner
from crmsync.store import Store, StoreError, fences

log = structlog.get_logger("crmsync.service")

WATCH_SECONDS = 5.0
# exit code of a worker that must be started again (EX_TEMPFAIL): taken for dead, queue failed
EXIT_RESTART = 75
# slots of the control worker: a tick and a stalled-jobs pass may run at once
CONTROL_SLOTS = 2


def _one_line(error: BaseException) -> str:
    text = str(error.__cause__ or error) or type(error).__name__
    return text.splitlines()[0][
        :300
    ]  # how often the queue's depth is read and the database checked


class _ToStructlog(logging.Handler):
    """Procrastinate's own warnings and errors, as structlog events among crmsync's."""

    def emit(self, record: logging.LogRecord) -> None:
        method = log.error if record.levelno >= logging.ERROR else log.warning
        method("queue.message", source=record.name, message=record.getMessage())


class QueueWorker:
    """One `crmsync run` process on the shared queue: jobs, tick, health and metrics."""

    def __init__(self, config_path: Path, config: Config, *, name: str | None = None) -> None:
        self.config_path = config_path
        self.config = config
        self.settings = config.service
        self.name = name or default_holder()
        self.store = Store.open(config.store.url)  # migrates: the queue's schema too
        now = datetime.now(UTC)
        self.metrics = Metrics(
            lambda: self.store,
            connections=[c.name for c in config.connections],
            stale_after=stale_after(config, now),
            lease=False,
        )
        self.queue_metrics = QueueMetrics(self.metrics.registry)
        self.catalog = service_catalog(config, self.metrics)
        self._stop = threading.Event()
        self.ctx = JobContext(config, config_path, self.store, self._stop.is_set)
        self.report = for_worker(self.store, config)
        self.jobs = JobRunner(self.ctx, self.catalog, self.metrics, lambda: None, self.report)
        self.jobs.on_fenced = self._fenced
        stalled = self.settings.stalled_after_seconds
        self.app = build_app(
            config.store.url, self, tick_seconds=self.settings.tick_seconds, stalled_after=stalled
        )
        self.exit_code = 0
        self._workers: list[Worker] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._started = time.monotonic()
        self._rescanned = self._started  # run() reads the workflow folder at start
        self._alive: float | None = None  # when the watch last reached the database
        self.sync_periods = {
            c.name: trigger_period(sync_trigger(config, c.sync.schedule), now)
            for c in config.connections
            if c.sync.schedule is not None
        }
        self.http: HttpServer | None = None
        if self.settings.http.enabled:
            app = make_app(self.metrics.registry, self.readiness, self.report.page)
            self.http = HttpServer(self.settings.http.host, self.settings.http.port, app)

    # ---- lifecycle ---------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT ask for a clean stop (main thread only)."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        log.info("service.stopping", signal=signal.Signals(signum).name)
        self.stop()

    def stop(self) -> None:
        """Stop taking jobs; the running ones end after their current page."""
        self._stop.set()
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(wake.set)

    def run(self) -> int:
        """Take jobs from the shared queue until asked to stop; returns 0, or EXIT_RESTART when
        it was taken for dead or the queue failed."""
        log.info(
            "service.started",
            config=str(self.config_path),
            store=self.store.safe_url,
            scheduler="queue",
            worker=self.name,
            concurrency=self.settings.max_parallel_jobs,
            connections=[c.name for c in self.config.connections],
            workflows=str(self.config.workflow_dir()),
        )
        quiet = logging.getLogger("procrastinate")
        quiet.setLevel(logging.WARNING)
        quiet.addHandler(_ToStructlog())
        quiet.propagate = False
        self.catalog.refresh()
        if self.http is not None:
            self.http.start()
        try:
            asyncio.run(self._main())
        finally:
            self._shutdown()
        return self.exit_code

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        if self._stop.is_set():
            return
        heartbeat = max(1.0, min(10.0, self.settings.stalled_after_seconds / 3))
        async with self.app.open_async():
            common: dict[str, Any] = {
                "install_signal_handlers": False,
                "delete_jobs": "successful",
                "update_heartbeat_interval": heartbeat,
                "stalled_worker_timeout": self.settings.stalled_after_seconds,
            }
            self._workers = [
                Worker(
                    self.app,
                    queues=[JOBS_QUEUE],
                    name=self.name,
                    concurrency=self.settings.max_parallel_jobs,
                    **common,
                ),
                Worker(
                    self.app,
                    queues=[CONTROL_QUEUE],
                    name=f"{self.name}/control",
                    concurrency=CONTROL_SLOTS,
                    **common,
                ),
            ]
            running = [asyncio.create_task(w.run()) for w in self._workers]  # type: ignore[no-untyped-call]
            watch = asyncio.create_task(self._watch())
            stop = asyncio.create_task(self._wake.wait())
            await asyncio.wait([*running, stop], return_when=asyncio.FIRST_COMPLETED)
            watch.cancel()
            stop.cancel()
            for task in running:
                if not task.done():
                    task.cancel()  # Procrastinate waits for the running jobs, then returns
            for task in running:
                try:
                    await task
                except asyncio.CancelledError:
                    pass
                except Exception as e:  # the queue itself failed (its database went away, ...)
                    log.error("queue.failed", error=_one_line(e), error_type=type(e).__name__)
                    self.exit_code = EXIT_RESTART

    def _taken_for_dead(self, why: str) -> None:
        """Other workers took this one for dead and gave its jobs away: it stops, and exits
        EXIT_RESTART, for its supervisor to start it again as a new worker."""
        if self.exit_code == EXIT_RESTART:
            return
        log.error(
            "worker.taken_for_dead",
            worker=self.name,
            why=why,
            detail="its jobs went to other workers; it stops and exits to be restarted afresh",
        )
        self.exit_code = EXIT_RESTART
        self.stop()

    async def _watch(self) -> None:
        """Keep the queue-depth gauges and the liveness check up to date."""
        while True:
            try:
                rows = await self.app.job_manager.list_tasks_async()
                depth = {(k, s): 0 for k in KINDS for s in ("todo", "doing")}
                for row in rows:
                    kind = KIND_OF_TASK.get(row["name"])
                    if kind is not None:
                        depth[(kind, "todo")] += row["todo"]
                        depth[(kind, "doing")] += row["doing"]
                for (kind, status), count in depth.items():
                    self.queue_metrics.queue_depth.labels(kind, status).set(count)
                if not await self._registered():
                    self._taken_for_dead("its registration in the queue was pruned")
                self._alive = time.monotonic()
            except Exception as e:  # the database went away: /readyz says so
                log.warning("queue.watch_failed", error=str(e))
            await asyncio.sleep(WATCH_SECONDS)

    async def _registered(self) -> bool:
        """Whether the queue still knows this process's workers (others prune one whose
        heartbeat is older than `service.stalled_after_seconds`: it was paused or cut off
        that long)."""
        ids = [w.worker_id for w in self._workers if w.worker_id is not None]
        if not ids:
            return True  # not registered yet, or already stopping
        rows = await self.app.connector.execute_query_all_async(
            "SELECT id FROM procrastinate_workers WHERE id = ANY(%(ids)s)", ids=ids
        )
        return len(rows) == len(ids)

    def _shutdown(self) -> None:
        self._stop.set()
        if self.http is not None:
            self.http.stop()
        self.store.close()
        shutil.rmtree(self.catalog.snapshots, ignore_errors=True)
        log.info("service.stopped", worker=self.name)

    # ---- what the tasks call -----------------------------------------------------------------

    def run_unit(self, kind: str, key: str, args: dict[str, str], due: str, job_id: int) -> None:
        """Run one unit's job under a fresh fencing token for its key."""
        now = datetime.now(UTC)
        late = (now - datetime.fromisoformat(due)).total_seconds()
        self.queue_metrics.job_latency.labels(kind).observe(max(0.0, late))
        with structlog.contextvars.bound_contextvars(key=key, job_id=job_id, worker=self.name):
            if self._stop.is_set():
                log.info("job.skipped", reason="stopping")
                return
            connection = args.get("connection")
            blocked = quota_blocked(self.ctx, connection) if connection is not None else None
            if blocked is not None:
                log.info(
                    "job.skipped",
                    reason="quota",
                    org=blocked.org,
                    until=blocked.blocked_until.isoformat() if blocked.blocked_until else None,
                )
                return
            try:
                fence = fences.take(self.store, key, f"{self.name}:{job_id}", now)
            except StoreError as e:
                log.error("job.failed", error=str(e), error_type=type(e).__name__)
                return
            if kind == "sync" and connection is not None and TAKEN_FROM in args:
                self._close_abandoned(connection, now)  # the dead worker's run of it
            running = self.queue_metrics.running.labels(kind)
            running.inc()
            log.info("job.started", kind=kind, fence=fence.token, late_seconds=round(late, 3))
            try:
                with fences.fenced(fence):
                    self._dispatch(kind, args)
            finally:
                running.dec()
                log.info("job.ended", kind=kind, fence=fence.token)

    def _close_abandoned(self, connection: str, now: datetime) -> None:
        """This job was taken from a worker that died: its run of the connection, still
        `running`, ended with it. (Only then: a `crmsync sync` by hand may be running now.)"""
        try:
            closed = self.store.close_abandoned_runs(
                now, "interrupted: the worker running it stopped before it ended", connection
            )
        except StoreError as e:
            log.warning("runs.close_abandoned_failed", error=str(e))
            return
        if closed:
            log.warning("runs.abandoned", connection=connection, count=closed)

    def _dispatch(self, kind: str, args: dict[str, str]) -> None:
        if kind == "sync":
            self.jobs.sync_job(args["connection"])
        elif kind == "workflow":
            self.jobs.workflow_job(args["workflow"], args["connection"])
        else:
            self.jobs.report_job()

    def tick(self, defer: ticking.Defer) -> None:
        """Queue what is due (the periodic tick, on whichever worker got it)."""
        if self._stop.is_set():
            return
        if time.monotonic() - self._rescanned >= self.settings.workflow_rescan_seconds:
            self.jobs.refresh_workflows()  # as often as the lease worker reads the folder
            self._rescanned = time.monotonic()
        todo = units(self.config, self.catalog.versions())
        try:
            result = ticking.tick(self.store, todo, defer, datetime.now(UTC))
        except StoreError as e:
            log.error("tick.failed", error=str(e))
            return
        kinds = {u.key: u.kind for u in todo}
        for outcome, keys in (
            ("queued", result.deferred),
            ("coalesced", result.coalesced),
            ("held", result.held),
        ):
            for key in keys:
                self.queue_metrics.queued.labels(kinds[key], outcome).inc()

    def taken_over(self, count: int) -> None:
        self.queue_metrics.takeovers.inc(count)

    def _fenced(self, kind: str) -> None:
        self.queue_metrics.fencing_refusals.labels(kind).inc()
        self._taken_for_dead("a write was refused: another worker holds this job's key now")

    # ---- readiness ---------------------------------------------------------------------------

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready while the database answers, the worker's loop reaches it, and each scheduled
        connection's last good sync is fresh (any worker's)."""
        status = LeaseStatus(self.name, True, self._alive, self._started)
        ready, body = readiness(self.store, self.settings, status, self.sync_periods)
        check = body["checks"].pop("lease")
        check.pop("role", None)
        check["ok"] = self._alive is not None and time.monotonic() - self._alive <= max(
            3 * WATCH_SECONDS, self.settings.lease_seconds
        )
        body["checks"]["queue"] = check
        body["role"] = "worker"
        body["failed"] = sorted(n for n, c in body["checks"].items() if not c["ok"])
        ready = not body["failed"]
        body["status"] = "ready" if ready else "not ready"
        return ready, body
