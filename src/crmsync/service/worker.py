"""The long-running worker behind `crmsync run` with `service.scheduler: lease` (the default
on SQLite): the lease loop. (On PostgreSQL the default is the shared queue of
crmsync.service.queue_worker.)

The main thread keeps the lease: while this worker holds it, the scheduler runs one sync job per
scheduled connection and one job per scheduled workflow (crmsync.service.registry, with the job
wrappers of crmsync.service.wrappers); while another worker holds it, this one stands by and
runs nothing. SIGTERM or SIGINT stops the scheduling, lets the job in flight store its current
page and end cleanly, gives the lease up (so a standby takes over at once) and exits 0. Health
and metrics are served from a thread (/readyz: crmsync.service.readiness).
"""

from __future__ import annotations

import shutil
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import structlog

from crmsync.config import Config, load_config
from crmsync.service.catalog import service_catalog
from crmsync.service.http import HttpServer, make_app
from crmsync.service.jobs import JobContext
from crmsync.service.lease import Lease, default_holder
from crmsync.service.metrics import Metrics
from crmsync.service.readiness import LeaseStatus, readiness
from crmsync.service.registry import JobRegistry
from crmsync.service.report import for_worker
from crmsync.service.staleness import stale_after
from crmsync.service.wrappers import JobRunner
from crmsync.store import Store, StoreError

log = structlog.get_logger("crmsync.service")


def run_service(config_path: Path, *, holder: str | None = None) -> int:
    """Load the config, run the worker until SIGTERM/SIGINT; the exit code (0 when stopped)."""
    config = load_config(config_path)
    if config.scheduler() == "queue":  # PostgreSQL: equal workers on a shared queue
        from crmsync.service.queue_worker import QueueWorker

        queue_worker = QueueWorker(config_path, config, name=holder)
        queue_worker.install_signal_handlers()
        return queue_worker.run()
    worker = Worker(config_path, config, holder=holder)
    worker.install_signal_handlers()
    return worker.run()


class Worker:
    """One `crmsync run` process: lease, scheduler, jobs, health and metrics."""

    def __init__(self, config_path: Path, config: Config, *, holder: str | None = None) -> None:
        self.config_path = config_path
        self.config = config
        self.settings = config.service
        self.holder = holder or default_holder()
        self.store = Store.open(config.store.url)
        self.metrics = Metrics(
            lambda: self.store,
            connections=[c.name for c in config.connections],
            stale_after=stale_after(config, datetime.now(UTC)),
        )
        self.lease = Lease(
            self.store,
            self.settings.lease_name,
            self.holder,
            timedelta(seconds=self.settings.lease_seconds),
        )
        self.catalog = service_catalog(config, self.metrics)
        self.ctx = JobContext(config, config_path, self.store, self._should_stop)
        self._stop = threading.Event()
        self._active = False
        self._active_since = 0.0
        self._valid_until = 0.0  # monotonic time until which our lease is certainly ours
        self._last_tick: float | None = None  # last time the lease loop reached the database
        self._standby_logged = False
        self._seen: dict[str, Any] = {}  # the lease row as a standby last saw it
        self.report = for_worker(self.store, config)  # the page /report serves
        self.jobs = JobRunner(
            self.ctx, self.catalog, self.metrics, self._workflows_changed, self.report
        )
        self.registry = JobRegistry(config, self.catalog, self.store, self.jobs, self._may_run)
        self.http: HttpServer | None = None
        if self.settings.http.enabled:
            app = make_app(self.metrics.registry, self.readiness, self.report.page)
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
        self.catalog.refresh()  # first, so /metrics names every workflow from the start
        if self.http is not None:
            self.http.start()
        self.registry.start()
        try:
            while not self._stop.is_set():
                self._tick()
                self._stop.wait(self._tick_interval())
        finally:
            self._shutdown()
        return 0

    def _shutdown(self) -> None:
        self._stop.set()
        self.registry.shutdown()  # in-flight jobs end after their current page
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
        shutil.rmtree(self.catalog.snapshots, ignore_errors=True)
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
        self.registry.register(initial=True)

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
        self.registry.clear()
        log.warning("lease.lost", holder=self.holder, reason=reason)

    def _lease_valid(self) -> bool:
        return self._active and time.monotonic() < self._valid_until

    def _should_stop(self) -> bool:
        return self._stop.is_set() or not self._lease_valid()

    def _may_run(self) -> bool:
        """Whether jobs may be scheduled: this worker holds the lease and is not stopping."""
        return self._active and not self._stop.is_set()

    def _workflows_changed(self) -> None:
        self.registry.register()

    # ---- readiness ---------------------------------------------------------------------------

    def lease_status(self) -> LeaseStatus:
        """The lease as the loop last saw it, for /readyz."""
        return LeaseStatus(
            self.holder, self._lease_valid(), self._last_tick, self._active_since, dict(self._seen)
        )

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Whether this worker is fit to serve: the checks, each with `ok` and its details."""
        return readiness(self.store, self.settings, self.lease_status(), self.registry.sync_periods)
