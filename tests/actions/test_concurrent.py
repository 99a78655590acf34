"""Two applies at once stay exactly-once (issue 13, finding 3): outbox moves are
compare-and-set, apply holds a per-connection lock in the store, and a task key the CRM says is
taken means the task exists: it is looked up and confirmed, never parked."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from crmsync.store import Store
from crmsync.store.outbox import Transition, pending, transition
from crmsync.store.schema import audit, outbox
from tests.actions.test_executor import EVERY_OPEN_DEAL
from tests.actions.world import World, slow_write_world
from tests.conftest import make_sandbox

CRMS = (("sf", "CRMSync_Key__c"), ("hs", "crmsync_key"))


@pytest.fixture
def racing(store: Store, store_url: str, tmp_path: Path) -> Iterator[tuple[World, Path]]:
    """300 opportunities per CRM, synced, a rule firing on every open deal, small batches and
    slow writes, so two applies started together overlap for seconds."""
    sb = make_sandbox(300)
    try:
        w, path = slow_write_world(
            sb, store, store_url, tmp_path, EVERY_OPEN_DEAL, batch_size=10, delay=0.05
        )
        yield w, path
    finally:
        sb.stop()


def _apply(path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "crmsync", "apply", "-c", str(path)],
        env={**os.environ, "CRMSYNC_LOG_LEVEL": "info"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _planned_tasks(w: World, crm: str) -> set[str]:
    with w.store.reading("test") as conn:
        return set(
            conn.execute(
                sa.select(outbox.c.key).where(
                    outbox.c.connection == crm, outbox.c.kind == "task.create"
                )
            ).scalars()
        )


def test_two_applies_at_once_confirm_every_action_exactly_once(
    racing: tuple[World, Path],
) -> None:
    """Two `crmsync apply` processes on one store at the same moment: every outbox row ends
    confirmed, with one confirmation each in the audit, and no task is in a CRM twice."""
    w, path = racing
    procs = [_apply(path), _apply(path)]
    outputs = [p.communicate(timeout=600)[0].decode() for p in procs]
    for p, out in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out
    with w.store.reading("test") as conn:
        query = sa.select(outbox.c.state, sa.func.count()).group_by(outbox.c.state)
        states = Counter(dict(conn.execute(query).all()))
        confirmations = Counter(
            conn.execute(
                sa.select(audit.c.key).where(
                    audit.c.state == "confirmed", audit.c.kind != "episode"
                )
            ).scalars()
        )
        keys = set(conn.execute(sa.select(outbox.c.key)).scalars())
    assert set(states) == {"confirmed"}, states
    assert set(confirmations) == keys and set(confirmations.values()) == {1}
    for crm, key in CRMS:
        in_crm = Counter(str(t[key]) for t in w.tasks(crm))
        assert max(in_crm.values()) == 1  # no task twice
        assert set(in_crm) == _planned_tasks(w, crm)
    assert any("apply.waiting" in out or "apply.locked" in out for out in outputs)


@pytest.mark.parametrize("crm", ["sf", "hs"])
def test_a_held_connection_is_skipped_after_a_bounded_wait(world: World, crm: str) -> None:
    """Another apply holds the connection's lock: this one waits `lock_wait`, then skips the
    connection (no plan recorded, no call), and names the holder."""
    now = datetime.now(UTC)
    assert world.store.take_lease(
        f"apply:{crm}", "other-host:42", now=now, expires_at=now + timedelta(minutes=5)
    )
    side = world.sb.salesforce if crm == "sf" else world.sb.hubspot
    side.calls.reset()
    report = world.apply(connections=[crm], lock_wait=0.3)
    assert report.locked == {crm: "other-host:42"}
    assert report.sends == [] and report.workflows == []
    assert sum(world.calls(crm).values()) == 0
    assert pending(world.store, crm) == []
    world.store.release_lease(f"apply:{crm}", "other-host:42", now=datetime.now(UTC))
    report = world.apply(connections=[crm], lock_wait=0.3)
    assert report.locked == {} and report.total("created") > 0
    lease = world.store.lease(f"apply:{crm}")
    assert lease is not None and lease.expires_at <= datetime.now(UTC)  # released


def test_a_row_another_process_moved_is_dropped_not_overwritten(world: World) -> None:
    """Outbox moves are compare-and-set: a row moved since it was read keeps its new state and
    its audit, and the mover is told it lost it."""
    world.apply(connections=["sf"], dry_run=False, lock_wait=0.3)
    with world.store.writing("test") as conn:
        conn.execute(sa.update(outbox).where(outbox.c.connection == "sf").values(state="planned"))
    rows = {r.key: r for r in pending(world.store, "sf")}
    first, second = sorted(rows)[:2]
    with world.store.writing("someone else") as conn:
        conn.execute(sa.update(outbox).where(outbox.c.key == first).values(state="sent"))
    now = datetime.now(UTC)
    lost = transition(
        world.store, rows, [Transition(first, "parked"), Transition(second, "cancelled")], now
    )
    assert lost == {first} and first not in rows and rows[second].state == "cancelled"
    with world.store.reading("test") as conn:
        states = dict(conn.execute(
            sa.select(outbox.c.key, outbox.c.state).where(outbox.c.key.in_([first, second]))
        ).all())  # fmt: skip
    assert states == {first: "sent", second: "cancelled"}


@pytest.mark.parametrize("crm", ["sf", "hs"])
def test_a_taken_task_key_is_looked_up_and_confirmed(world: World, crm: str) -> None:
    """The CRM says a task's key is taken (another apply created it): the task is looked up by
    key and confirmed with its id, never parked, and not created twice."""
    world.apply(connections=[crm])
    with world.store.writing("test") as conn:
        created = dict(conn.execute(
            sa.select(outbox.c.key, outbox.c.crm_id).where(
                outbox.c.connection == crm, outbox.c.kind == "task.create")).all())  # fmt: skip
        conn.execute(  # as another process saw them: not sent yet
            sa.update(outbox)
            .where(outbox.c.key.in_(list(created)))
            .values(state="planned", attempts=0, crm_id=None)
        )
    assert len(created) > 5
    report = world.apply(connections=[crm])
    assert report.total("parked") == 0
    with world.store.reading("test") as conn:
        after = dict(conn.execute(
            sa.select(outbox.c.key, outbox.c.crm_id).where(
                outbox.c.connection == crm, outbox.c.kind == "task.create",
                outbox.c.state == "confirmed")).all())  # fmt: skip
    assert after == created
    key = dict(CRMS)[crm]
    in_crm = Counter(str(t[key]) for t in world.tasks(crm))
    assert set(in_crm) == set(created) and max(in_crm.values()) == 1
