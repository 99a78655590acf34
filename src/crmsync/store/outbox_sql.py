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
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from crmsync.store import fences
from crmsync.store.engine import chunks
from crmsync.store.schema import audit, flag_state, opportunities, outbox

if TYPE_CHECKING:
    from crmsync.store.outbox import OutboxRow, Transition
    from crmsync.store.store import Store

__all__ = [
    "AUDIT_COLUMNS",
    "audit_row",
    "audit_values",
    "forget_flags_of",
    "move_each",
    "move_many",
    "record_stamps",
    "transition",
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
    for the thousands a batch of moves writes. Only the time stamp needs converting for the
    driver, and a batch's rows share one: it is converted once per distinct value."""
    if not rows:
        return
    sql, positional, convert = _compiled_audit(conn.dialect)
    last: Any = _NOTHING
    bound: Any = None
    params: list[Any] = []
    for row in rows:
        at = row[0]
        if at is not last:
            last, bound = at, convert(at) if convert is not None and at is not None else at
        values = (bound, *row[1:])
        params.append(values if positional else dict(zip(AUDIT_COLUMNS, values, strict=True)))
    conn.exec_driver_sql(sql, params)


_NOTHING = object()


@lru_cache(maxsize=8)
def _compiled_audit(dialect: Dialect) -> tuple[str, bool, Any]:
    """The audit INSERT's SQL for a dialect, whether it is positional (in AUDIT_COLUMNS order
    then), and the bind processor of its time stamp: compiled once, not per batch."""
    # inline: no RETURNING of the new ids (PostgreSQL would add one), nobody reads them
    compiled = sa.insert(audit).inline().compile(dialect=dialect, column_keys=AUDIT_COLUMNS)
    if compiled.positional and list(compiled.positiontup or ()) != AUDIT_COLUMNS:
        raise AssertionError("audit INSERT parameters out of column order")  # never: one table
    for name in AUDIT_COLUMNS[1:]:  # only `at` may need converting (texts otherwise)
        if audit.c[name].type.dialect_impl(dialect).bind_processor(dialect) is not None:
            raise AssertionError(f"audit column {name} needs bind processing")
    convert = audit.c.at.type.dialect_impl(dialect).bind_processor(dialect)
    return str(compiled), bool(compiled.positional), convert


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
    stamp: Any = now  # the same for every move: bound once
    for j, processor in processors:
        if j == width:
            stamp = processor(now)
    own = [(j, p) for j, p in processors if j != width]
    pick = itemgetter(*at) if len(at) > 1 else (lambda v: (v[at[0]],))
    params: list[Any] = []
    for move in moves:
        values: Any = (*move[:width], stamp, *move[width:])
        if own:
            values = list(values)
            for j, processor in own:
                if values[j] is not None:
                    values[j] = processor(values[j])
        picked = pick(values)
        params.append(picked if positional else dict(zip(order, picked, strict=True)))
    return int(conn.exec_driver_sql(sql, params).rowcount)


def move_each(conn: Connection, names: Sequence[str], move: Sequence[Any], now: datetime) -> bool:
    """One compare-and-set move (a tuple as in `move_many`), with RETURNING (rowcount is not
    reliable across drivers): whether the row moved."""
    stmt = _move_statement(names).returning(outbox.c.key)
    width = len(names)
    params = {f"new_{n}": v for n, v in zip(names, move[:width], strict=True)}
    params.update({f"b_{n}": v for n, v in zip(_WHERE, move[width:], strict=True)})
    return conn.execute(stmt, {**params, "new_updated_at": now}).first() is not None


def forget_flags_of(conn: Connection, where: Sequence[tuple[str, str, str]]) -> None:
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


def record_stamps(store: Store, keys: Sequence[str]) -> dict[str, tuple[bool, datetime]]:
    """Per stored record key, (deleted, modified_at): all a flag write's check needs of the
    record, without reading and decoding the whole records."""
    out: dict[str, tuple[bool, datetime]] = {}
    cols = (opportunities.c.key, opportunities.c.deleted, opportunities.c.modified_at)
    with store.reading("read record stamps") as conn:
        for chunk in chunks(keys):
            query = sa.select(*cols).where(opportunities.c.key.in_(list(chunk)))
            for key, deleted, modified_at in conn.execute(query):
                out[key] = (bool(deleted), modified_at)
    return out


def transition(
    store: Store,
    rows: dict[str, OutboxRow],
    changes: Sequence[Transition],
    now: datetime,
    *,
    forget_flags: Sequence[tuple[str, str, str]] = (),
) -> set[str]:
    """Move outbox rows to new states, with their audit entries, in one transaction.

    Each move is a compare-and-set: the row changes only if it is still in the state (and at
    the attempt count) it was read in, so two processes never both move one row. A row someone
    else moved is left as they left it, gets no audit entry, and is dropped from `rows` (the
    caller's pass no longer holds it); its key is returned among the lost ones.

    `forget_flags` drops flag state for (connection, opportunity, field) so that the next plan
    looks at those flags afresh (a write skipped because the record changed in the CRM).
    """
    if not changes and not forget_flags:
        return set()
    moves = _plan_moves(rows, changes)
    entries = [audit_row(row, ch.state, now, ch.detail or ch.error) for row, ch, _, _ in moves]
    lost: set[str] = set()
    try:
        with store.writing("update outbox") as conn:
            fences.check(conn)  # a job another worker took over claims and moves nothing
            by_columns: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
            for _, _, names, params in moves:
                group = by_columns.get(names)
                if group is None:
                    group = by_columns[names] = []
                group.append(params)
            moved = sum(move_many(conn, n, group, now) for n, group in by_columns.items())
            if moved != len(moves):
                raise _Taken  # another process moved some: roll back, then one by one
            forget_flags_of(conn, forget_flags)
            write_audit_rows(conn, entries)
    except _Taken:
        with store.writing("update outbox") as conn:
            fences.check(conn)
            kept = []
            for move, entry in zip(moves, entries, strict=True):
                if move[0].key in lost or not move_each(conn, move[2], move[3], now):
                    lost.add(move[0].key)  # and any later move of it in this call
                else:
                    kept.append(entry)
            forget_flags_of(conn, forget_flags)
            write_audit_rows(conn, kept)
    for row, ch, _, _ in moves:
        if row.key not in lost:
            row.state = ch.state
            if ch.attempts is not None:
                row.attempts = ch.attempts
            if ch.crm_id is not None:
                row.crm_id = ch.crm_id
            if ch.error is not None or ch.state == "confirmed":
                row.error = ch.error
    for key in lost:
        rows.pop(key, None)
    return lost


class _Taken(Exception):
    """Some outbox row was not in the state it was read in: the batch is redone row by row."""


# the columns a change sets, by (sets attempts, sets crm_id, sets error)
_SETS = {
    (a, c, e): ("state", *(["attempts"] if a else []), *(["crm_id"] if c else []),
                *(["error"] if e else []))
    for a in (False, True) for c in (False, True) for e in (False, True)
}  # fmt: skip


def _plan_moves(
    rows: dict[str, OutboxRow], changes: Sequence[Transition]
) -> list[tuple[OutboxRow, Transition, tuple[str, ...], tuple[Any, ...]]]:
    """Each change as (row, change, columns it sets, the move: their new values, then the key,
    state and attempts it compares with), the row as it will be after the earlier changes of
    this call (a row may move twice in one call)."""
    at: dict[str, tuple[str, int]] = {}
    out = []
    for ch in changes:
        key, state, attempts, crm_id, error = ch.key, ch.state, ch.attempts, ch.crm_id, ch.error
        row = rows[key]
        was = at.get(key)
        old_state, old_attempts = (row.state, row.attempts) if was is None else was
        clear = error is not None or state == "confirmed"
        if attempts is None and crm_id is None and not clear:  # the commonest: the state alone
            out.append((row, ch, _SETS[False, False, False], (state, key, old_state, old_attempts)))
        else:
            values = (
                state,
                *((attempts,) if attempts is not None else ()),
                *((crm_id,) if crm_id is not None else ()),
                *((error,) if clear else ()),
            )
            names = _SETS[attempts is not None, crm_id is not None, clear]
            out.append((row, ch, names, (*values, key, old_state, old_attempts)))
        at[key] = (state, old_attempts if attempts is None else attempts)
    return out


def audit_row(row: OutboxRow, state: str, at: datetime, detail: str | None) -> tuple[Any, ...]:
    """An outbox row's audit entry as a row in AUDIT_COLUMNS order (as AuditEntry.of, with no
    object in between)."""
    return (at, row.key, row.connection, row.workflow, row.rule, row.opp_key, row.native_id,
            row.kind, state, detail)  # fmt: skip
