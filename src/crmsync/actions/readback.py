"""Reps' changes win: before crmsync moves a task's due date (a reminder) or completes it (the
deal was fixed), it reads the task back from the CRM and leaves alone what a rep changed.

- a task deleted in the CRM (by a rep, an admin, or a CRM emptied of tasks) is neither
  recreated nor touched: the update is skipped;
- a task the rep completed gets no reminder, and a completion finds nothing left to do;
- a due date that differs from the one crmsync last wrote was moved by the rep: it is kept
  (a snooze: no reminder before that day; once it has passed, reminders go on from it);
- a task the rep set to the dismiss status (the mapping's `tasks.dismiss_status`) dismissed its
  finding: no reminder, and no new task for it until the deal changes (crmsync.actions.intents).

Each of these is recorded on the task's own outbox trail, and its episode is marked as left to
the rep (`left_to_rep`), so later plans send no more reminders for that task. Pure but for the
reads: the caller records the transitions and the marks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from crmsync.connectors.base import TaskState
from crmsync.store.outbox import AuditEntry, OutboxRow, Transition

UPDATES = ("task.due", "task.complete")

DELETED = {
    "task.due": "the task was deleted in the CRM by someone; no reminder moved, and crmsync "
    "does not recreate it",
    "task.complete": "the task was deleted in the CRM by someone; nothing to complete, and "
    "crmsync does not recreate it",
}
REP_COMPLETED = "the rep completed the task; no reminder moved"
REP_DISMISSED = "the rep dismissed the task; no reminder moved"
ALREADY_COMPLETED = "already completed in the CRM"
ALREADY_MOVED = "the due date was already moved in the CRM"
MOVED = "the rep moved the due date to {day}; kept"
CLEARED = "the rep removed the due date; kept"
# What the task's own trail (its task.create row) says, by what the rep did: (state, detail).
ON_TASK = {
    "deleted": (
        "deleted",
        "the task was deleted in the CRM by someone; crmsync will not recreate it or send "
        "reminders for it",
    ),
    "completed": (
        "completed",
        "the rep completed the task in the CRM; crmsync sends no more reminders for it",
    ),
    "dismissed": (
        "dismissed",
        "the rep dismissed the task in the CRM; crmsync sends no reminders for it and opens no "
        "new task for this finding until the deal changes",
    ),
    "moved": (
        "kept",
        "the rep moved the due date to {day}; crmsync keeps it and sends no reminder before then",
    ),
    "cleared": (
        "kept",
        "the rep removed the due date; crmsync keeps it so and will not move it again",
    ),
}


@dataclass
class Verdict:
    """What reading the tasks back decided: row moves, and tasks now left to their reps."""

    changes: list[Transition] = field(default_factory=list)
    marks: dict[str, tuple[str, AuditEntry]] = field(default_factory=dict)  # task key -> why
    completed: int = 0  # completions found done already (nothing to write)
    updated: int = 0  # due date moves found made already
    kept: int = 0  # updates left undone because of what a rep did


def judge(
    rows: Sequence[OutboxRow],
    states: dict[str, TaskState],
    creates: dict[str, OutboxRow],
    dues: dict[str, dict[str, Any]],
    now: datetime,
    snoozed: dict[str, str] | None = None,
) -> Verdict:
    """Decide each task.due / task.complete row (its payload carries `task_id`) from its task
    as the CRM holds it (`states`; absent = deleted). `creates` are the tasks' create rows and
    `dues` the last due-date move crmsync made to each task (see store.rep_tasks); `snoozed`
    the day a rep moved a task to, already kept (reminders resume once it has passed, so the
    CRM holding that day is no new move)."""
    out = Verdict()
    for r in rows:
        task_key = str(r.payload["task_key"])
        state = states.get(str(r.payload["task_id"]))
        create = creates.get(task_key)
        if state is None:
            out.changes.append(Transition(r.key, "skipped", detail=DELETED[r.kind]))
            out.kept += 1
            _mark(out, create, "deleted", now)
        elif state.completed:
            if r.kind == "task.complete":
                out.changes.append(Transition(r.key, "confirmed", detail=ALREADY_COMPLETED))
                out.completed += 1
                if r.state == "planned":  # crmsync never sent it: the rep closed the task
                    _mark(out, create, "completed", now)
            else:
                out.changes.append(Transition(r.key, "skipped", detail=REP_COMPLETED))
                out.kept += 1
                _mark(out, create, "completed", now)
        elif state.dismissed and r.kind == "task.due":
            out.changes.append(Transition(r.key, "skipped", detail=REP_DISMISSED))
            out.kept += 1
            _mark(out, create, "dismissed", now)
        elif r.kind == "task.due":
            if _rep_day(state, r.payload) is None:  # an earlier send of this very move landed
                out.changes.append(Transition(r.key, "confirmed", detail=ALREADY_MOVED))
                out.updated += 1
                continue
            written = dues.get(task_key) or (create.payload if create is not None else {})
            day = _rep_day(state, written)
            if day and (snoozed or {}).get(task_key) == day:
                day = None  # the rep's date, kept until it passed: the reminder goes on
            if day is not None:
                detail = MOVED.format(day=day) if day else CLEARED
                out.changes.append(Transition(r.key, "skipped", detail=detail))
                out.kept += 1
                _mark(out, create, f"moved:{day}" if day else "cleared", now, day=day)
    return out


def _rep_day(state: TaskState, written: dict[str, Any]) -> str | None:
    """The task's due day as the CRM holds it when it differs from the due crmsync `written`
    (a payload with due_date, and due_at for a CRM that keeps a moment), else None; "" when
    the CRM holds no due date at all now."""
    if state.due_at is not None and written.get("due_at"):
        mine = datetime.fromisoformat(str(written["due_at"]))
        if state.due_at == mine:
            return None
        return state.due_at.astimezone(mine.tzinfo).date().isoformat()
    if state.due_date is not None and written.get("due_date"):
        if state.due_date == date.fromisoformat(str(written["due_date"])):
            return None
        return state.due_date.isoformat()
    if written.get("due_date") or written.get("due_at"):
        return ""
    return None


def _mark(out: Verdict, create: OutboxRow | None, why: str, now: datetime, day: str = "") -> None:
    if create is None or create.key in out.marks:
        return
    state, detail = ON_TASK[why.partition(":")[0]]
    out.marks[create.key] = (why, AuditEntry.of(create, state, now, detail.format(day=day)))
