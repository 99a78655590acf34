"""The pipeline by stage and how deals move through the stages: count, amount and weighted
amount per stage; days in stage against each stage's usual stays; conversion and velocity.

Stays are the completed stays the store keeps per deal (a stage left for another, its start
known), in days; percentiles are by nearest rank over whole days, as the stuck-deal rules count
them, so "over p90" here means what it means in a workflow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from math import ceil

from crmsync.model import CANONICAL_STAGES
from crmsync.model.snapshots import SnapshotRow
from crmsync.report.flow import ZERO, amount_of, currency_of

OPEN_STAGES = tuple(s for s in CANONICAL_STAGES if not s.startswith("closed_"))
UNMAPPED = "unmapped"  # the stage key of deals whose stage maps to no canonical stage
RANK = {s: i for i, s in enumerate(OPEN_STAGES)}
WON_STAGE = "closed_won"
PERCENTILES = (50, 75, 90)


@dataclass
class StageFigure:
    """One (currency, stage): how many open deals, their amount and weighted amount."""

    count: int = 0
    amount: Decimal = ZERO
    weighted: Decimal = ZERO


def weighted_amount(row: SnapshotRow) -> Decimal:
    """amount x probability / 100; a missing amount or probability weighs nothing."""
    if row.amount is None or row.probability is None:
        return ZERO
    return row.amount * Decimal(repr(row.probability)) / 100


def stage_key(stage: str | None) -> str:
    """The canonical stage a figure is counted under (UNMAPPED when there is none)."""
    return stage if stage in OPEN_STAGES else UNMAPPED


def by_stage(rows: Iterable[SnapshotRow]) -> dict[str, dict[str, StageFigure]]:
    """Per currency, per canonical open stage (pipeline order, UNMAPPED last, only stages
    holding deals): the open deals' count, amount and weighted amount."""
    found: dict[str, dict[str, StageFigure]] = {}
    for row in rows:
        per = found.setdefault(currency_of(row), {})
        fig = per.setdefault(stage_key(row.stage_canonical), StageFigure())
        fig.count += 1
        fig.amount += amount_of(row)
        fig.weighted += weighted_amount(row)
    order = {s: i for i, s in enumerate((*OPEN_STAGES, UNMAPPED))}
    return {
        cur: dict(sorted(per.items(), key=lambda kv: order[kv[0]]))
        for cur, per in sorted(found.items())
    }


def by_connection(rows: Iterable[SnapshotRow]) -> dict[tuple[str, str], StageFigure]:
    """Per (connection, currency), sorted: the open deals' count, amount and weighted amount."""
    found: dict[tuple[str, str], StageFigure] = {}
    for row in rows:
        fig = found.setdefault((row.connection, currency_of(row)), StageFigure())
        fig.count += 1
        fig.amount += amount_of(row)
        fig.weighted += weighted_amount(row)
    return dict(sorted(found.items()))


def nearest_rank(values: Sequence[float], percentile: float) -> float | None:
    """The value at `percentile` (0..100) by nearest rank: the smallest value with at least that
    share of the values at or below it; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, ceil(percentile * len(ordered) / 100.0 - 1e-9))
    return ordered[rank - 1]


@dataclass(frozen=True)
class StageStays:
    """One stage's completed stays: how many, their mean and percentiles (whole days)."""

    stage: str
    stays: int
    mean_days: float | None
    percentiles: dict[int, float | None]


def stay_stats(stays: Iterable[tuple[str, float]]) -> dict[str, StageStays]:
    """Per canonical open stage (pipeline order, all of them): its completed stays' count,
    mean days (exact) and p50/p75/p90 (nearest rank over whole days, negatives as zero)."""
    days: dict[str, list[float]] = {s: [] for s in OPEN_STAGES}
    for stage, d in stays:
        if stage in days:
            days[stage].append(d)
    out: dict[str, StageStays] = {}
    for stage, values in days.items():
        whole = [float(max(int(v), 0)) for v in values]
        mean = sum(values) / len(values) if values else None
        pct = {p: nearest_rank(whole, p) for p in PERCENTILES}
        out[stage] = StageStays(stage, len(values), mean, pct)
    return out


@dataclass(frozen=True)
class StageAge:
    """One open stage now: its open deals, their median days in stage, and how many have been
    there longer than the stage's p90 stay."""

    stage: str
    deals: int
    median_days: float | None
    over_p90: int


def aging(
    in_stage: Iterable[tuple[str | None, float]], stats: Mapping[str, StageStays]
) -> list[StageAge]:
    """Per canonical open stage (pipeline order): from (stage, days in it now) of each open
    deal, the median and how many exceed the stage's p90 stay (none when it has no stays).
    The median is the lower middle value, a day a real deal has."""
    days: dict[str, list[float]] = {s: [] for s in OPEN_STAGES}
    for stage, d in in_stage:
        if stage in days:
            days[stage].append(d)
    out: list[StageAge] = []
    for stage, values in days.items():
        p90 = stats[stage].percentiles[90] if stage in stats else None
        over = sum(1 for v in values if p90 is not None and int(v) > p90)
        out.append(StageAge(stage, len(values), nearest_rank(values, 50), over))
    return out


@dataclass(frozen=True)
class Conversion:
    """Of the deals that entered a stage and left it (or closed), how many moved on: reached a
    later stage or were won."""

    stage: str
    entered: int
    decided: int  # entered and no longer sitting in the stage
    moved_on: int

    @property
    def rate(self) -> float | None:
        """moved_on / decided; None when no deal has left the stage yet."""
        return self.moved_on / self.decided if self.decided else None


def conversion(paths: Iterable[Sequence[str]]) -> list[Conversion]:
    """Per canonical open stage (pipeline order), from each deal's path (its completed stays'
    stages, oldest first, then its current stage): a deal entered a stage if the path holds it;
    it moved on if, after first entering it, the path reaches a later open stage or closed_won;
    a deal still in the stage that has not moved on is left out (not decided yet)."""
    entered = dict.fromkeys(OPEN_STAGES, 0)
    decided = dict.fromkeys(OPEN_STAGES, 0)
    moved = dict.fromkeys(OPEN_STAGES, 0)
    for path in paths:
        current = path[-1] if path else None
        for stage in OPEN_STAGES:
            if stage not in path:
                continue
            entered[stage] += 1
            after = path[path.index(stage) + 1 :]
            on = any(s == WON_STAGE or RANK.get(s, -1) > RANK[stage] for s in after)
            if on:
                moved[stage] += 1
                decided[stage] += 1
            elif current != stage:
                decided[stage] += 1
    return [Conversion(s, entered[s], decided[s], moved[s]) for s in OPEN_STAGES]


def path_of(stays: Sequence[tuple[str, float]], current: str | None) -> tuple[str, ...]:
    """A deal's stage path: its completed stays' stages, then its current stage."""
    path = tuple(stage for stage, _ in stays)
    return (*path, current) if current is not None else path
