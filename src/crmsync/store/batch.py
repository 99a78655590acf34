"""The write path of a sync: one batch of records, history, set-asides and the cursor at once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter, itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from crmsync.model import Opportunity
from crmsync.model.records import (
    HISTORY_FIELDS,
    ORIGINS,
    BatchResult,
    Cursor,
    HistoryRow,
    HistoryTuple,
    SetAside,
    Summarizer,
)
from crmsync.store import codec, fences, summaries
from crmsync.store.engine import chunks, execute_many, insert_ignoring_duplicates, upsert
from crmsync.store.schema import field_history, opportunities, sync_cursors
from crmsync.store.schema import set_aside as set_aside_table

_OPP_COLUMNS = [opportunities.c[name] for name in codec.FIELD_NAMES]
_UPDATED_ON_CONFLICT = [
    c.name for c in opportunities.columns if c.name not in ("key", "first_seen_at")
]
# Order of the values in a written row: the record's fields, then what the store adds.
_ROW_NAMES = (*codec.FIELD_NAMES, "key", "deleted_at", "first_seen_at", "synced_at")
_DELETED_AT = codec.FIELD_NAMES.index("deleted")
_KEY_AT = _ROW_NAMES.index("key")


@dataclass(frozen=True)
class Batch:
    """Everything one apply_batch call was given."""

    connection: str
    obj: str
    opportunities: Sequence[Opportunity]
    deleted_ids: Sequence[str]
    history: Sequence[HistoryRow]
    set_aside: Sequence[SetAside]
    cursor: Cursor | None
    observed_at: datetime
    summarizer: Summarizer | None = None


def apply(conn: Connection, batch: Batch) -> BatchResult:
    """Write the batch over a connection already inside its transaction."""
    dialect = conn.dialect.name
    prefix = batch.connection + ":"
    _check(batch, prefix)
    fences.check(conn)  # a job another worker took over writes no page and moves no cursor
    latest, records = _latest_by_key(batch)
    stored = _stored(conn, list(latest))

    rows: list[tuple[Any, ...]] = []
    observed: list[codec.HistoryValues] = []
    unchanged: list[str] = []
    inserted = 0
    for key, new in latest.items():
        old, deleted_at = stored.get(key, (None, None))
        if old == new:
            unchanged.append(key)
            continue
        if old is None:
            inserted += 1
            observed.extend(codec.first_history(key, new))
        else:
            observed.extend(codec.changed_history(key, old, new))
        rows.append(_row(key, new, deleted_at, batch.observed_at))

    if rows:
        stmt = upsert(dialect, opportunities, ["key"], _UPDATED_ON_CONFLICT)
        execute_many(conn, stmt, _ROW_NAMES, rows)
    for part in chunks(unchanged):
        conn.execute(_TOUCH, {"keys": part, "observed_at": batch.observed_at})
    deleted = _mark_deleted(conn, [prefix + i for i in batch.deleted_ids], batch.observed_at)
    crm = list(map(_HISTORY_VALUES, batch.history))
    in_hand = {}
    if batch.summarizer is not None:  # before this batch's history is in: whose is all here
        added = [key for key in latest if key not in stored]
        has = summaries.with_history(conn, added)
        in_hand = _whole_history(added, records, has, observed, crm)
    history_rows = _add_history(conn, dialect, [*observed, *crm])
    # a summary reads the record and its whole history: remake it where either changed
    summaries.remake(
        conn,
        [r[_KEY_AT] for r in rows] + [h.key for h in batch.history],
        batch.summarizer,
        in_hand,
    )
    _set_aside(conn, dialect, batch)
    if batch.cursor is not None:
        _store_cursor(conn, dialect, batch)
    return BatchResult(inserted, len(rows) - inserted, len(unchanged), deleted, history_rows)


# A HistoryRow's values in codec.HISTORY_NAMES order, in one C call a row.
_HISTORY_VALUES = attrgetter(*codec.HISTORY_NAMES)
_FIELDS, _ORIGINS = frozenset(HISTORY_FIELDS), frozenset(ORIGINS)


def _check(batch: Batch, prefix: str) -> None:
    """Refuse history that belongs elsewhere or cannot be compared, before anything is written."""
    for h in batch.history:
        if (
            h.changed_at.tzinfo is UTC  # most rows: a CRM's stamps are parsed as UTC
            and h.field in _FIELDS
            and h.origin in _ORIGINS
            and h.key.startswith(prefix)
        ):
            continue
        if not h.key.startswith(prefix):
            raise ValueError(f"history for {h.key} given in a batch for {batch.connection!r}")
        if h.field not in HISTORY_FIELDS:
            raise ValueError(f"history for {h.key}: {h.field!r} is not a tracked field")
        if h.origin not in ORIGINS:
            raise ValueError(f"history for {h.key}: origin must be one of {', '.join(ORIGINS)}")
        if h.changed_at.tzinfo is None or h.changed_at.utcoffset() is None:
            raise ValueError(f"history for {h.key}: changed_at is a naive datetime")
    if batch.observed_at.tzinfo is None or batch.observed_at.utcoffset() is None:
        raise ValueError("observed_at is a naive datetime")


def _latest_by_key(
    batch: Batch,
) -> tuple[dict[str, tuple[Any, ...]], dict[str, Opportunity]]:
    """Checked values per key, and the record; a record given twice counts once, as its newest
    version."""
    latest: dict[str, tuple[Any, ...]] = {}
    records: dict[str, Opportunity] = {}
    custom = None  # the last record's custom values: most deals' are alike, encoded once
    for opp in batch.opportunities:
        key = opp.key
        if key in records and opp.modified_at < records[key].modified_at:
            continue
        values = latest[key] = codec.values_of(opp, batch.connection, like=custom)
        custom = values[codec.CUSTOM_AT]
        records[key] = opp
    return latest, records


def _whole_history(
    new: Sequence[str],
    records: dict[str, Opportunity],
    has_history: set[str],
    *written: Sequence[codec.HistoryValues],
) -> dict[str, tuple[Opportunity, list[HistoryTuple]]]:
    """The new deals with no stored history, each with its whole history: the rows this batch
    writes for it, in the order written, less those the unique entry index would skip (the
    summary is then what `summaries.remake` would make from the store, without reading it).
    `written` is the observed rows (one call of codec's first or changed history per deal),
    then the CRM's."""
    fresh = {key for key in new if key not in has_history}
    if not fresh:
        return {}
    found: dict[str, tuple[Opportunity, list[HistoryTuple]]] = {
        key: (records[key], []) for key in fresh
    }
    make = HistoryTuple._make
    if not any(written[1:]):  # a new deal's observed rows, one a field: the index skips none
        for row in written[0]:
            whole = found.get(row[0])
            if whole is not None:
                whole[1].append(make(row))
        return found
    seen: set[tuple[str, str, datetime, str]] = set()
    for rows in written:
        for row in rows:
            key = row[0]
            if key not in fresh:
                continue
            entry = (key, row[1], row[4], row[3] or "")
            if entry in seen:
                continue
            seen.add(entry)
            found[key][1].append(make(row))
    return found


def _stored(
    conn: Connection, keys: Sequence[str]
) -> dict[str, tuple[tuple[Any, ...], datetime | None]]:
    """The stored values (and deleted_at) of those keys that exist, read in few SELECTs."""
    found: dict[str, tuple[tuple[Any, ...], datetime | None]] = {}
    n = len(_OPP_COLUMNS)
    for part in chunks(keys):
        for row in conn.execute(_STORED, {"keys": part}):
            found[row[-1]] = (tuple(row[:n]), row[n])
    return found


# Statements made once (a page's own, built and keyed anew, cost a millisecond or two a page);
# their IN lists are expanding parameters.
_KEYS: sa.BindParameter[list[str]] = sa.bindparam("keys", expanding=True)
_STORED = sa.select(*_OPP_COLUMNS, opportunities.c.deleted_at, opportunities.c.key).where(
    opportunities.c.key.in_(_KEYS)
)
_TOUCH = (
    sa.update(opportunities)
    .where(opportunities.c.key.in_(_KEYS))
    .values(synced_at=sa.bindparam("observed_at"))
)
_DELETE = (
    sa.update(opportunities)
    .where(opportunities.c.key.in_(_KEYS), opportunities.c.deleted.is_(False))
    .values(
        deleted=True,
        deleted_at=sa.bindparam("observed_at"),
        synced_at=sa.bindparam("observed_at"),
    )
)
_ANY_HELD = (
    sa.select(sa.literal(1))
    .select_from(set_aside_table)
    .where(set_aside_table.c.connection == sa.bindparam("connection"))
    .limit(1)
)
_FORGET = sa.delete(set_aside_table).where(
    set_aside_table.c.connection == sa.bindparam("connection"),
    set_aside_table.c.native_id.in_(sa.bindparam("ids", expanding=True)),
)


def _row(
    key: str, values: tuple[Any, ...], deleted_at: datetime | None, observed_at: datetime
) -> tuple[Any, ...]:
    """The values to write, in _ROW_NAMES order; deleted_at is kept from the first deletion."""
    deleted = values[_DELETED_AT]
    return (
        *values,
        key,
        (deleted_at or observed_at) if deleted else None,
        observed_at,
        observed_at,
    )


def _mark_deleted(conn: Connection, keys: Sequence[str], observed_at: datetime) -> int:
    """Mark stored, live records deleted (unknown keys do nothing); returns how many."""
    deleted = 0
    for part in chunks(keys):
        deleted += conn.execute(_DELETE, {"keys": part, "observed_at": observed_at}).rowcount
    return deleted


def _add_history(conn: Connection, dialect: str, rows: Sequence[codec.HistoryValues]) -> int:
    """Insert history rows, skipping ones already there; returns how many were added.

    In key order (stable: a deal's rows keep theirs, so the ids that order equal stamps and the
    duplicate kept are as given): a CRM's history page touches deals all over the index, and
    walking it in order keeps its pages in cache."""
    stmt = insert_ignoring_duplicates(dialect, field_history)
    return execute_many(conn, stmt, codec.HISTORY_NAMES, sorted(rows, key=_BY_KEY))


_BY_KEY = itemgetter(0)


def _set_aside(conn: Connection, dialect: str, batch: Batch) -> None:
    """Keep the records that failed to normalize; forget those that now did, or are gone."""
    if batch.set_aside:
        conn.execute(
            upsert(
                dialect, set_aside_table, ["connection", "native_id"], ["reason", "raw", "seen_at"]
            ),
            [
                {
                    "connection": batch.connection,
                    "native_id": s.native_id,
                    "reason": s.reason,
                    "raw": s.raw,
                    "seen_at": batch.observed_at,
                }
                for s in batch.set_aside
            ],
        )
    if conn.scalar(_ANY_HELD, {"connection": batch.connection}) is None:
        return
    fine = sorted({o.native_id for o in batch.opportunities} | set(batch.deleted_ids))
    for part in chunks(fine):
        conn.execute(_FORGET, {"connection": batch.connection, "ids": part})


def _store_cursor(conn: Connection, dialect: str, batch: Batch) -> None:
    """Move the object's cursor; being in the batch's transaction, it moves only with it."""
    assert batch.cursor is not None
    conn.execute(
        upsert(
            dialect, sync_cursors, ["connection", "object"], ["value", "ids_at_value", "updated_at"]
        ),
        {
            "connection": batch.connection,
            "object": batch.obj,
            "value": batch.cursor.value,
            "ids_at_value": list(batch.cursor.ids_at_value),
            "updated_at": batch.observed_at,
        },
    )
