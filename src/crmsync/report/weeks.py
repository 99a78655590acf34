"""The weekly trends' figures of one day: the pipeline total per currency and the hygiene
scores. A day is reduced to groups (owner, currency, in the window or not: deals, clean deals,
amount) first, so the store can hand over its groups instead of every row of every week.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from crmsync.model.snapshots import SnapshotRow
from crmsync.report import flow
from crmsync.report.hygiene import NO_OWNER, Score


@dataclass(frozen=True)
class DayGroup:
    """The open deals of one day sharing an owner, a currency and whether they close by the
    window's end: how many, how many with no open finding, and their summed amount."""

    owner_id: str | None
    currency: str | None
    in_window: bool
    deals: int
    clean: int
    amount: Decimal


@dataclass(frozen=True)
class WeekFigures:
    """What the weekly trends need of one day: the pipeline total per currency (deals closing by
    the window's end) and each owner's hygiene score, with everyone's."""

    totals: dict[str, Decimal]
    scores: list[Score]
    overall: float | None


def groups_of(rows: Iterable[SnapshotRow], window_end: date) -> list[DayGroup]:
    """A day's open rows as DayGroups (what the store's grouped read gives)."""
    found: dict[tuple[str | None, str | None, bool], list[int | Decimal]] = {}
    for row in rows:
        key = (row.owner_id, row.currency, flow.in_window(row, window_end))
        acc = found.setdefault(key, [0, 0, flow.ZERO])
        acc[0] += 1
        acc[1] += row.open_findings == 0
        acc[2] += flow.amount_of(row)
    return [
        DayGroup(o, c, w, int(a[0]), int(a[1]), Decimal(a[2])) for (o, c, w), a in found.items()
    ]


def week_from_groups(groups: Iterable[DayGroup]) -> WeekFigures:
    """One day's WeekFigures from its groups."""
    totals: dict[str, Decimal] = {}
    deals: dict[str, int] = {}
    clean: dict[str, int] = {}
    for g in groups:
        if g.in_window:
            currency = g.currency or flow.NO_CURRENCY
            totals[currency] = totals.get(currency, flow.ZERO) + g.amount
        owner = g.owner_id or NO_OWNER
        deals[owner] = deals.get(owner, 0) + g.deals
        clean[owner] = clean.get(owner, 0) + g.clean
    n = sum(deals.values())
    return WeekFigures(
        totals,
        [Score(o, deals[o], clean[o]) for o in sorted(deals) if deals[o]],
        sum(clean.values()) / n if n else None,
    )


def week_figures(rows: Iterable[SnapshotRow], window_end: date) -> WeekFigures:
    """One day's WeekFigures from its open rows."""
    return week_from_groups(groups_of(rows, window_end))
