"""Daily pipeline snapshots: one row per open deal per connection per day, for the pipeline review.

A day's snapshot is the connection's open deals as they stood at the end of that day: each
successful sync rewrites the day it ends in (UTC), so the day's last sync wins. Days before
crmsync ran are rebuilt from the stored field history (`store.snapshot_backfill`, re-exported
here as `backfill`). `pipeline_snapshot_days` lists the days that exist per connection, with how
each was made, so that an empty day (no open deal) is a snapshot too and finding days reads no
deal rows. Old days are pruned after `report.snapshot_retention_days`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from crmsync.model.snapshots import SnapshotRow
from crmsync.store.schema import (
    episodes,
    opportunities,
    pipeline_snapshot_days,
    pipeline_snapshots,
    sync_runs,
)
from crmsync.store.snapshot_backfill import backfill

if TYPE_CHECKING:
    from crmsync.store.store import Store

__all__ = [
    "backfill",
    "last_day",
    "missing_days",
    "prune",
    "read_as_of",
    "snapshot_days",
    "still_current",
    "write_day",
]

_S = pipeline_snapshots.c
_D = pipeline_snapshot_days.c
_O = opportunities.c
# the columns a snapshot row copies from the deal as stored, in the table's order
COPIED = (
    "pipeline",
    "stage",
    "stage_canonical",
    "amount",
    "currency",
    "probability",
    "forecast_category",
    "close_date",
    "owner_id",
)


def write_day(store: Store, connection: str, day: date) -> int:
    """Make the connection's snapshot of `day` its open deals as stored now (not closed, not
    deleted), each with its count of open findings (any workflow); returns the day's rows.

    One transaction, set-based (the rows go from table to table inside the database), and
    written as a difference: the day's rows that no deal matches any more are dropped (those not
    in the INTERSECT of the day's rows and the deals'), then the deals' rows not there are
    inserted. So the day's later syncs, which change few deals, write little: rewriting a whole
    day each sync cost PostgreSQL more than the sync itself at 10k deals. Both statements use
    NOT IN over a subquery, which PostgreSQL hashes once and SQLite indexes once: no plan can
    turn them quadratic, whatever the statistics of a young table say."""
    ep = episodes.c
    findings = (
        sa.select(ep.opp_key, sa.func.count().label("n"))
        .where(ep.connection == connection, ep.state == "open")
        .group_by(ep.opp_key)
        .subquery("findings")
    )
    values = (*(_O[name] for name in COPIED), sa.func.coalesce(findings.c.n, 0))
    deals = opportunities.outerjoin(findings, findings.c.opp_key == _O.key)
    live = (_O.connection == connection, _O.is_closed.is_(False), _O.deleted.is_(False))
    this_day = sa.and_(_S.connection == connection, _S.day == day)
    held = sa.select(_S.key, *(_S[name] for name in COPIED), _S.open_findings).where(this_day)
    # the day's rows some deal still matches: all the others go
    kept = sa.intersect(held, sa.select(_O.key, *values).select_from(deals).where(*live))
    stale = sa.delete(pipeline_snapshots).where(
        this_day, _S.key.not_in(sa.select(kept.subquery("kept").c.key))
    )
    rows = (
        sa.select(_O.connection, sa.literal(day, sa.Date()), _O.key, *values)
        .select_from(deals)
        .where(*live, _O.key.not_in(sa.select(_S.key).where(this_day)))
    )
    names = ["connection", "day", "key", *COPIED, "open_findings"]
    started = datetime.now(UTC)  # before anything is read: what a later check compares with
    with store.writing("write pipeline snapshot") as conn:
        conn.execute(
            sa.delete(pipeline_snapshot_days).where(_D.connection == connection, _D.day == day)
        )
        conn.execute(stale)
        conn.execute(pipeline_snapshots.insert().from_select(names, rows))
        # counted, not the driver's rowcount (psycopg reports none for INSERT ... SELECT here)
        written = int(conn.scalar(sa.select(sa.func.count()).where(this_day)) or 0)
        conn.execute(
            pipeline_snapshot_days.insert().values(
                connection=connection,
                day=day,
                origin="sync",
                deals=written,
                written_at=started,
                findings=_findings_state(conn, connection),
            )
        )
    return written


def _findings_state(conn: Connection, connection: str) -> str:
    """The connection's findings in one line: how many are open, the latest opening and the
    latest resolution. Any finding opened, resolved or reopened changes it."""
    ep = episodes.c
    opened, latest, resolved = conn.execute(
        sa.select(
            sa.func.count().filter(ep.state == "open"),
            sa.func.max(ep.opened_at),
            sa.func.max(ep.resolved_at),
        ).where(ep.connection == connection)
    ).one()
    return f"{int(opened or 0)}|{latest}|{resolved}"


def still_current(store: Store, connection: str, day: date) -> bool:
    """Whether the connection's snapshot of `day` still holds for a sync that changed no deal:
    a sync wrote it, no sync run that began since then stored a change (or ended other than
    `ok`, when it may have stored some), and the findings are as they were then."""
    r = sync_runs.c
    with store.reading("check pipeline snapshot") as conn:
        mark = conn.execute(
            sa.select(_D.written_at, _D.findings, _D.origin).where(
                _D.connection == connection, _D.day == day
            )
        ).first()
        if mark is None or mark.origin != "sync" or mark.findings is None:
            return False
        since = conn.scalar(
            sa.select(sa.func.count()).where(
                r.connection == connection,
                r.started_at >= mark.written_at,
                r.status != "running",
                sa.or_(r.upserted > 0, r.deleted > 0, r.status != "ok"),
            )
        )
        if since:
            return False
        return bool(_findings_state(conn, connection) == mark.findings)


def _delete_days(conn: Connection, connection: str, first: date | None, last: date) -> int:
    """Drop the connection's snapshot rows and day marks from `first` (or the oldest) to `last`
    (both tables keep them in primary key order: each delete is a range); returns the rows
    dropped."""
    marks = sa.delete(pipeline_snapshot_days).where(_D.connection == connection, _D.day <= last)
    rows = sa.delete(pipeline_snapshots).where(_S.connection == connection, _S.day <= last)
    if first is not None:
        marks, rows = marks.where(_D.day >= first), rows.where(_S.day >= first)
    conn.execute(marks)
    return int(conn.execute(rows).rowcount)


def _connections(conn: Connection, connections: Sequence[str] | None) -> list[str]:
    """The connections asked for, or every connection that has a snapshot day."""
    if connections is not None:
        return list(connections)
    stmt = sa.select(_D.connection).distinct().order_by(_D.connection)
    return list(conn.scalars(stmt))


def snapshot_days(
    store: Store, connections: Sequence[str] | None, since: date, until: date
) -> list[date]:
    """The days from `since` to `until` (both included) on which any of the connections (all
    when None) has a snapshot, in order."""
    stmt = sa.select(_D.day).distinct().where(_D.day >= since, _D.day <= until).order_by(_D.day)
    if connections is not None:
        stmt = stmt.where(_D.connection.in_(list(connections)))
    with store.reading("read snapshot days") as conn:
        return [_as_date(d) for d in conn.scalars(stmt)]


def last_day(store: Store, connection: str, *, until: date | None = None) -> date | None:
    """The connection's latest snapshot day (on or before `until` when given), or None."""
    stmt = sa.select(sa.func.max(_D.day)).where(_D.connection == connection)
    if until is not None:
        stmt = stmt.where(_D.day <= until)
    with store.reading("read snapshot days") as conn:
        found = conn.scalar(stmt)
    return None if found is None else _as_date(found)


def missing_days(store: Store, connection: str, *, days: int, today: date) -> int:
    """How many of the `days` days before `today` have no snapshot of the connection (one
    count over the day list: what a sync checks before it backfills)."""
    if days <= 0:
        return 0
    first = today - timedelta(days=days)
    stmt = sa.select(sa.func.count()).where(
        _D.connection == connection, _D.day >= first, _D.day < today
    )
    with store.reading("read snapshot days") as conn:
        return days - int(conn.scalar(stmt) or 0)


def read_as_of(store: Store, day: date, connections: Sequence[str] | None) -> list[SnapshotRow]:
    """Per connection (all when None), the rows of its latest snapshot day on or before `day`
    (none for a connection without one), by connection then key."""
    out: list[SnapshotRow] = []
    with store.reading("read pipeline snapshot") as conn:
        for connection in _connections(conn, connections):
            found = conn.execute(
                sa.select(_D.day, _D.origin)
                .where(_D.connection == connection, _D.day <= day)
                .order_by(_D.day.desc())
                .limit(1)
            ).first()
            if found is None:
                continue
            taken, origin = _as_date(found[0]), str(found[1])
            stmt = (
                sa.select(_S.key, *(_S[name] for name in COPIED), _S.open_findings)
                .where(_S.connection == connection, _S.day == taken)
                .order_by(_S.key)
            )
            out.extend(_row(taken, connection, origin, r) for r in conn.execute(stmt))
    return out


def _row(day: date, connection: str, origin: str, r: Any) -> SnapshotRow:
    key, pipeline, stage, canonical, amount, currency, prob, forecast, close, owner, n = r
    return SnapshotRow(
        day=day,
        key=key,
        connection=connection,
        pipeline=pipeline,
        stage=stage,
        stage_canonical=canonical,
        amount=amount,
        currency=currency,
        probability=prob,
        forecast_category=forecast,
        close_date=None if close is None else _as_date(close),
        owner_id=owner,
        open_findings=int(n),
        origin=origin,
    )


def prune(store: Store, *, keep_days: int, today: date, connection: str | None = None) -> int:
    """Drop snapshot days older than the last `keep_days` days up to `today` (of one connection,
    or all); returns the deal rows dropped. Per connection, so each delete is a range of the
    primary key rather than a scan of the whole table."""
    cutoff = today - timedelta(days=keep_days)  # the newest day dropped
    dropped = 0
    with store.writing("prune pipeline snapshots") as conn:
        names = [connection] if connection is not None else _connections(conn, None)
        for name in names:
            dropped += _delete_days(conn, name, None, cutoff)
    return dropped


def _as_date(value: Any) -> date:
    """A stored day: a date (PostgreSQL, SQLAlchemy's Date) or its ISO text (raw SQLite)."""
    return value if isinstance(value, date) else date.fromisoformat(str(value))
