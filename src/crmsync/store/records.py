"""Reading the stored records and their field history (inside the caller's connection: the
`Store` methods of the same names)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from crmsync.model import Opportunity
from crmsync.model.records import HistoryRow, HistoryTuple, SetAside
from crmsync.store import codec, columns
from crmsync.store.engine import chunks
from crmsync.store.schema import field_history, opportunities
from crmsync.store.schema import set_aside as set_aside_table
from crmsync.store.types import as_utc


def get(conn: Connection, key: str) -> Opportunity | None:
    """The stored opportunity with that key (deleted ones too), or None."""
    row = conn.execute(sa.select(*columns.OPP_COLUMNS).where(opportunities.c.key == key)).first()
    return None if row is None else codec.opportunity(row)


def get_many(conn: Connection, keys: Sequence[str]) -> dict[str, Opportunity]:
    """The stored opportunities with these keys (those that exist), one read per CHUNK keys."""
    out: dict[str, Opportunity] = {}
    for chunk in chunks(keys):
        query = sa.select(*columns.OPP_COLUMNS).where(opportunities.c.key.in_(list(chunk)))
        for row in conn.execute(query):
            opp = codec.opportunity(row)
            out[opp.key] = opp
    return out


def iter_opportunities(
    conn: Connection, connection: str | None, include_deleted: bool, batch_size: int
) -> Iterator[Opportunity]:
    """Every stored opportunity, ordered by key, streamed batch_size rows at a time."""
    stmt = sa.select(*columns.OPP_RAW_COLUMNS).order_by(opportunities.c.key)
    stmt = columns.filtered(stmt, connection, include_deleted)
    decode = codec.opportunity_from_raw
    result = conn.execution_options(yield_per=batch_size).execute(stmt)
    for part in result.partitions():
        for row in part:
            yield decode(row)


def iter_values(
    conn: Connection,
    connection: str | None,
    names: Sequence[str],
    include_deleted: bool,
    batch_size: int,
) -> Iterator[tuple[Any, ...]]:
    """Some columns of every stored opportunity, in key order, as tuples."""
    stmt = sa.select(*(opportunities.c[name] for name in names)).order_by(opportunities.c.key)
    stmt = columns.filtered(stmt, connection, include_deleted)
    result = conn.execution_options(yield_per=batch_size).execute(stmt)
    for part in result.partitions():
        for row in part:
            yield tuple(row)


def native_ids(conn: Connection, connection: str, include_deleted: bool) -> set[str]:
    """The CRM ids stored for a connection."""
    stmt = columns.filtered(sa.select(opportunities.c.native_id), connection, include_deleted)
    return set(conn.scalars(stmt))


def count(conn: Connection, connection: str | None, include_deleted: bool) -> int:
    """How many opportunities are stored (for one connection, or all)."""
    stmt = columns.filtered(sa.select(sa.func.count()), connection, include_deleted)
    return int(conn.scalar(stmt) or 0)


def history(conn: Connection, key: str, field: str | None) -> list[HistoryRow]:
    """An opportunity's field changes (of one field, or all), oldest first."""
    stmt = sa.select(*columns.HISTORY_COLUMNS).where(field_history.c.key == key)
    if field is not None:
        stmt = stmt.where(field_history.c.field == field)
    stmt = stmt.order_by(field_history.c.changed_at, field_history.c.id)
    return [HistoryRow(*row) for row in conn.execute(stmt)]


def iter_history(
    conn: Connection, connection: str | None, fields: Sequence[str] | None
) -> Iterator[HistoryRow]:
    """Every history row (of one connection, of some fields), by key then time, streamed."""
    stmt = columns.history_stream(columns.HISTORY_COLUMNS, connection, fields)
    result = conn.execution_options(yield_per=2000).execute(stmt)
    for part in result.partitions():
        for row in part:
            yield HistoryRow(*row)


def iter_history_tuples(
    conn: Connection, connection: str | None, fields: Sequence[str] | None, batch_size: int
) -> Iterator[HistoryTuple]:
    """`iter_history` as light tuples: time stamps converted in one step, no dataclass a row."""
    stmt = columns.history_stream(columns.HISTORY_RAW_COLUMNS, connection, fields)
    make = HistoryTuple._make
    result = conn.execution_options(yield_per=batch_size).execute(stmt)
    for part in result.partitions():
        for key, field, old, new, at, origin in part:
            yield make((key, field, old, new, as_utc(at), origin))


def find(conn: Connection, ref: str, limit: int) -> list[Opportunity]:
    """The opportunities `ref` names (deleted ones too), the first kind that matches: its key
    (``connection:native id``), its CRM id, else its name (case-insensitive), by key."""
    by = opportunities.c
    for where in (by.key == ref, by.native_id == ref, sa.func.lower(by.name) == ref.lower()):
        stmt = sa.select(*columns.OPP_COLUMNS).where(where).order_by(by.key).limit(limit)
        found = [codec.opportunity(row) for row in conn.execute(stmt)]
        if found:
            return found
    return []


def set_aside_rows(conn: Connection, connection: str | None) -> list[tuple[str, SetAside]]:
    """Records that could not be normalized, as (connection, record), by connection and id."""
    stmt = sa.select(set_aside_table).order_by(
        set_aside_table.c.connection, set_aside_table.c.native_id
    )
    if connection is not None:
        stmt = stmt.where(set_aside_table.c.connection == connection)
    return [
        (row.connection, SetAside(row.native_id, row.reason, row.raw)) for row in conn.execute(stmt)
    ]
