"""The write-back bookkeeping is set-based (issue 17): recording a plan and moving its outbox
rows through their states costs a number of SQL statements that does not grow with the number
of rows, and the moves stay compare-and-set (a row another process moved is lost, not moved)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from crmsync.store import Store
from crmsync.store.outbox import (
    AuditEntry,
    Episode,
    OutboxRow,
    PlanRecord,
    Transition,
    pending,
    record_plan,
    transition,
)
from crmsync.store.schema import audit, flag_state, outbox

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@contextmanager
def counted() -> Iterator[list[str]]:
    """Every SQL statement any engine sends to its database inside the block."""
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(str(args[2]))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", count)


def _plan(n: int) -> PlanRecord:
    plan = PlanRecord()
    for i in range(n):
        key = f"sf:o{i:05d}"
        plan.episodes.append(
            Episode("wf", "r", key, "sf", f"o{i}", "u1", "open", 1, NOW, NOW, flag_field="f")
        )
        plan.rows.append(
            OutboxRow(f"t{i:05d}", "sf", "wf", "r", key, f"o{i}", "task.create", {"n": i})
        )
        plan.flags.append(("sf", key, "f", "x"))
        plan.audit.append(AuditEntry(NOW, f"episode:{i}", "sf", "wf", "r", key, f"o{i}",
                                     "episode", "opened"))  # fmt: skip
    return plan


def _cycle(store: Store, n: int) -> tuple[int, int, int]:
    """Statements to record n rows, mark them sent, and confirm them."""
    plan = _plan(n)
    with counted() as recording:
        assert len(record_plan(store, plan, NOW)) == n
    rows = {r.key: r for r in pending(store, "sf")}
    with counted() as sending:
        lost = transition(store, rows, [Transition(k, "sent", attempts=1) for k in rows], NOW)
    assert lost == set()
    with counted() as confirming:
        transition(
            store,
            rows,
            [Transition(k, "confirmed", crm_id=f"T{k}") for k in rows],
            NOW,
            forget_flags=[("sf", r.opp_key, "f") for r in rows.values()],
        )
    return len(recording), len(sending), len(confirming)


@pytest.mark.parametrize("n", [40, 1000])
def test_statements_do_not_grow_with_rows(store: Store, n: int) -> None:
    """Recording and moving n outbox rows takes a bounded number of statements (per 900-key IN
    list at most), where the per-row code took one UPDATE and more per row."""
    recording, sending, confirming = _cycle(store, n)
    in_lists = -(-n // 900)  # the existing-key check reads the keys 900 at a time
    # BEGIN, the seq read, the key check(s), episodes, outbox rows, flag state, audit, COMMIT
    assert recording <= 7 + in_lists, recording
    assert sending <= 4, sending  # BEGIN, one UPDATE executemany, audit, COMMIT
    assert confirming <= 5, confirming  # ... and one flag-state DELETE executemany
    with store.reading("test") as conn:
        states = dict(conn.execute(sa.select(outbox.c.state, sa.func.count())
                                   .group_by(outbox.c.state)).all())  # fmt: skip
        entries = conn.execute(sa.select(sa.func.count()).select_from(audit)).scalar()
        flags = conn.execute(sa.select(sa.func.count()).select_from(flag_state)).scalar()
    assert states == {"confirmed": n}
    assert entries == 4 * n  # opened, planned, sent, confirmed
    assert flags == 0


def test_a_row_moved_elsewhere_is_lost_and_the_others_move(store: Store) -> None:
    """Compare-and-set, batched: when another process moved one row since it was read, that
    row is left as the other process left it (no audit entry), and every other row moves."""
    record_plan(store, _plan(5), NOW)
    mine = {r.key: r for r in pending(store, "sf")}
    theirs = {r.key: r for r in pending(store, "sf")}
    assert transition(store, theirs, [Transition("t00002", "sent", attempts=1)], NOW) == set()
    with counted() as statements:
        lost = transition(store, mine, [Transition(k, "sent", attempts=1) for k in mine], NOW)
    assert lost == {"t00002"}
    assert "t00002" not in mine
    assert all(r.state == "sent" and r.attempts == 1 for r in mine.values())
    assert len(statements) < 20
    with store.reading("test") as conn:
        sent = conn.execute(
            sa.select(audit.c.key, sa.func.count()).where(audit.c.state == "sent")
            .group_by(audit.c.key)
        ).all()  # fmt: skip
    assert sorted(sent) == [(f"t{i:05d}", 1) for i in range(5)]  # t00002's by the other one


def test_a_row_moved_twice_in_one_call(store: Store) -> None:
    """Two moves of one row in a call go in order (the second from the first's state)."""
    record_plan(store, _plan(2), NOW)
    rows = {r.key: r for r in pending(store, "sf")}
    changes = [Transition("t00000", "sent", attempts=1), Transition("t00000", "failed", error="x"),
               Transition("t00001", "sent", attempts=1)]  # fmt: skip
    assert transition(store, rows, changes, NOW) == set()
    again = {r.key: (r.state, r.attempts, r.error) for r in pending(store, "sf")}
    assert again == {"t00000": ("failed", 1, "x"), "t00001": ("sent", 1, None)}
    assert (rows["t00000"].state, rows["t00000"].error) == ("failed", "x")


def test_moves_write_the_same_audit_entries_as_entry_objects(store: Store) -> None:
    """The moves' audit rows, written as tuples, hold what AuditEntry.of would (every column in
    its place), and the planned entries follow the plan's own."""
    plan = _plan(1)
    record_plan(store, plan, NOW)
    rows = {r.key: r for r in pending(store, "sf")}
    row = OutboxRow(**vars(rows["t00000"]))
    transition(store, rows, [Transition("t00000", "parked", error="refused")], NOW)
    with store.reading("test") as conn:
        found = conn.execute(sa.select(audit).order_by(audit.c.id)).mappings().all()
    want = [plan.audit[0], AuditEntry.of(row, "planned", NOW, None),
            AuditEntry.of(row, "parked", NOW, "refused")]  # fmt: skip
    assert [{k: v for k, v in r.items() if k != "id"} for r in found] == [vars(e) for e in want]


def test_rows_in_hand_are_not_read_again_unless_moved(store: Store) -> None:
    """`pending(known=...)`: the rows a plan has just recorded are taken as they are (record_plan
    gave them their seq and stamps), but one another process moved since is read afresh, so
    the answer is the one a full read gives, in the same order."""
    plan = _plan(4)
    fresh = record_plan(store, plan, NOW)
    known = {r.key: r for r in plan.rows if r.key in fresh}
    assert [r.seq for r in plan.rows] == [1, 2, 3, 4]
    theirs = {r.key: r for r in pending(store, "sf")}
    assert transition(store, theirs, [Transition("t00001", "sent", attempts=1)], NOW) == set()
    found = pending(store, "sf", known=known)
    read = pending(store, "sf")
    assert [vars(r) for r in found] == [vars(r) for r in read]  # the same rows, the same order
    assert [r is known[r.key] for r in found] == [True, False, True, True]
    assert found[1].state == "sent" and known["t00001"].state == "planned"
