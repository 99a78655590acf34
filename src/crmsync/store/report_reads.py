"""What the pipeline review reads from the store besides its snapshots: each deal's current
facts with its kept history summary (stage stays, close-date pushes), and the open findings.

Summaries are read whatever their version: a report shows the latest history the store has
summarized, and a summary made before a stage-mapping change is still the deal's history.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from crmsync.store.schema import (
    episodes,
    go_live,
    history_summaries,
    opportunities,
    pipeline_snapshot_days,
    pipeline_snapshots,
)
from crmsync.store.summaries import STAYS, decode_stays
from crmsync.store.types import as_utc

if TYPE_CHECKING:
    from crmsync.store.store import Store

__all__ = [
    "DealFacts",
    "OpenFinding",
    "SnapshotGroup",
    "deal_facts",
    "findings_known_since",
    "open_findings",
    "snapshot_groups",
]

_O = opportunities.c
_H = history_summaries.c


@dataclass(frozen=True, slots=True)
class DealFacts:
    """A live deal as the report needs it now: who, where, whether closed, and its history."""

    key: str
    connection: str
    name: str
    pipeline: str | None
    owner_id: str | None
    owner_name: str | None
    owner_email: str | None
    stage_canonical: str | None
    is_closed: bool
    is_won: bool
    stage_entered_at: datetime | None  # from the history summary, else as the CRM gave it
    pushes: int  # close-date pushes over the whole history (0 without a summary)
    stays: tuple[tuple[str, float], ...]  # completed stays, oldest first


def deal_facts(
    store: Store, connections: Sequence[str], *, batch_size: int = 5000
) -> Iterator[DealFacts]:
    """Every live (not deleted) deal of the connections, closed ones too, by key."""
    stmt = (
        sa.select(
            _O.key,
            _O.connection,
            _O.name,
            _O.pipeline,
            _O.owner_id,
            _O.owner_name,
            _O.owner_email,
            _O.stage_canonical,
            _O.is_closed,
            _O.is_won,
            _O.stage_entered_at,
            sa.type_coerce(_H.stage_entered_at, sa.types.NullType()),
            _H.close_date_push_count,
            STAYS,
        )
        .select_from(opportunities.outerjoin(history_summaries, _H.key == _O.key))
        .where(_O.connection.in_(list(connections)), _O.deleted.is_(False))
        .order_by(_O.key)
    )
    with store.reading("read deals for the report") as conn:
        result = conn.execution_options(yield_per=batch_size).execute(stmt)
        for part in result.partitions():
            for r in part:
                entered = r[11] if r[11] is not None else r[10]
                yield DealFacts(
                    key=r[0],
                    connection=r[1],
                    name=r[2],
                    pipeline=r[3],
                    owner_id=r[4],
                    owner_name=r[5],
                    owner_email=r[6],
                    stage_canonical=r[7],
                    is_closed=bool(r[8]),
                    is_won=bool(r[9]),
                    stage_entered_at=None if entered is None else as_utc(entered),
                    pushes=int(r[12] or 0),
                    stays=decode_stays(r[13]) if r[13] is not None else (),
                )


@dataclass(frozen=True, slots=True)
class OpenFinding:
    """One open episode: a workflow's rule firing on a deal now."""

    workflow: str
    rule: str
    opp_key: str
    owner_id: str | None


def open_findings(store: Store, connections: Sequence[str]) -> list[OpenFinding]:
    """The open findings on the connections' deals, by workflow, rule and deal."""
    ep = episodes.c
    stmt = (
        sa.select(ep.workflow, ep.rule, ep.opp_key, ep.owner_id)
        .where(ep.connection.in_(list(connections)), ep.state == "open")
        .order_by(ep.workflow, ep.rule, ep.opp_key)
    )
    with store.reading("read open findings") as conn:
        return [OpenFinding(*r) for r in conn.execute(stmt)]


@dataclass(frozen=True, slots=True)
class SnapshotGroup:
    """The open deals of one snapshot day sharing a pipeline, an owner, a currency and whether
    they close by a given day: how many, how many with no open finding, their summed amount
    (a float: the sum is the database's; on SQLite amounts are text, summed as REAL)."""

    pipeline: str | None
    owner_id: str | None
    currency: str | None
    in_window: bool
    deals: int
    clean: int
    amount: float


def snapshot_groups(
    store: Store, day: date, connections: Sequence[str], window_end: date
) -> list[SnapshotGroup]:
    """Per connection, its latest snapshot day on or before `day` (as `snapshots.read_as_of`
    picks it), grouped in the database: a few hundred rows out however many deals there are."""
    s = pipeline_snapshots.c
    d = pipeline_snapshot_days.c
    in_window = sa.case(
        (sa.and_(s.close_date.is_not(None), s.close_date <= window_end), 1), else_=0
    ).label("in_window")
    clean = sa.func.sum(sa.case((s.open_findings == 0, 1), else_=0))
    amount = sa.func.sum(sa.cast(s.amount, sa.Float))
    out: list[SnapshotGroup] = []
    with store.reading("read pipeline snapshot groups") as conn:
        for connection in connections:
            taken = conn.scalar(
                sa.select(sa.func.max(d.day)).where(d.connection == connection, d.day <= day)
            )
            if taken is None:
                continue
            stmt = (
                sa.select(
                    s.pipeline, s.owner_id, s.currency, in_window, sa.func.count(), clean, amount
                )
                .where(s.connection == connection, s.day == taken)
                .group_by(s.pipeline, s.owner_id, s.currency, in_window)
            )
            for p, o, c, w, n, k, a in conn.execute(stmt):
                out.append(SnapshotGroup(p, o, c, bool(w), int(n), int(k or 0), float(a or 0)))
    return out


def findings_known_since(store: Store, connections: Sequence[str]) -> dict[str, date]:
    """Per connection, the first snapshot day a sync wrote after the workflows first checked
    its deals (its first go-live or first finding, whichever came first): from that day on a
    snapshot's open findings are known. Days backfilled from history, or synced before any
    workflow ran, count none. A connection with no such day is left out."""
    d = pipeline_snapshot_days.c
    ep = episodes.c
    out: dict[str, date] = {}
    with store.reading("read when findings are known") as conn:
        for connection in connections:
            firsts = [
                conn.scalar(
                    sa.select(sa.func.min(ep.opened_at)).where(ep.connection == connection)
                ),
                conn.scalar(
                    sa.select(sa.func.min(go_live.c.live_since)).where(
                        go_live.c.connection == connection
                    )
                ),
            ]
            began = min((as_utc(t) for t in firsts if t is not None), default=None)
            if began is None:
                continue
            first = conn.scalar(
                sa.select(sa.func.min(d.day)).where(
                    d.connection == connection, d.origin == "sync", d.written_at >= began
                )
            )
            if first is not None:
                out[connection] = first if isinstance(first, date) else date.fromisoformat(first)
    return out
