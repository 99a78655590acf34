"""Set-based statements of the write-back bookkeeping: one statement for many outbox moves,
audit entries or flag-state deletions, through the driver's executemany.

SQLAlchemy's per-row parameter handling costs more than the database's work on these small
rows, so the statements are compiled once per call and the rows passed to the driver as is
(each value through its column type's bind processing, as SQLAlchemy would do).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from operator import attrgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from crmsync.store.engine import execute_many
from crmsync.store.schema import audit, flag_state, outbox

__all__ = ["AUDIT_COLUMNS", "forget_flags", "move_each", "move_many", "write_audit"]

AUDIT_COLUMNS = [c.name for c in audit.columns if c.name != "id"]
_audit_values = attrgetter(*AUDIT_COLUMNS)


def write_audit(conn: Connection, entries: Sequence[Any]) -> None:
    """Insert audit entries (objects with the audit columns as attributes) in one statement,
    inside the caller's transaction."""
    if entries:
        execute_many(conn, sa.insert(audit), AUDIT_COLUMNS, [_audit_values(e) for e in entries])


def _move_statement(names: Sequence[str]) -> sa.Update:
    """UPDATE outbox SET the named columns WHERE key, state and attempts are as read."""
    return (
        sa.update(outbox)
        .where(
            outbox.c.key == sa.bindparam("b_key"),
            outbox.c.state == sa.bindparam("b_state"),
            outbox.c.attempts == sa.bindparam("b_attempts"),
        )
        .values(
            updated_at=sa.bindparam("new_updated_at", type_=outbox.c.updated_at.type),
            **{name: sa.bindparam(f"new_{name}", type_=outbox.c[name].type) for name in names},
        )
    )


def move_many(
    conn: Connection, names: Sequence[str], moves: Sequence[Mapping[str, Any]], now: datetime
) -> int:
    """Compare-and-set moves that change the same columns, in one executemany; each move holds
    `b_key`, `b_state`, `b_attempts` (the row as read) and `new_<column>` values. Returns how
    many rows moved (the driver's summed rowcount, reliable on sqlite3 and psycopg)."""
    if not moves:
        return 0
    dialect = conn.dialect
    compiled = _move_statement(names).compile(dialect=dialect)
    order = list(compiled.positiontup or ()) if compiled.positional else list(compiled.binds)
    processors = {
        name: processor
        for name in order
        if (processor := compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
    }
    stamp = processors.pop("new_updated_at", lambda v: v)(now)
    params: list[Any] = []
    for move in moves:
        values = [
            stamp if name == "new_updated_at" else move[name] for name in order
        ]  # fmt: skip
        for j, name in enumerate(order):
            if name in processors and values[j] is not None:
                values[j] = processors[name](values[j])
        params.append(
            tuple(values) if compiled.positional else dict(zip(order, values, strict=True))
        )
    return int(conn.exec_driver_sql(str(compiled), params).rowcount)


def move_each(
    conn: Connection, names: Sequence[str], move: Mapping[str, Any], now: datetime
) -> bool:
    """One compare-and-set move, with RETURNING (rowcount is not reliable across drivers):
    whether the row moved."""
    stmt = _move_statement(names).returning(outbox.c.key)
    return conn.execute(stmt, {**move, "new_updated_at": now}).first() is not None


def forget_flags(conn: Connection, where: Sequence[tuple[str, str, str]]) -> None:
    """Drop flag state of (connection, opportunity key, field)s, in one executemany."""
    if where:
        conn.execute(
            sa.delete(flag_state).where(
                flag_state.c.connection == sa.bindparam("b_connection"),
                flag_state.c.opp_key == sa.bindparam("b_opp_key"),
                flag_state.c.field == sa.bindparam("b_field"),
            ),
            [{"b_connection": c, "b_opp_key": k, "b_field": f} for c, k, f in dict.fromkeys(where)],
        )
