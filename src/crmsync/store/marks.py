"""Schedule marks: the last scheduled time the tick deferred each unit of work for.

Several workers may run the tick; each mark moves by compare-and-set (`advance`), so of two
ticks that saw the same due time only one defers the job.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from crmsync.store.engine import insert_ignoring_duplicates
from crmsync.store.schema import schedule_marks

if TYPE_CHECKING:
    from crmsync.store.store import Store

__all__ = ["advance", "advance_many", "read_all"]


def read_all(store: Store) -> dict[str, datetime]:
    """Every unit of work's mark, by key."""
    with store.reading("read schedule marks") as conn:
        rows = conn.execute(sa.select(schedule_marks.c.key, schedule_marks.c.due_at))
        return {r.key: r.due_at for r in rows}


def advance(store: Store, key: str, seen: datetime | None, due: datetime) -> bool:
    """Move `key`'s mark from `seen` (None: no mark yet) to `due`; False when another tick
    moved it first (that tick defers the job, this one does not)."""
    with store.writing("move schedule mark") as conn:
        if seen is None:
            stmt = insert_ignoring_duplicates(conn.dialect.name, schedule_marks)
            done = conn.execute(stmt.values(key=key, due_at=due).returning(schedule_marks.c.key))
        else:
            done = conn.execute(
                sa.update(schedule_marks)
                .where(schedule_marks.c.key == key, schedule_marks.c.due_at == seen)
                .values(due_at=due)
                .returning(schedule_marks.c.key)
            )
        return done.first() is not None


def advance_many(store: Store, moves: list[tuple[str, datetime | None, datetime]]) -> set[str]:
    """`advance` for many keys, (key, seen, due) each, in one transaction: the keys whose mark
    this call moved (a key another tick moved first is left out)."""
    moved: set[str] = set()
    if not moves:
        return moved
    with store.writing("move schedule marks") as conn:
        insert = insert_ignoring_duplicates(conn.dialect.name, schedule_marks)
        update = (
            sa.update(schedule_marks)
            .where(
                schedule_marks.c.key == sa.bindparam("k"),
                schedule_marks.c.due_at == sa.bindparam("seen"),
            )
            .values(due_at=sa.bindparam("due"))
            .returning(schedule_marks.c.key)
        )
        for key, seen, due in moves:
            if seen is None:
                done = conn.execute(
                    insert.values(key=key, due_at=due).returning(schedule_marks.c.key)
                )
            else:
                done = conn.execute(update, {"k": key, "seen": seen, "due": due})
            if done.first() is not None:
                moved.add(key)
    return moved
