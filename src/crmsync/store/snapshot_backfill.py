"""Rebuilding the pipeline snapshots of days before crmsync ran, from the stored field history.

Only days with no snapshot of the connection are filled (a day a sync wrote is never touched);
rows are marked `backfill`. For each deal and day D, "the end of D" is midnight UTC after D:

- The deal is there on D when it was created on or before D (`created_at`, else when crmsync
  first saw it) and not deleted by the end of D (`deleted_at`).
- A tracked field (stage, canonical stage, amount, close date, owner) holds at the end of D the
  new value of its last recorded change before then. Before its first recorded change it holds
  that change's old value; a blank old value there means "not known" (the first sight of a deal
  records its values from nothing, and Salesforce's stage rows carry no old value), so the first
  known value stands for the time before it too. Without any change the value is today's.
- The canonical stage on D is today's when the stage is today's; else the stage mapping's (the
  one given, else what today's deals of the connection say), else the canonical stage's own
  history. The deal is open on D unless that stage is closed_won or closed_lost (or, for a stage
  no mapping knows, one today's closed deals sit in). So a deal closed today with no stage
  history counts as closed on every past day: when it closed is not known.
- Fields without history (pipeline, currency, forecast category) keep today's value. The
  probability is the deal's own when its stage on D is today's stage; otherwise the most common
  probability among today's open deals of the connection in that stage, else in that canonical
  stage (so a weighted amount follows the stage), else the deal's own if it is open today (a
  closed deal's 0 or 100 says nothing of its open days: none then).
- Open findings on D: the deal's findings (any workflow) opened before the end of D and not
  resolved by then; the store keeps each rule's latest occurrence only.

Deals and their history are read together in key order, a page of deals at a time; rows are
written `BATCH_ROWS` at a time, and the days are marked done only at the end (a backfill that
stopped half way leaves unmarked rows, dropped by the next one before it starts).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from crmsync.model.records import HistoryTuple
from crmsync.store.engine import chunks, execute_many
from crmsync.store.schema import (
    episodes,
    field_history,
    opportunities,
    pipeline_snapshot_days,
    pipeline_snapshots,
)

if TYPE_CHECKING:
    from crmsync.store.store import Store

FIELDS = ("stage", "stage_canonical", "amount", "close_date", "owner_id")
CLOSED = frozenset({"closed_won", "closed_lost"})
BATCH_ROWS = 20_000
PAGE_DEALS = 2_000
# a snapshot row: the table's columns, in its order
ROW_NAMES = tuple(c.name for c in pipeline_snapshots.c)
# what a row copies from the deal (snapshots.COPIED, which imports this module: not imported)
COPIED = tuple(n for n in ROW_NAMES if n not in ("connection", "day", "key", "open_findings"))
# what a deal is read with, in this order (`deal_rows` unpacks it so)
DEAL_COLUMNS = ("key", *COPIED, "is_closed", "deleted", "deleted_at", "created_at", "first_seen_at")
INSERT = pipeline_snapshots.insert()  # one object, so execute_many compiles it once
COPY = f"COPY pipeline_snapshots ({', '.join(ROW_NAMES)}) FROM STDIN"


class Today:
    """What the connection's deals say today, that a past day borrows: stage mapping, closed
    stages no mapping knows, and the most common probability among open deals per stage and
    per canonical stage."""

    def __init__(self, conn: Connection, connection: str, stages: Mapping[str, str] | None):
        o = opportunities.c
        seen: dict[str, Counter[str]] = defaultdict(Counter)
        probs: dict[str, Counter[float]] = defaultdict(Counter)
        canon_probs: dict[str, Counter[float]] = defaultdict(Counter)
        self.closed_stages: set[str] = set()
        rows = conn.execute(
            sa.select(o.stage, o.stage_canonical, o.is_closed, o.deleted, o.probability)
            .add_columns(sa.func.count())
            .where(o.connection == connection, o.stage.is_not(None))
            .group_by(o.stage, o.stage_canonical, o.is_closed, o.deleted, o.probability)
        )
        for stage, canonical, is_closed, deleted, probability, n in rows:
            if canonical is not None:
                seen[stage][canonical] += n
            elif is_closed:
                self.closed_stages.add(stage)
            if not is_closed and not deleted and probability is not None:
                probs[stage][float(probability)] += n
                if canonical is not None:
                    canon_probs[canonical][float(probability)] += n
        self.canonical: dict[str, str] = {s: c.most_common(1)[0][0] for s, c in seen.items()}
        self.canonical.update(stages or {})
        self.probability = {s: _mode(c) for s, c in probs.items()}
        self.canonical_probability = {s: _mode(c) for s, c in canon_probs.items()}

    def probability_of(self, stage: str | None, canonical: str | None) -> float | None:
        """The usual probability of a stage today (else of its canonical stage), or None."""
        found = self.probability.get(stage) if stage is not None else None
        if found is None and canonical is not None:
            found = self.canonical_probability.get(canonical)
        return found


def _mode(counts: Counter[float]) -> float:
    """The most common value; of equally common ones, the lowest (the same answer every run)."""
    return min(counts.items(), key=lambda pc: (-pc[1], pc[0]))[0]


def backfill(
    store: Store,
    connection: str,
    *,
    days: int,
    today: date,
    stages: Mapping[str, str] | None = None,
) -> int:
    """Fill the `days` days before `today` that have no snapshot of the connection, from the
    stored history (see the module's rules); `stages` is the connection's stage mapping (native
    to canonical), when known. Returns the rows written."""
    if days <= 0:
        return 0
    wanted = [today - timedelta(days=n) for n in range(days, 0, -1)]
    d = pipeline_snapshot_days.c
    with store.reading("read snapshot days") as conn:
        stmt = sa.select(d.day).where(d.connection == connection, d.day >= wanted[0])
        done = {_as_date(x) for x in conn.scalars(stmt)}
        target = [day for day in wanted if day not in done]
        if not target:
            return 0
        known = Today(conn, connection, stages)
        findings = _findings(conn, connection)
    with store.writing("clear unfinished backfill") as conn:
        s = pipeline_snapshots.c
        for part in chunks(target):
            conn.execute(
                sa.delete(pipeline_snapshots).where(
                    s.connection == connection, s.day.in_(list(part))
                )
            )
    counts: Counter[date] = Counter()
    buffer: list[tuple[Any, ...]] = []
    written = 0
    ends = [(day, _end(day)) for day in target]
    for deal, rows in _deals_with_history(store, connection):
        for row in deal_rows(connection, deal, rows, ends, known, findings.get(deal[0], ())):
            buffer.append(row)
            counts[row[1]] += 1
        if len(buffer) >= BATCH_ROWS:
            written += _flush(store, buffer)
    written += _flush(store, buffer)
    with store.writing("mark backfilled days") as conn:
        now = datetime.now(UTC)
        conn.execute(
            pipeline_snapshot_days.insert(),
            [
                {
                    "connection": connection,
                    "day": day,
                    "origin": "backfill",
                    "deals": counts[day],
                    "written_at": now,
                }
                for day in target
            ],
        )
    return written


def _flush(store: Store, buffer: list[tuple[Any, ...]]) -> int:
    """Write the rows in one transaction: COPY on PostgreSQL (several times faster than an
    executemany of the same rows), the driver's executemany on SQLite."""
    if not buffer:
        return 0
    with store.writing("write backfilled snapshots") as conn:
        if conn.dialect.name == "postgresql":
            raw: Any = conn.connection.dbapi_connection
            with raw.cursor() as cursor, cursor.copy(COPY) as copy:
                for row in buffer:
                    copy.write_row(row)
        else:
            execute_many(conn, INSERT, ROW_NAMES, buffer)
    n = len(buffer)
    buffer.clear()
    return n


def _findings(
    conn: Connection, connection: str
) -> dict[str, list[tuple[datetime, datetime | None]]]:
    """Each deal's findings of the connection, as (opened, resolved or None)."""
    e = episodes.c
    out: dict[str, list[tuple[datetime, datetime | None]]] = defaultdict(list)
    stmt = sa.select(e.opp_key, e.opened_at, e.resolved_at, e.state).where(
        e.connection == connection
    )
    for key, opened, resolved, state in conn.execute(stmt):
        out[key].append((opened, resolved if state != "open" else None))
    return out


def _deals_with_history(
    store: Store, connection: str
) -> Iterator[tuple[tuple[Any, ...], list[HistoryTuple]]]:
    """Each deal of the connection (deleted ones too), in key order, with its history of the
    snapshot's fields, oldest first: read `PAGE_DEALS` deals at a time, each page with its
    history in one range read and its own short read (no read held open for the whole
    backfill, which on SQLite would keep the log from being checkpointed meanwhile)."""
    o, h = opportunities.c, field_history.c
    columns = [o[name] for name in DEAL_COLUMNS]
    after = ""
    while True:
        with store.reading("read deals for backfill") as conn:
            deals = conn.execute(
                sa.select(*columns)
                .where(o.connection == connection, o.key > after)
                .order_by(o.key)
                .limit(PAGE_DEALS)
            ).all()
            if not deals:
                return
            history = conn.execute(
                sa.select(h.key, h.field, h.old_value, h.new_value, h.changed_at, h.origin)
                .where(h.key >= deals[0][0], h.key <= deals[-1][0], h.field.in_(FIELDS))
                .order_by(h.key, h.changed_at, h.id)
            ).all()
        by_key: dict[str, list[HistoryTuple]] = defaultdict(list)
        for row in history:
            by_key[row[0]].append(HistoryTuple._make(row))
        for deal in deals:
            yield tuple(deal), by_key.get(deal[0], [])
        after = deals[-1][0]


def _end(day: date) -> datetime:
    """The end of a day: midnight UTC after it."""
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)


class Field:
    """One field's recorded changes, answering its value at the end of a day."""

    __slots__ = ("before", "guessed", "stamps", "values")

    def __init__(self, rows: Sequence[HistoryTuple], today: Any) -> None:
        self.stamps = [r.changed_at for r in rows]
        self.values = [r.new_value for r in rows]
        first = rows[0] if rows else None
        self.guessed = first is not None and first.old_value is None
        if first is None:
            self.before: Any = today
        else:
            self.before = first.new_value if self.guessed else first.old_value

    def at(self, end: datetime, *, guess: bool = True) -> Any:
        """The value at `end`; with `guess=False`, None where only the first known value
        stands in for an unknown earlier one."""
        i = bisect_left(self.stamps, end)  # changes strictly before `end`
        if i:
            return self.values[i - 1]
        return None if self.guessed and not guess else self.before


def deal_rows(
    connection: str,
    deal: tuple[Any, ...],
    history: Sequence[HistoryTuple],
    ends: Sequence[tuple[date, datetime]],
    known: Today,
    findings: Sequence[tuple[datetime, datetime | None]],
) -> Iterator[tuple[Any, ...]]:
    """The deal's snapshot rows on the days it was open (see the module's rules), for the
    (day, end of day) pairs `ends`, in order."""
    key, pipeline, stage, canonical, amount, currency, probability, forecast = deal[:8]
    close_date, owner, is_closed, deleted, deleted_at, created_at, first_seen_at = deal[8:]
    start = (created_at or first_seen_at).date()
    gone = deleted_at.date() if deleted and deleted_at is not None else None
    if not history and is_closed:
        return  # closed today with no history: when it closed is not known
    if not history and not findings:  # the same row every day it was there
        same: tuple[Any, ...] = (pipeline, stage, canonical, amount, currency, probability)
        same = (*same, forecast, close_date, owner, 0)
        for day, _ in ends:
            if day >= start and (gone is None or day < gone):
                yield (connection, day, key, *same)
        return
    by_field: dict[str, list[HistoryTuple]] = defaultdict(list)
    for row in history:
        by_field[row.field].append(row)
    texts = {"stage": stage, "stage_canonical": canonical, "owner_id": owner}
    fields = {
        f: Field(
            by_field.get(f, ()), texts.get(f) if f in texts else _text_of(f, amount, close_date)
        )
        for f in FIELDS
    }

    def tail_at(end: datetime) -> tuple[Any, ...] | None:
        """The row's values at `end` after (connection, day, key); None when closed then."""
        stage_d = fields["stage"].at(end)
        if stage_d == stage:
            canon_d = canonical
        else:
            canon_d = known.canonical.get(stage_d) if stage_d is not None else None
            if canon_d is None:
                canon_d = fields["stage_canonical"].at(end, guess=False)
        if (
            canon_d in CLOSED
            or (stage_d == stage and is_closed)
            or (canon_d is None and stage_d in known.closed_stages)
        ):
            return None
        prob = probability
        if stage_d != stage:
            usual = known.probability_of(stage_d, canon_d)
            prob = usual if usual is not None else None if is_closed else probability
        n = sum(1 for opened, shut in findings if opened < end and (shut is None or shut >= end))
        amount_d = _decimal(fields["amount"].at(end))
        close_d = _day(fields["close_date"].at(end))
        owner_d = fields["owner_id"].at(end)
        return (pipeline, stage_d, canon_d, amount_d, currency, prob, forecast, close_d, owner_d, n)

    # the row changes only where a change or a finding's start or end passes: between two such
    # moments the values are the same, so they are worked out once per stretch
    moments = sorted(
        {r.changed_at for r in history}
        | {opened for opened, _ in findings}
        | {shut for _, shut in findings if shut is not None}
    )
    stretch = -1
    tail = None
    for day, end in ends:
        if day < start or (gone is not None and day >= gone):
            continue
        passed = bisect_left(moments, end)
        if passed != stretch:
            stretch, tail = passed, tail_at(end)
        if tail is not None:
            yield (connection, day, key, *tail)


def _text_of(field: str, amount: Decimal | None, close_date: date | None) -> str | None:
    """Today's value of an amount or close date as history text (what `Field` answers in)."""
    if field == "amount":
        return None if amount is None else str(amount)
    return None if close_date is None else close_date.isoformat()


def _decimal(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def _day(text: str | None) -> date | None:
    """A close date from its history text ("2026-12-31", a datetime form tolerated)."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))
