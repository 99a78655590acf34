"""The tick of the shared queue (issue 19): which units are due, one catch-up run after a gap,
a unit already waiting is not queued twice, two ticks never both queue one unit, and an org
that stopped for quota waits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crmsync.config import load_config
from crmsync.sandbox import Sandbox
from crmsync.schedule import cron_trigger
from crmsync.service.catalog import WorkflowVersion
from crmsync.service.tick import tick
from crmsync.service.units import Unit, due_time, units
from crmsync.store import Store, marks, quota
from tests.service.support import write_config

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # a Tuesday
HOURLY = cron_trigger("0 * * * *", "UTC")


def _unit(key: str = "sync:sf:opportunity", *, at_once: bool = True, org: str = "sf") -> Unit:
    kind = key.split(":")[0]
    args = {"connection": "sf"} if kind == "sync" else {"workflow": "wf", "connection": "sf"}
    return Unit(key, kind, args, HOURLY, org, at_once=at_once)


def test_due_time_follows_the_schedule() -> None:
    unit = _unit()
    assert due_time(unit, None, T0) == T0  # a new sync runs at once
    assert due_time(_unit("workflow:wf:sf", at_once=False), None, T0) is None  # waits its time
    assert due_time(unit, T0, T0 + timedelta(minutes=59)) is None
    assert due_time(unit, T0, T0 + timedelta(hours=1)) == T0 + timedelta(hours=1)
    # a night with no worker: one run, late for the first time it missed
    assert due_time(unit, T0, T0 + timedelta(hours=9, minutes=5)) == T0 + timedelta(hours=1)


class Queue:
    """Stands in for Procrastinate's queueing lock: a key waits at most once."""

    def __init__(self) -> None:
        self.waiting: list[str] = []

    def defer(self, batch: list[tuple[Unit, datetime]]) -> set[str]:
        queued = set()
        for unit, _due in batch:
            if unit.key not in self.waiting:
                self.waiting.append(unit.key)
                queued.add(unit.key)
        return queued


def test_tick_queues_once_and_coalesces(store: Store) -> None:
    q = Queue()
    units_ = [_unit(), _unit("workflow:wf:sf", at_once=False)]
    first = tick(store, units_, q.defer, T0)
    assert first.deferred == ["sync:sf:opportunity"]  # the workflow waits for 10:00
    assert tick(store, units_, q.defer, T0 + timedelta(minutes=30)).deferred == []
    later = tick(store, units_, q.defer, T0 + timedelta(hours=3, minutes=1))
    # the sync is still waiting in the queue (no worker took it): not queued twice
    assert later.coalesced == ["sync:sf:opportunity"]
    assert later.deferred == ["workflow:wf:sf"]
    assert marks.read_all(store)["workflow:wf:sf"] == T0 + timedelta(hours=3, minutes=1)


def test_two_ticks_that_saw_the_same_mark_queue_once(store: Store) -> None:
    q = Queue()
    unit = _unit()
    tick(store, [unit], q.defer, T0)
    q.waiting.clear()  # a worker took the job
    seen = marks.read_all(store)["sync:sf:opportunity"]
    later = T0 + timedelta(hours=1)
    assert marks.advance(store, unit.key, seen, later)  # another worker's tick won the mark
    assert tick(store, [unit], q.defer, later).deferred == []
    assert q.waiting == []


def test_an_org_stopped_for_quota_waits(store: Store) -> None:
    q = Queue()
    unit = _unit()
    tick(store, [unit], q.defer, T0)
    q.waiting.clear()
    later = T0 + timedelta(hours=1)
    quota.block(store, "sf", later + timedelta(minutes=30), "9,000 of 10,000 calls used")
    held = tick(store, [unit], q.defer, later)
    assert held.held == ["sync:sf:opportunity"] and q.waiting == []
    freed = tick(store, [unit], q.defer, later + timedelta(minutes=31))
    assert freed.deferred == ["sync:sf:opportunity"]  # once the block ends, it runs


def test_a_workflow_run_by_the_single_scheduler_catches_up(store: Store) -> None:
    """Moving from `lease` to `queue`: a workflow's last run (job_runs) starts its count."""
    store.record_job_run(
        "workflow:wf", started_at=T0 - timedelta(hours=2), finished_at=T0, status="ok"
    )
    q = Queue()
    result = tick(store, [_unit("workflow:wf:sf", at_once=False)], q.defer, T0)
    assert result.deferred == ["workflow:wf:sf"]  # 08:00 passed while nothing ran


def test_units_of_a_config(tmp_path: Path, sandbox: Sandbox, store: Store) -> None:
    config = load_config(write_config(tmp_path, sandbox, store.url))
    versions = {
        "wf": WorkflowVersion("wf", Path("wf.yaml"), Path("s.yaml"), "d", "live", None),
        "scoped": WorkflowVersion(
            "scoped",
            Path("s.yaml"),
            Path("s2.yaml"),
            "d",
            "live",
            _schedule(),
            scope=("hs",),
        ),
        "everywhere": WorkflowVersion(
            "everywhere", Path("e.yaml"), Path("e2.yaml"), "d", "live", _schedule()
        ),
    }
    keys = [u.key for u in units(config, versions)]
    assert keys == [
        "sync:sf:opportunity",
        "sync:hs:opportunity",
        "workflow:everywhere:sf",
        "workflow:everywhere:hs",
        "workflow:scoped:hs",
        "report",
    ]  # "wf" has no schedule: it runs only by hand


def _schedule():  # type: ignore[no-untyped-def]
    from crmsync.workflows.schema import Schedule

    return Schedule(cron="0 7 * * 1-5", timezone="UTC")


@pytest.mark.parametrize("scheduler", ["queue"])
def test_queue_needs_postgresql(tmp_path: Path, sandbox: Sandbox, scheduler: str) -> None:
    from crmsync.errors import InvalidInput

    path = write_config(
        tmp_path, sandbox, f"sqlite:///{tmp_path}/s.db", service={"scheduler": scheduler}
    )
    with pytest.raises(InvalidInput) as e:
        load_config(path)
    assert "scheduler 'queue' needs a PostgreSQL store" in str(e.value)
    assert str(path) in str(e.value) and "service.scheduler" in str(e.value)
