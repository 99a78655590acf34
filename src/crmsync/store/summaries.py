"""Each deal's history summary, kept beside its history so that plans read one row per deal.

A summary is a function of the stored record and its whole history (and the stage mapping,
named by its version). It is remade in the same transaction as every write that changes either,
so a summary of the current version is never out of step with its history. A write made without
a summarizer drops the summaries of the deals it touched instead: out of date is allowed (plans
then read the history), wrong is not.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from crmsync.model import Opportunity
from crmsync.model.records import HistorySummary, HistoryTuple, Summarizer
from crmsync.store import codec
from crmsync.store.columns import HISTORY_ORDER, HISTORY_RAW_COLUMNS, OPP_RAW_COLUMNS, filtered
from crmsync.store.engine import chunks, execute_many, upsert
from crmsync.store.schema import field_history, history_summaries, opportunities
from crmsync.store.types import as_utc

NAMES = tuple(c.name for c in history_summaries.columns)
# What a reader selects besides the record: a summary's columns after `version`, undecoded.
VALUE_COLUMNS = [
    sa.type_coerce(c, sa.types.NullType()).label(f"summary_{c.name}")
    for c in history_summaries.columns
    if c.name not in ("key", "version")
]


def value_columns(stays: bool) -> list[Any]:
    """VALUE_COLUMNS, or all but the stays (`decode` then leaves them empty)."""
    return VALUE_COLUMNS if stays else VALUE_COLUMNS[:-1]


InHand = Mapping[str, tuple[Opportunity, Sequence[HistoryTuple]]]


def remake(
    conn: Connection,
    keys: Sequence[str],
    summarizer: Summarizer | None,
    in_hand: InHand | None = None,
) -> int:
    """Summarize these deals again from what is stored now (inside the caller's transaction),
    or, without a summarizer, forget their summaries. Keys with no record are skipped. A deal
    `in_hand` is summarized from the record and whole history given there (the caller vouches
    that it is what is stored), the others from the store."""
    unique = sorted(set(keys) | set(in_hand or ()))
    if summarizer is None:
        for part in chunks(unique):
            conn.execute(sa.delete(history_summaries).where(history_summaries.c.key.in_(part)))
        return 0
    given = in_hand or {}
    made = 0
    stmt = upsert(conn.dialect.name, history_summaries, ["key"], NAMES[1:])
    version = summarizer.version
    rows = [(key, version, *encode(summarizer(*given[key]))) for key in unique if key in given]
    for part in chunks(rows, 5000):
        made += len(part)
        execute_many(conn, stmt, NAMES, part)
    fields = getattr(summarizer, "fields", None)  # the history fields it reads, if it says
    for part in chunks([key for key in unique if key not in given]):
        rows = [
            (opp.key, version, *encode(summarizer(opp, history)))
            for opp, history in _with_history(conn, part, fields)
        ]
        made += len(rows)
        execute_many(conn, stmt, NAMES, rows)
    return made


def with_history(conn: Connection, keys: Sequence[str]) -> set[str]:
    """Those of `keys` with any stored history row (an index probe each)."""
    found: set[str] = set()
    for part in chunks(keys):
        found.update(conn.scalars(_WITH_HISTORY, {"keys": part}))
    return found


# made once: a statement built and keyed at every page costs more than its index probes
_WITH_HISTORY = (
    sa.select(field_history.c.key)
    .where(field_history.c.key.in_(sa.bindparam("keys", expanding=True)))
    .distinct()
)


def _with_history(
    conn: Connection, keys: Sequence[str], fields: Sequence[str] | None = None
) -> Iterator[tuple[Any, list[HistoryTuple]]]:
    """The stored records of `keys` with their whole history (of `fields`, when the summarizer
    reads no others), sorted by time."""
    found = conn.execute(sa.select(*OPP_RAW_COLUMNS).where(opportunities.c.key.in_(keys))).all()
    records = {opp.key: opp for opp in map(codec.opportunity_from_raw, found)}
    history: dict[str, list[HistoryTuple]] = {key: [] for key in records}
    stmt = sa.select(*HISTORY_RAW_COLUMNS).where(field_history.c.key.in_(list(records)))
    if fields is not None:
        stmt = stmt.where(field_history.c.field.in_(list(fields)))
    result = conn.execute(stmt.order_by(*HISTORY_ORDER))
    rows = result.cursor.fetchall()  # the driver's tuples: no column here but the stamp converts
    result.close()
    make = HistoryTuple._make
    stamps: dict[Any, Any] = {}  # a deal's rows share stamps (one CRM change, several fields)
    for key, field, old, new, at, origin in rows:
        stamp = stamps.get(at)
        if stamp is None:
            stamp = stamps[at] = as_utc(at)
        history[key].append(make((key, field, old, new, stamp, origin)))
    for key, opp in records.items():
        yield opp, history[key]


_NONE: list[Any] = []  # one empty list for every summary that has none: encoded once a run


def encode(summary: HistorySummary) -> tuple[Any, ...]:
    """The values of a summary's columns after `version`."""
    return (
        summary.stage_entered_at,
        summary.stage_regressions,
        list(summary.skipped_stages) if summary.skipped_stages else _NONE,
        summary.close_date_push_count,
        summary.close_date_slip_days,
        summary.next_step_changed_at,
        [list(stay) for stay in summary.stays] if summary.stays else _NONE,
    )


def decode(values: Sequence[Any]) -> HistorySummary:
    """A summary from its `value_columns` as read (text on SQLite, decoded on PostgreSQL)."""
    entered, regressions, skipped, pushes, slip, next_step_at, *stays = values
    return HistorySummary(
        None if entered is None else as_utc(entered),
        regressions,
        _stage_names(skipped),
        pushes,
        slip,
        None if next_step_at is None else as_utc(next_step_at),
        decode_stays(stays[0]) if stays else (),
    )


STAYS = sa.type_coerce(history_summaries.c.stays, sa.types.NullType()).label("stays")
NO_STAYS = "[]"  # how SQLite gives an empty list of stays (PostgreSQL gives an empty list)


def decode_stays(value: Any) -> tuple[tuple[str, float], ...]:
    """The stays column as read (text on SQLite, a list on PostgreSQL)."""
    return tuple((stage, float(days)) for stage, days in _json(value))


_NAMES_SEEN: dict[str, tuple[str, ...]] = {}


def _stage_names(value: Any) -> tuple[str, ...]:
    """The skipped-stages column as a tuple; deals share a few texts, so they are remembered."""
    if value.__class__ is not str:
        return tuple(value)
    found = _NAMES_SEEN.get(value)
    if found is None:
        found = tuple(json.loads(value))
        if len(_NAMES_SEEN) < 1024:
            _NAMES_SEEN[value] = found
    return found


def _json(value: Any) -> Any:
    return json.loads(value) if value.__class__ is str else value


# ---- readers (inside the caller's connection: the `Store` methods of the same names) ----------


def _current(version: str) -> sa.ColumnElement[bool]:
    """The join condition of a deal and its summary of `version`."""
    return sa.and_(
        history_summaries.c.key == opportunities.c.key,
        history_summaries.c.version == version,
    )


def iter_summarized(
    conn: Connection, connection: str, version: str, *, stays: bool, batch_size: int
) -> Iterator[tuple[Opportunity, HistorySummary | None]]:
    """Each live deal of a connection, by key, with its summary of `version` or None."""
    stmt = filtered(sa.select(*OPP_RAW_COLUMNS, *value_columns(stays)), connection, False)
    stmt = stmt.select_from(opportunities.outerjoin(history_summaries, _current(version)))
    stmt = stmt.order_by(opportunities.c.key)
    n = len(OPP_RAW_COLUMNS)
    decode_opp = codec.opportunity_from_raw
    result = conn.execution_options(yield_per=batch_size).execute(stmt)
    for part in result.partitions():
        for row in part:
            values = row[n:]
            summary = None if values[1] is None else decode(values)
            yield decode_opp(row[:n]), summary


def iter_stays(
    conn: Connection, connection: str, version: str, *, batch_size: int
) -> Iterator[tuple[str | None, tuple[tuple[str, float], ...] | None]]:
    """(pipeline, completed stays) of each live deal whose summary of `version` lists any, and
    (pipeline, None) of each live deal without one."""
    stmt = filtered(sa.select(opportunities.c.pipeline, STAYS), connection, False).outerjoin(
        history_summaries, _current(version)
    )
    result = conn.execution_options(yield_per=batch_size).execute(stmt)
    for part in result.partitions():
        for pipeline, stays in part:
            if stays is None:
                yield pipeline, None
            elif stays and stays != NO_STAYS:
                yield pipeline, decode_stays(stays)


def any_of(conn: Connection, connection: str, version: str) -> bool:
    """Whether any deal of a connection has a summary of `version` (one index probe)."""
    stmt = (
        sa.select(history_summaries.c.key)
        .where(
            history_summaries.c.key.startswith(connection + ":", autoescape=True),
            history_summaries.c.version == version,
        )
        .limit(1)
    )
    return conn.execute(stmt).first() is not None


def count_stale(conn: Connection, connection: str, version: str) -> int:
    """How many live deals of a connection have no summary of `version`."""
    current = sa.select(history_summaries.c.key).where(_current(version))
    stmt = filtered(sa.select(sa.func.count()), connection, False)
    return int(conn.scalar(stmt.where(~current.exists())) or 0)


def refresh_page(
    conn: Connection, connection: str, summarizer: Summarizer, after: str, batch_size: int
) -> tuple[int, str | None]:
    """Summarize the next `batch_size` deals (by key, after `after`; deleted ones too) whose
    summary is missing or of another version: (how many were made, the last key) or (0, None)
    when there are none left."""
    current = sa.select(history_summaries.c.key).where(_current(summarizer.version))
    stale = filtered(sa.select(opportunities.c.key), connection, True)
    stale = stale.where(~current.exists()).order_by(opportunities.c.key).limit(batch_size)
    keys = list(conn.scalars(stale.where(opportunities.c.key > after)))
    if not keys:
        return 0, None
    return remake(conn, keys, summarizer), keys[-1]
