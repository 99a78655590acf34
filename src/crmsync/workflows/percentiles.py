"""The pipeline's memory of how long deals stayed in each stage, for percentile rules.

Filled in a first streaming pass and consulted in the second, so "longer than the 80th
percentile" needs no second copy of the data.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from math import ceil, isnan

from crmsync.model import Opportunity
from crmsync.store.history import (
    BY_TIME,
    CanonicalOf,
    HistoryLike,
    completed_stays,
    same_stage,
    stage_runs,
)


class StageDurations:
    """How long deals stayed in each (pipeline, canonical stage): a per-day histogram, memory-flat.

    Stays are counted in whole days (floored) and capped at `cap_days`, so memory depends on the
    number of (pipeline, stage) pairs, never on the number of deals. Percentiles need at least
    `min_samples` recorded stays; below that the answer is None and rules fall back to fixed days.
    """

    __slots__ = ("_cumulative", "_days", "_thresholds", "cap_days", "min_samples")

    def __init__(self, min_samples: int = 20, cap_days: int = 3650) -> None:
        if min_samples < 1 or cap_days < 1:
            raise ValueError("min_samples and cap_days must be at least 1")
        self.min_samples = min_samples
        self.cap_days = cap_days
        self._days: dict[tuple[str | None, str], dict[int, int]] = {}
        # derived lazily for the consulting pass, dropped on every add
        self._cumulative: dict[tuple[str | None, str], list[int]] = {}
        self._thresholds: dict[tuple[str | None, str, float], float | None] = {}

    def add(self, pipeline: str | None, stage: str, days: float) -> None:
        """Record one stay of `days` in `stage` of `pipeline` (negative stays count as zero)."""
        if isnan(days):
            return
        bucket = min(max(int(days), 0), self.cap_days)
        counts = self._days.setdefault((pipeline, stage), {})
        counts[bucket] = counts.get(bucket, 0) + 1
        if self._cumulative:
            self._cumulative.clear()
        if self._thresholds:
            self._thresholds.clear()

    def add_count(self, pipeline: str | None, stage: str, bucket: int, count: int) -> None:
        """Record `count` stays of `bucket` whole days at once (buckets made as `add` makes
        them: floored, at least 0, at most `cap_days`), for the columnar first pass."""
        counts = self._days.setdefault((pipeline, stage), {})
        counts[bucket] = counts.get(bucket, 0) + count
        self._cumulative.clear()
        self._thresholds.clear()

    def absorb(self, other: StageDurations) -> None:
        """Take every stay `other` recorded (a pass counted apart, into this object that the
        rules already hold)."""
        for (pipeline, stage), counts in other._days.items():
            for bucket, count in counts.items():
                self.add_count(pipeline, stage, bucket, count)

    def add_history(
        self,
        opp: Opportunity,
        history: Sequence[HistoryLike],
        canonical_of: CanonicalOf = same_stage,
    ) -> None:
        """Record every completed stay of one deal: a stage run that another stage followed.

        The current (trailing) run is still going and is not a stay; nor is the run before the
        first recorded change, whose start is unknown. Runs of an unmapped stage are skipped.
        """
        self.add_runs(opp.pipeline, history, canonical_of)

    def add_runs(
        self,
        pipeline: str | None,
        history: Sequence[HistoryLike],
        canonical_of: CanonicalOf = same_stage,
    ) -> None:
        """`add_history` for a deal of `pipeline`: only its stage rows are read."""
        if not history:
            return
        stage_rows: list[HistoryLike] = []
        canon_rows: list[HistoryLike] = []
        for row in sorted(history, key=BY_TIME):
            if row.field == "stage_canonical":
                canon_rows.append(row)
            elif row.field == "stage":
                stage_rows.append(row)
        self.add_stays(pipeline, completed_stays(stage_runs(stage_rows, canon_rows, canonical_of)))

    def add_stays(self, pipeline: str | None, stays: Sequence[tuple[str, float]]) -> None:
        """Record the completed stays of one deal of `pipeline` (as a HistorySummary has them)."""
        for stage, days in stays:
            self.add(pipeline, stage, days)

    def samples(self, pipeline: str | None, stage: str) -> int:
        """How many stays are recorded for (pipeline, stage)."""
        counts = self._days.get((pipeline, stage))
        return sum(counts.values()) if counts else 0

    def percentile_of(self, pipeline: str | None, stage: str, days: float) -> float | None:
        """Share (0..100) of recorded stays shorter than `days`, compared in whole days.

        None with fewer than `min_samples` stays. A stay of 9.x days is shorter than 10.y days;
        two stays in the same whole day are not shorter than each other.
        """
        cumulative = self._cumulative_of(pipeline, stage)
        if cumulative is None:
            return None
        if isnan(days) or days < 1.0:
            return 0.0
        bucket = int(days)
        total = cumulative[-1]
        shorter = cumulative[bucket] if bucket < len(cumulative) else total
        return 100.0 * shorter / total

    def threshold(self, pipeline: str | None, stage: str, percentile: float) -> float | None:
        """The stay length (whole days) at `percentile` (0..100), by nearest rank: at least that
        share of recorded stays lasted no more (in whole days). None below `min_samples`."""
        if not 0.0 <= percentile <= 100.0:
            raise ValueError(f"percentile must be between 0 and 100, not {percentile}")
        memo = (pipeline, stage, percentile)
        if memo in self._thresholds:
            return self._thresholds[memo]
        cumulative = self._cumulative_of(pipeline, stage)
        result: float | None = None
        if cumulative is not None:
            rank = max(1, ceil(percentile * cumulative[-1] / 100.0 - 1e-9))
            # cumulative[d] counts the stays below d days: the stay of that rank lasted d - 1
            result = float(bisect_left(cumulative, rank) - 1)
        self._thresholds[memo] = result
        return result

    def _cumulative_of(self, pipeline: str | None, stage: str) -> list[int] | None:
        """Prefix counts for (pipeline, stage): [d] = stays under d whole days; None if too few."""
        key = (pipeline, stage)
        cumulative = self._cumulative.get(key)
        if cumulative is None:
            cumulative = []  # remembered as "too few" too, so the next call is one lookup
            counts = self._days.get(key)
            if counts and sum(counts.values()) >= self.min_samples:
                top = max(counts)
                cumulative = [0] * (top + 2)
                running = 0
                for day in range(top + 1):
                    running += counts.get(day, 0)
                    cumulative[day + 1] = running
            self._cumulative[key] = cumulative
        return cumulative or None
