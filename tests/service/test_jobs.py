"""The jobs in process: a sync stops cleanly after its current page, a workflow run counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from crmsync.config import load_config
from crmsync.sandbox import Sandbox
from crmsync.schedule import cron_trigger
from crmsync.service.jobs import JobContext, last_full_pass, last_success, run_sync, run_workflow
from crmsync.service.registry import missed_fire_time, trigger_period
from crmsync.store import Store
from tests.service.support import ROOT, write_config


def _ctx(tmp_path: Path, sb: Sandbox, store: Store, stop: list[bool]) -> JobContext:
    path = write_config(tmp_path, sb, store.url, hubspot_page_size=50)
    return JobContext(load_config(path), path, store, lambda: stop[0])


def test_a_stopping_sync_ends_after_its_current_page(
    tmp_path: Path, sandbox: Sandbox, store: Store
) -> None:
    """Asked to stop, a sync stores the page in hand, records the run as stopped, and the next
    run resumes from its cursor to the end."""
    stop = [False]
    ctx = _ctx(tmp_path, sandbox, store, stop)
    stop[0] = True  # asked before the first page: that page is still stored
    summary = run_sync(ctx, "hs")
    assert summary.status == "stopped" and "shutdown" in (summary.error or "")
    assert 0 < store.count("hs") < 250  # one page of 50 (plus the overlap)
    (run,) = store.runs("hs")
    assert run["status"] == "stopped" and run["finished_at"] is not None
    assert store.get_cursor("hs", "deals") is not None
    stop[0] = False
    summary = run_sync(ctx, "hs")
    assert summary.status == "ok"
    assert store.count("hs") == 250
    assert last_success(store, "hs") is not None


def test_reconcile_runs_when_it_is_due(tmp_path: Path, sandbox: Sandbox, store: Store) -> None:
    """With `reconcile_every`, a sync after that long since the last full pass reconciles."""
    stop = [False]
    ctx = _ctx(tmp_path, sandbox, store, stop)
    assert run_sync(ctx, "sf").kind == "full"
    assert run_sync(ctx, "sf").kind == "incremental"  # reconcile_every not set
    full = last_full_pass(store, "sf")
    assert full is not None
    conn = ctx.config.connection("sf")
    sync = conn.sync.model_copy(update={"reconcile_every": timedelta(seconds=0.001)})
    ctx.config.connections[0] = conn.model_copy(update={"sync": sync})
    assert run_sync(ctx, "sf").kind == "reconcile"
    later = last_full_pass(store, "sf")
    assert later is not None and later > full


def test_run_workflow_counts_what_plan_found(
    tmp_path: Path, sandbox: Sandbox, store: Store
) -> None:
    """The workflow seam evaluates the given file over every connection and returns counts."""
    stop = [False]
    ctx = _ctx(tmp_path, sandbox, store, stop)
    run_sync(ctx, "sf")
    run_sync(ctx, "hs")
    counts = run_workflow(ctx, "stage-gates", ROOT / "workflows" / "stage-gates.yaml")
    assert counts["connections"] == 2
    assert counts["evaluated"] == 500
    assert counts["firings"] > 0
    assert set(counts) >= {"evaluated", "firings", "planned", "created", "api_calls"}


def test_trigger_period() -> None:
    """The readiness window follows the schedule: its longest gap between runs."""
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # a Friday
    assert trigger_period(CronTrigger.from_crontab("*/15 * * * *", timezone="UTC"), now) == 900
    weekdays = CronTrigger.from_crontab("0 7 * * 1-5", timezone="UTC")
    assert trigger_period(weekdays, now) == 3 * 86400  # over the weekend
    assert trigger_period(IntervalTrigger(seconds=2), now) == 2


def test_missed_fire_time() -> None:
    """A run is missed when the schedule fired after the last run began and before now; a job
    that never ran misses nothing (it waits for its first time)."""
    weekly = cron_trigger("0 8 * * 1", "Europe/London")  # Mondays 08:00
    monday = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # London is on UTC in November
    ran = monday + timedelta(seconds=2)  # the run for that time began just after it

    assert missed_fire_time(weekly, ran, monday + timedelta(days=6)) is None
    assert missed_fire_time(weekly, ran, monday + timedelta(days=7)) == monday + timedelta(days=7)
    assert missed_fire_time(weekly, ran, monday + timedelta(days=30)) == monday + timedelta(days=7)
    assert missed_fire_time(weekly, monday - timedelta(days=3), ran) == monday
    assert missed_fire_time(weekly, None, monday + timedelta(days=30)) is None


def test_a_stop_during_a_crm_outage_ends_the_wait_before_a_retry(
    tmp_path: Path, sandbox: Sandbox, store: Store
) -> None:
    """With the CRM down, a sync waits before each retry; asked to stop meanwhile, it stops
    there (recorded `stopped`, the quota untouched), not after every retry (23 s, `failed`)."""
    from crmsync.errors import StopRequested
    from crmsync.sandbox import Fault

    sandbox.hubspot.faults.add(Fault("unavailable", endpoint="*", times=None, rate=1.0))

    def calls() -> int:
        return sum(sandbox.hubspot.calls.counts().values())

    ctx = _ctx(tmp_path, sandbox, store, [False])
    ctx = JobContext(ctx.config, ctx.config_path, store, lambda: calls() >= 1)
    conn = ctx.config.connection("hs")
    sync = conn.sync.model_copy(update={"max_retries": 3, "retry_base_seconds": 5})
    at = [c.name for c in ctx.config.connections].index("hs")
    ctx.config.connections[at] = conn.model_copy(update={"sync": sync})
    summary = run_sync(ctx, "hs")
    assert summary.status == "stopped" and isinstance(summary.failure, StopRequested)
    assert calls() == 1  # the first call; no retry was sent
    (run,) = store.runs("hs")
    assert run["status"] == "stopped"
