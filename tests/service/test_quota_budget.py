"""The API allowance of an org is shared (issue 19): one connection's stop for quota blocks the
org, and another connection on the same org starts from that reading and spends nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from crmsync.config import load_config
from crmsync.sandbox import Sandbox
from crmsync.service.jobs import JobContext, quota_blocked, run_sync
from crmsync.store import Store, quota
from tests.conftest import make_sandbox
from tests.service.support import write_config


def _two_on_one_org(tmp_path: Path, sb: Sandbox, store: Store) -> JobContext:
    path = write_config(tmp_path, sb, store.url)
    config: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    sf = config["connections"][0]
    sf["org"] = "acme"
    sf["sync"]["quota_share"] = 0.5
    config["connections"] = [sf, {**sf, "name": "sf-other"}]
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return JobContext(load_config(path), path, store, lambda: False)


def test_a_stop_for_quota_blocks_every_connection_of_the_org(tmp_path: Path, store: Store) -> None:
    sb = make_sandbox(salesforce_daily_limit=4)
    try:
        ctx = _two_on_one_org(tmp_path, sb, store)
        first = run_sync(ctx, "sf")
        assert first.status == "stopped" and "daily API calls used" in (first.error or "")
        budget = quota.read(store, "acme")
        assert budget is not None and budget.allowance == 4 and budget.used is not None
        assert budget.used >= 2  # half of 4: the share where the guard stops
        assert quota_blocked(ctx, "sf-other") is not None  # the queue holds its jobs
        calls = sb.salesforce.calls.total()
        other = run_sync(ctx, "sf-other")  # started anyway (by hand): stops before its first call
        assert other.status == "stopped"
        assert sb.salesforce.calls.total() == calls
    finally:
        sb.stop()


def test_readings_are_kept_newest_first(store: Store) -> None:
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
    quota.record(store, "acme", 100, 1000, t0 + timedelta(minutes=5))
    quota.record(store, "acme", 90, 1000, t0)  # a worker that finished later, read earlier
    budget = quota.read(store, "acme")
    assert budget is not None and budget.used == 100
    assert not budget.blocked(t0)
    quota.block(store, "acme", t0 + timedelta(hours=1), "stopped at 80%")
    budget = quota.read(store, "acme")
    assert budget is not None and budget.blocked(t0) and not budget.blocked(t0 + timedelta(hours=2))
    assert budget.used == 100  # a block keeps the reading
