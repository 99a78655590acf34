"""How a task read back from the CRM decides its pending update (issue 13, finding 6): the
cases the end-to-end tests in test_rep_edits.py do not reach."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from crmsync.actions.readback import judge
from crmsync.connectors.base import TaskState
from crmsync.store.outbox import OutboxRow

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
WRITTEN = {"due_date": "2026-11-23", "due_at": "2026-11-23T17:00:00-05:00"}


def _row(kind: str, state: str = "planned", **payload: Any) -> OutboxRow:
    return OutboxRow(f"{kind}-1", "c", "wf", "r", "o", "n", kind,
                     {"task_key": "task-1", "task_id": "T1", **payload}, state=state)  # fmt: skip


def _create() -> dict[str, OutboxRow]:
    return {"task-1": OutboxRow("task-1", "c", "wf", "r", "o", "n", "task.create", dict(WRITTEN),
                                state="confirmed")}  # fmt: skip


def test_a_due_move_that_already_landed_is_confirmed() -> None:
    """An earlier send of this very move reached the CRM (its answer was lost): confirmed."""
    row = _row("task.due", "sent", due_date="2026-11-30", due_at="2026-11-30T17:00:00-05:00")
    state = TaskState(False, due_at=datetime(2026, 11, 30, 22, 0, tzinfo=UTC))
    v = judge([row], {"T1": state}, _create(), {}, NOW)
    assert [(c.state, c.detail) for c in v.changes] == [
        ("confirmed", "the due date was already moved in the CRM")
    ]
    assert v.marks == {}


def test_the_same_moment_in_another_zone_is_not_a_move() -> None:
    """HubSpot answers the due moment in UTC: the same instant crmsync wrote is unchanged."""
    row = _row("task.due", due_date="2026-11-30", due_at="2026-11-30T17:00:00-05:00")
    state = TaskState(False, due_at=datetime(2026, 11, 23, 22, 0, tzinfo=UTC))
    v = judge([row], {"T1": state}, _create(), {}, NOW)
    assert v.changes == [] and v.marks == {}  # goes out as planned


def test_a_moved_moment_is_told_as_a_day_in_the_zone_crmsync_wrote() -> None:
    row = _row("task.due", due_date="2026-11-30", due_at="2026-11-30T17:00:00-05:00")
    state = TaskState(False, due_at=datetime(2026, 11, 26, 3, 0, tzinfo=UTC))  # 25th, 22:00 EST
    v = judge([row], {"T1": state}, _create(), {}, NOW)
    assert [(c.state, c.detail) for c in v.changes] == [
        ("skipped", "the rep moved the due date to 2026-11-25; kept")
    ]
    assert v.marks["task-1"][0] == "moved:2026-11-25"
    again = judge([row], {"T1": state}, _create(), {}, NOW, snoozed={"task-1": "2026-11-25"})
    assert again.changes == [] and again.marks == {}  # the kept day, passed: the reminder goes


def test_the_last_confirmed_move_is_what_crmsync_wrote() -> None:
    """After a reminder moved the task, that move (not the create) is the date to compare."""
    row = _row("task.due", due_date="2026-12-07")
    moved = {"task-1": {"due_date": "2026-11-30"}}
    same = judge([row], {"T1": TaskState(False, due_date=date(2026, 11, 30))}, _create(), moved,
                 NOW)  # fmt: skip
    assert same.changes == []
    rep = judge([row], {"T1": TaskState(False, due_date=date(2026, 11, 23))}, _create(), moved,
                NOW)  # fmt: skip
    assert [c.detail for c in rep.changes] == ["the rep moved the due date to 2026-11-23; kept"]


def test_a_cleared_due_date_is_kept() -> None:
    row = _row("task.due", due_date="2026-11-30")
    v = judge([row], {"T1": TaskState(False)}, _create(), {}, NOW)
    assert [(c.state, c.detail) for c in v.changes] == [
        ("skipped", "the rep removed the due date; kept")
    ]
    assert v.marks["task-1"][0] == "cleared"


def test_a_completion_crmsync_sent_before_is_not_the_reps() -> None:
    """A task.complete sent earlier (answer lost) finds the task done: confirmed, and the task's
    trail does not claim the rep completed it."""
    row = _row("task.complete", "sent", note="fixed")
    v = judge([row], {"T1": TaskState(True)}, _create(), {}, NOW)
    assert [(c.state, c.detail) for c in v.changes] == [
        ("confirmed", "already completed in the CRM")
    ]
    assert v.marks == {} and v.completed == 1
