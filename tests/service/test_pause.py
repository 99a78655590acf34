"""A paused worker (SIGSTOP) past its job's timeout, while another worker takes the job over,
then resumed (SIGCONT): its late writes are refused by the fencing token and logged, it exits
to be restarted afresh, and the connection still ends up whole (issue 19)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from crmsync.sandbox import Fault, Sandbox
from crmsync.store import Store, fences
from tests.conftest import make_sandbox
from tests.crm import live_records, stored_records
from tests.service.support import ServiceProcess, write_config
from tests.service.test_queue import wait_for

pytestmark = pytest.mark.slow

KEY = "sync:hs:opportunity"


@pytest.fixture
def slow_hubspot() -> Sandbox:
    """1,000 deals read 50 a page, each page answered after 0.4 s: a sync of 8 s or more."""
    sb = make_sandbox(opportunities=1000)
    sb.hubspot.faults.add(Fault("slow", delay=0.4, times=None))
    yield sb  # type: ignore[misc]
    sb.stop()


def test_a_paused_worker_that_lost_its_job_writes_nothing(
    tmp_path: Path, slow_hubspot: Sandbox, pg_url: str
) -> None:
    service = {
        "tick_seconds": 1,
        "stalled_after_seconds": 15,
        "sync_interval_seconds": 3600,  # one sync each: the one paused and taken over
        "workflow_interval_seconds": 3600,
    }
    config = write_config(tmp_path, slow_hubspot, pg_url, service=service, hubspot_page_size=50)
    first = ServiceProcess(config, name="first")
    second: ServiceProcess | None = None
    try:
        first.wait_event("job.started", key=KEY, timeout=120)
        with Store.open(pg_url) as store:  # pages being stored, and more to come
            wait_for(lambda: 0 < store.count("hs") < 500)
        first.proc.send_signal(signal.SIGSTOP)
        second = ServiceProcess(config, name="second")
        taken = second.wait_event("job.started", key=KEY, timeout=120)
        assert taken["fence"] == 2  # the paused worker held token 1
        first.proc.send_signal(signal.SIGCONT)
        refused = first.wait_event("job.fenced", timeout=60)
        assert refused["key"] == KEY
        assert "another worker took this job over" in refused["error"]
        assert "this job held token 1" in refused["error"]
        dead = first.wait_event("worker.taken_for_dead", timeout=60)
        assert dead["why"] in (  # whichever it noticed first
            "its registration in the queue was pruned",
            "a write was refused: another worker holds this job's key now",
        )
        # it stops by itself, for its supervisor to start it afresh (EX_TEMPFAIL)
        assert first.proc.wait(timeout=60) == 75, first.output()[-3000:]
        assert "Traceback" not in first.output()
        second.wait_event("job.finished", connection="hs", timeout=120)
        assert second.terminate() == 0, second.output()[-3000:]
    finally:
        first.proc.send_signal(signal.SIGCONT)
        first.close()
        if second is not None:
            second.close()
    with Store.open(pg_url) as store:
        assert fences.newest(store, KEY) == 2
        assert stored_records(store, "hs", "hubspot") == live_records(slow_hubspot, "hubspot")
        statuses = [r["status"] for r in store.runs("hs")]
        assert "ok" in statuses  # the second worker's
