"""Two `crmsync run` workers on one PostgreSQL database: one runs the jobs, the other stands by
and takes over after the first one dies."""

from __future__ import annotations

import itertools
import json
import os
import signal
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from crmsync.sandbox import Sandbox
from crmsync.store import Store
from crmsync.store.schema import leases
from tests.service.support import Event, ServiceProcess, metric, write_config

pytestmark = pytest.mark.slow

JOB_EVENTS = ("sync.started", "sync.finished", "job.finished", "job.failed")


def _lease_row(url: str) -> Any:
    with Store.open(url) as store, store.reading("test") as conn:
        return conn.execute(sa.select(leases)).one()


def _jobs(events: list[Event]) -> list[Event]:
    return [e for e in events if e.get("event") in JOB_EVENTS]


def test_one_worker_runs_the_jobs_and_the_standby_takes_over(
    tmp_path: Path, sandbox: Sandbox, pg_url: str
) -> None:
    """While A holds the lease, B runs nothing; once A is killed (SIGKILL), B takes the lease
    only after A's lease expired, and runs the jobs; no two syncs of a connection overlap."""
    config = write_config(
        tmp_path, sandbox, pg_url, service={"lease_seconds": 2, "scheduler": "lease"}
    )
    a = ServiceProcess(config, name="a")
    b: ServiceProcess | None = None
    try:
        a_holder = a.wait_event("lease.acquired")["holder"]
        b = ServiceProcess(config, name="b")
        standby = b.wait_event("lease.standby")
        assert standby["active_holder"] == a_holder
        a.wait_event("job.finished", job="sync", connection="sf", count=3)
        a.wait_event("job.finished", job="workflow", workflow="stage-gates")

        assert not _jobs(b.events())  # the standby ran nothing
        assert metric(a.get("/metrics")[1], "crmsync_lease_held") == 1
        assert metric(b.get("/metrics")[1], "crmsync_lease_held") == 0
        status, body = b.get("/readyz")
        assert status == 200 and json.loads(body)["role"] == "standby"

        # A freezes (no more renewals), then dies without cleaning up
        os.kill(a.proc.pid, signal.SIGSTOP)
        last = _lease_row(pg_url)
        assert last.holder == a_holder
        a.kill()

        taken = b.wait_event("lease.acquired", timeout=120)
        assert taken["previous_holder"] == a_holder
        row = _lease_row(pg_url)
        assert row.holder == taken["holder"] != a_holder
        assert row.acquired_at > last.expires_at  # never before A's lease ran out
        for conn in ("sf", "hs"):
            b.wait_event("job.finished", job="sync", connection=conn)
        b.wait_event("job.finished", job="workflow", workflow="stage-gates")
        assert metric(b.get("/metrics")[1], "crmsync_lease_held") == 1
        assert b.terminate() == 0
    finally:
        a.close()
        if b is not None:
            b.close()

    with Store.open(pg_url) as store:
        runs = store.runs(limit=10_000)
    for conn in ("sf", "hs"):
        mine = sorted((r for r in runs if r["connection"] == conn), key=lambda r: r["started_at"])
        assert len(mine) >= 4
        finished = [r for r in mine if r["finished_at"] is not None]
        for before, after in itertools.pairwise(finished):
            assert before["finished_at"] <= after["started_at"], (before, after)
        # a sync A was in the middle of when it died stays `running`; it began before B's time
        crashed: list[datetime] = [r["started_at"] for r in mine if r["finished_at"] is None]
        assert len(crashed) <= 1
        assert all(started < row.acquired_at for started in crashed)
