"""Set-based statements of the write-back bookkeeping: one statement for many outbox moves,
audit entries or flag-state deletions, through the driver's executemany.

SQLAlchemy's per-row parameter handling costs more than the database's work on these small
rows, so the statements are compiled once per call and the rows passed to the driver as is
(each value through its column type's bind processing, as SQLAlchemy would do).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from operator import attrgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from crmsync.store.engine import execute_many
from crmsync.store.schema import audit, flag_state, outbox

__all__ = [
    "AUDIT_COLUMNS",
    "audit_values",
    "forget_flags",
    "move_each",
    "move_many",
    "write_audit",
    "write_audit_rows",
]

AUDIT_COLUMNS = [c.name for c in audit.columns if c.name != "id"]
audit_values = attrgetter(*AUDIT_COLUMNS)  # an entry object's audit row, in AUDIT_COLUMNS order
# what a move compares: the row as it was read
_WHERE = ("key", "state", "attempts")


def write_audit(conn: Connection, entries: Sequence[Any]) -> None:
    """Insert audit entries (objects with the audit columns as attributes) in one statement,
    inside the caller's transaction."""
    write_audit_rows(conn, [audit_values(e) for e in entries])


def write_audit_rows(conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Insert audit rows (tuples in AUDIT_COLUMNS order) in one statement: no entry objects
    for the thousands a batch of moves writes."""
    if rows:
        execute_many(conn, sa.insert(audit), AUDIT_COLUMNS, rows)


def _move_statement(names: Sequence[str]) -> sa.Update:
    """UPDATE outbox SET the named columns WHERE key, state and attempts are as read."""
    return (
        sa.update(outbox)
        .where(*(outbox.c[name] == sa.bindparam(f"b_{name}") for name in _WHERE))
        .values(
            updated_at=sa.bindparam("new_updated_at", type_=outbox.c.updated_at.type),
            **{name: sa.bindparam(f"new_{name}", type_=outbox.c[name].type) for name in names},
        )
    )


_Compiled = tuple[str, bool, list[str], list[int], list[tuple[int, Any]]]


@lru_cache(maxsize=64)
def _compiled_move(names: tuple[str, ...], dialect: Dialect) -> _Compiled:
    """A move statement's SQL, whether its parameters are positional, their names, where each
    comes from in a move's values (names' new values, updated_at, then key, state, attempts),
    and the bind processors by source position: made once per column set and dialect."""
    compiled = _move_statement(names).compile(dialect=dialect)
    order = list(compiled.positiontup or ()) if compiled.positional else list(compiled.binds)
    sources = [*(f"new_{n}" for n in names), "new_updated_at", *(f"b_{n}" for n in _WHERE)]
    at = [sources.index(name) for name in order]
    processors = [
        (sources.index(name), processor)
        for name in sources
        if (processor := compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
    ]
    return str(compiled), bool(compiled.positional), order, at, processors


def move_many(
    conn: Connection, names: Sequence[str], moves: Sequence[Sequence[Any]], now: datetime
) -> int:
    """Compare-and-set moves that change the same columns, in one executemany; each move is a
    tuple: the new values of `names`, then the row's key, state and attempts as read. Returns
    how many rows moved (the driver's summed rowcount, reliable on sqlite3 and psycopg)."""
    if not moves:
        return 0
    sql, positional, order, at, processors = _compiled_move(tuple(names), conn.dialect)
    width = len(names)
    params: list[Any] = []
    for move in moves:
        values = [*move[:width], now, *move[width:]]
        for j, processor in processors:
            if values[j] is not None:
                values[j] = processor(values[j])
        picked = [values[j] for j in at]
        params.append(tuple(picked) if positional else dict(zip(order, picked, strict=True)))
    return int(conn.exec_driver_sql(sql, params).rowcount)


def move_each(conn: Connection, names: Sequence[str], move: Sequence[Any], now: datetime) -> bool:
    """One compare-and-set move (a tuple as in `move_many`), with RETURNING (rowcount is not
    reliable across drivers): whether the row moved."""
    stmt = _move_statement(names).returning(outbox.c.key)
    width = len(names)
    params = {f"new_{n}": v for n, v in zip(names, move[:width], strict=True)}
    params.update({f"b_{n}": v for n, v in zip(_WHERE, move[width:], strict=True)})
    return conn.execute(stmt, {**params, "new_updated_at": now}).first() is not None


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
