"""Crash test: `crmsync apply` is killed with SIGKILL at many random moments; after a run that
is left to finish, the CRM holds exactly the tasks planned, none twice, none missing."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from crmsync.store import Store
from crmsync.store.schema import outbox
from tests.actions.test_executor import EVERY_OPEN_DEAL
from tests.actions.world import World, slow_write_world
from tests.conftest import make_sandbox

KILLS = 50
SLOW_WRITES = 0.1  # seconds the sandbox takes per write call, so kills land mid-send


@pytest.fixture
def crashy(store: Store, store_url: str, tmp_path: Path) -> Iterator[tuple[World, Path]]:
    sb = make_sandbox(1000)  # strict: search lag, whole-batch 409 on a taken task key
    try:
        w, path = slow_write_world(
            sb, store, store_url, tmp_path, EVERY_OPEN_DEAL, batch_size=5, delay=SLOW_WRITES
        )
        yield w, path
    finally:
        sb.stop()


def _states(w: World) -> Counter[str]:
    with w.store.reading("test") as conn:
        return Counter(
            dict(
                conn.execute(
                    sa.select(outbox.c.state, sa.func.count()).group_by(outbox.c.state)
                ).all()
            )
        )


def _apply(path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CRMSYNC_LOG_LEVEL": "warning"}
    return subprocess.Popen(
        [sys.executable, "-m", "crmsync", "apply", "-c", str(path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_for_a_send(w: World, proc: subprocess.Popen[bytes], *, deadline: float) -> None:
    """Return once the outbox shows a row `sent` (or the process ended, or time is up)."""
    while time.monotonic() < deadline and proc.poll() is None:
        if _states(w)["sent"]:
            return
        time.sleep(0.02)


@pytest.mark.slow
def test_sigkill_at_random_points_leaves_no_duplicate_and_no_gap(
    crashy: tuple[World, Path],
) -> None:
    w, path = crashy
    rng = random.Random(20261123)
    killed_with_work_left = 0
    unknown_seen = 0
    rounds = 0
    while killed_with_work_left < KILLS and rounds < 4 * KILLS:
        rounds += 1
        proc = _apply(path)
        if rounds % 5 == 0:
            # every fifth kill aims at the moment it is there for: a batch handed to the CRM
            # whose answer is not recorded yet (random times alone may miss it on a slow start)
            _wait_for_a_send(w, proc, deadline=time.monotonic() + 20)
        else:
            time.sleep(rng.uniform(0.5, 3.5))
        if proc.poll() is not None:
            assert proc.returncode == 0, proc.stderr.read() if proc.stderr else b""
            break  # everything was done before this kill
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        states = _states(w)
        if states["planned"] + states["sent"] + states["failed"] or not states:
            killed_with_work_left += 1
        unknown_seen += states["sent"] > 0
    final = _apply(path)
    _, err = final.communicate(timeout=600)
    assert final.returncode == 0, err.decode()

    states = _states(w)
    assert set(states) == {"confirmed"}, states
    for crm, key in (("sf", "CRMSync_Key__c"), ("hs", "crmsync_key")):
        with w.store.reading("test") as conn:
            planned = set(
                conn.execute(
                    sa.select(outbox.c.key).where(
                        outbox.c.connection == crm, outbox.c.kind == "task.create"
                    )
                ).scalars()
            )
        in_crm = Counter(str(t[key]) for t in w.tasks(crm))
        assert max(in_crm.values()) == 1  # no task twice
        assert set(in_crm) == planned  # none missing, none unplanned
        assert len(planned) > 300
    # the harness did what it claims: most kills hit a run with work outstanding, and some hit
    # the moment between a send and the recording of its result
    assert killed_with_work_left >= KILLS, (killed_with_work_left, rounds)
    assert unknown_seen >= 3, unknown_seen
