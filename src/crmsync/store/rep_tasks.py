"""What reps did to crmsync's tasks in the CRM, as the write-back read it back before changing
them: the due date crmsync last wrote to each task (to tell a rep's new date from its own), and
the record that a task is now the rep's (an episode mark and an audit entry on the task).

A task left to the rep gets no more reminders: the planner reads the episode's `left_to_rep`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmsync.store.engine import chunks
from crmsync.store.outbox import AuditEntry
from crmsync.store.outbox_sql import write_audit
from crmsync.store.schema import episodes, outbox

if TYPE_CHECKING:
    from crmsync.store.store import Store


def written_dues(
    store: Store, connection: str, tasks: Iterable[tuple[str, str]]
) -> dict[str, dict[str, Any]]:
    """Per task key, the payload of the last due-date move crmsync made to it (its latest
    confirmed task.due row); `tasks` are (task key, opportunity key). Tasks never moved are
    absent: their create row holds the due date crmsync wrote."""
    wanted = dict(tasks)
    out: dict[str, dict[str, Any]] = {}
    with store.reading("read due dates written") as conn:
        for chunk in chunks(sorted(set(wanted.values()))):
            rows = conn.execute(
                sa.select(outbox.c.payload)
                .where(
                    outbox.c.connection == connection,
                    outbox.c.kind == "task.due",
                    outbox.c.state == "confirmed",
                    outbox.c.opp_key.in_(chunk),
                )
                .order_by(outbox.c.seq)
            )
            for (payload,) in rows:  # in planning order: a later move replaces an earlier one
                key = str(payload.get("task_key"))
                if key in wanted:
                    out[key] = payload
    return out


def snoozed_days(store: Store, connection: str, task_keys: Iterable[str]) -> dict[str, str]:
    """Per task key, the day a rep moved the task to (its episode's mark `moved:<day>`)."""
    out: dict[str, str] = {}
    with store.reading("read snoozed tasks") as conn:
        for chunk in chunks(sorted(set(task_keys))):
            rows = conn.execute(
                sa.select(episodes.c.task_key, episodes.c.left_to_rep).where(
                    episodes.c.connection == connection,
                    episodes.c.task_key.in_(chunk),
                    episodes.c.left_to_rep.like("moved:%"),
                )
            )
            for key, why in rows:
                out[str(key)] = str(why).partition(":")[2]
    return out


def leave_to_rep(store: Store, connection: str, marks: dict[str, tuple[str, AuditEntry]]) -> None:
    """Record in one transaction that these tasks are the rep's now (task key -> why:
    "deleted", "completed", "moved:<day>", "cleared" or "dismissed", and the entry for the
    task's own audit trail): their episodes send no more reminders (a moved one: none before
    its day). A task already marked so gets no second entry."""
    if not marks:
        return
    by_why: dict[str, list[str]] = {}
    for key, (why, _) in marks.items():
        by_why.setdefault(why, []).append(key)
    with store.writing("leave tasks to reps") as conn:
        entries: list[AuditEntry] = []
        for why, keys in sorted(by_why.items()):
            for chunk in chunks(sorted(keys)):
                known = set(
                    conn.execute(
                        sa.select(episodes.c.task_key).where(
                            episodes.c.connection == connection,
                            episodes.c.task_key.in_(chunk),
                            episodes.c.left_to_rep == why,
                        )
                    ).scalars()
                )
                conn.execute(
                    sa.update(episodes)
                    .where(episodes.c.connection == connection, episodes.c.task_key.in_(chunk))
                    .values(left_to_rep=why)
                )
                entries.extend(marks[k][1] for k in chunk if k not in known)
        write_audit(conn, entries)
