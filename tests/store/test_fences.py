"""Fencing tokens (issue 19): a job another worker took over writes no page, moves no cursor,
records no plan and claims no outbox row; the current holder writes as usual."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crmsync.model.records import Cursor
from crmsync.store import Store, fences
from crmsync.store.outbox import OutboxRow, PlanRecord, Transition, pending, record_plan, transition
from tests.store.builders import CONN, NOW, OBJ, opp

KEY = f"sync:{CONN}:{OBJ}"


def _page(store: Store, native_id: str, cursor: str) -> None:
    store.apply_batch(
        CONN, OBJ, opportunities=[opp(native_id)], cursor=Cursor(cursor, ()), observed_at=NOW
    )


def test_tokens_grow_per_key(store: Store) -> None:
    first = fences.take(store, KEY, "w1", NOW)
    second = fences.take(store, KEY, "w2", NOW + timedelta(seconds=1))
    other = fences.take(store, "workflow:wf:" + CONN, "w1", NOW)
    assert (first.token, second.token, other.token) == (1, 2, 1)
    assert fences.newest(store, KEY) == 2
    assert fences.newest(store, "nothing") is None


def test_the_holder_writes_and_an_overtaken_job_writes_nothing(store: Store) -> None:
    old = fences.take(store, KEY, "w1", NOW)
    with fences.fenced(old):
        _page(store, "A", "c1")  # still the newest token: stored
    assert store.get(f"{CONN}:A") is not None
    new = fences.take(store, KEY, "w2", NOW)  # the stalled-jobs task gave the job to w2
    with fences.fenced(old), pytest.raises(fences.FenceLost) as lost:
        _page(store, "B", "c2")
    assert str(lost.value) == (
        f"{KEY}: another worker took this job over (token 2 of w2, this job held token 1); "
        "it stops without writing"
    )
    assert store.get(f"{CONN}:B") is None  # the page was not stored ...
    assert store.get_cursor(CONN, OBJ) == Cursor("c1", ())  # ... nor the cursor moved
    with fences.fenced(new):
        _page(store, "B", "c2")
    assert store.get_cursor(CONN, OBJ) == Cursor("c2", ())


def test_no_fence_outside_a_job(store: Store) -> None:
    """The CLI and the single-process worker run without fences, as before."""
    fences.take(store, KEY, "w1", NOW)
    _page(store, "A", "c1")
    assert fences.current() is None
    assert store.get_cursor(CONN, OBJ) == Cursor("c1", ())


def test_an_overtaken_job_records_no_plan_and_claims_no_row(store: Store) -> None:
    key = f"workflow:wf:{CONN}"
    old = fences.take(store, key, "w1", NOW)
    plan = PlanRecord()
    plan.rows.append(OutboxRow("t1", CONN, "wf", "r", f"{CONN}:A", "A", "task.create", {}))
    with fences.fenced(old):
        assert record_plan(store, plan, NOW) == {"t1"}
    rows = {r.key: r for r in pending(store, CONN)}
    fences.take(store, key, "w2", NOW)
    with fences.fenced(old), pytest.raises(fences.FenceLost):
        transition(store, rows, [Transition("t1", "sending", attempts=1)], NOW)
    assert [r.state for r in pending(store, CONN)] == ["planned"]  # left for the new holder
    plan2 = PlanRecord()
    plan2.rows.append(OutboxRow("t2", CONN, "wf", "r", f"{CONN}:B", "B", "task.create", {}))
    with fences.fenced(old), pytest.raises(fences.FenceLost):
        record_plan(store, plan2, NOW)
    assert [r.key for r in pending(store, CONN)] == ["t1"]
