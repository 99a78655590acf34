"""Derived fields for workflow rules: what the field history says about a deal's hygiene.

`derive` turns one opportunity and its field history into the numbers the hygiene rules test
(days in stage, close-date pushes, regressions, skipped stages, ...). `StageDurations` is the
pipeline's memory of how long deals stayed in each stage, filled in a first streaming pass and
consulted in the second, so "longer than the 80th percentile" needs no second copy of the data.

History is taken as it comes from the store: both origins ("crm" and "observed") mixed, the same
change possibly stated twice, rows out of order. Rows are sorted by `changed_at` (stable, so rows
with equal stamps keep their order) and consecutive equal values collapse into one run, which
makes duplicates and re-statements harmless.
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_left
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from itertools import pairwise
from math import ceil, isnan
from operator import attrgetter
from typing import Protocol

from crmsync.model import CANONICAL_STAGES, Opportunity
from crmsync.store.records import HistorySummary

CanonicalOf = Callable[[str | None], str | None]


class HistoryLike(Protocol):
    """A history row as `derive` reads it: a `HistoryRow`, or the store's lighter tuple."""

    @property
    def key(self) -> str: ...
    @property
    def field(self) -> str: ...
    @property
    def old_value(self) -> str | None: ...
    @property
    def new_value(self) -> str | None: ...
    @property
    def changed_at(self) -> datetime: ...


# Open stages in pipeline order; the closed ones share the rank after the last open stage, so
# closing (won or lost) is never a regression and won <-> lost is not one either.
OPEN_STAGES = tuple(s for s in CANONICAL_STAGES if not s.startswith("closed_"))
_CLOSED_RANK = len(OPEN_STAGES)
_RANK: dict[str, int] = {
    s: (OPEN_STAGES.index(s) if s in OPEN_STAGES else _CLOSED_RANK) for s in CANONICAL_STAGES
}
_WON = "closed_won"
_DAY = 86400.0
_BY_TIME = attrgetter("changed_at")
_FRACTIONS: dict[float, Decimal] = {}

# A run of one canonical stage: (start, stage). start is None for the stage the deal was in
# before its first recorded change (when that began is unknown).
_Run = tuple[datetime | None, str | None]


def _same(s: str | None) -> str | None:
    """The default stage mapping: history and opportunity already hold canonical stages."""
    return s


@dataclass(frozen=True, slots=True)
class Derived:
    """What the rules see besides the opportunity: ages, counts and stage facts from history."""

    days_in_stage: float | None  # now - stage_entered_at
    stage_entered_at: datetime | None
    days_since_activity: float | None  # since last_activity_at, else created_at
    close_date_push_count: int  # moves of the close date to a later date
    close_date_slip_days: int  # days added by those pushes, summed
    stage_regressions: int  # moves to a lower canonical stage, reopening included
    skipped_stages: tuple[str, ...]  # open stages jumped over, in pipeline order
    next_step_age_days: float | None  # since next_step last changed; None when it is empty
    weighted_amount: Decimal | None  # amount * probability / 100
    stage_percentile: float | None  # 0..100 among this pipeline's stays in the stage


def derive(
    opp: Opportunity,
    history: Sequence[HistoryLike],
    now: datetime,
    *,
    canonical_of: CanonicalOf = _same,
    durations: StageDurations | None = None,
    fields: Collection[str] | None = None,
) -> Derived:
    """The derived fields of one deal at `now`, from its history in one pass.

    Decisions worth knowing (the tests pin them down):

    * Stage: "stage_canonical" rows are preferred; "stage" rows (mapped through `canonical_of`)
      are used when there are none, and also for the time before the first "stage_canonical"
      row (Salesforce's own history only has native stages, crmsync's observed rows have both).
    * `stage_entered_at` is the start of the trailing run of the current stage. When the history
      ends on another stage it missed the move, which came after the last stage row: that row's
      time is used. The CRM's own `stage_entered_at` wins when later; without stage rows it is
      used, else `created_at`.
    * The opportunity's current stage and close date count as the last values of the history,
      so a move the history missed still counts as a push or a regression.
    * A regression is a move to a lower rank; both closed stages share the top rank, so closing
      is never one and won <-> lost is not one, but reopening a closed deal is.
    * Skipped stages are the open stages between the first recorded open stage and the highest
      one reached (through negotiation when the deal was ever won) that were never visited.
      Losing a deal skips nothing.
    * A cleared close date (no value) is neither a push nor a pull-in; the next date is
      compared with the last known one. Slip days are summed over pushes.
    * next_step ages from the start of its current value in the history (created_at when the
      history has no next_step rows, or only restates it); when the history ends on another
      value it missed the change, which came after its last next_step row.
    * Ages never go below zero (a stamp after `now` is clock skew).

    `fields` (names of `Derived` fields) limits the work to what a caller reads: the others are
    left at None (counts at 0, skipped_stages empty). Without it every field is computed.
    """
    return derive_wanted(opp, history, now, canonical_of, durations, work_plan(fields))


def work_plan(fields: Collection[str] | None) -> Wanted:
    """Which parts of the derivation `fields` need (all of them for None): for callers that
    derive many deals with one set of fields and call `derive_wanted` directly."""
    if fields is None:
        return _ALL
    found = _ALL_WANTED.get(fields) if isinstance(fields, frozenset) else None
    return found if found is not None else _wanted(fields)


def derive_wanted(
    opp: Opportunity,
    history: Sequence[HistoryLike] | HistorySummary,
    now: datetime,
    canonical_of: CanonicalOf,
    durations: StageDurations | None,
    want: Wanted,
) -> Derived:
    """`derive` with its work plan worked out beforehand (`work_plan`), all arguments by
    position: the evaluation loop calls it once per deal, with the deal's history or the
    summary of it that the sync keeps."""
    if not isinstance(history, HistorySummary):
        history = summarize(opp, history, canonical_of, want)
    return derive_from(opp, history, now, canonical_of, durations, want)


def summarize(
    opp: Opportunity,
    history: Sequence[HistoryLike],
    canonical_of: CanonicalOf = _same,
    want: Wanted | None = None,
) -> HistorySummary:
    """What the history says about the deal, independent of the clock (see `derive` for the
    decisions). `want` limits the work as in `derive_wanted`; without it everything is
    summarized, completed stays included: the sync keeps that in the store."""
    if want is None:
        want = _ALL
    want_stage, want_path, want_close, want_ns, _, _, want_pct = want
    pushes = slip = regressions = 0
    skipped: tuple[str, ...] = ()
    stays: tuple[tuple[str, float], ...] = ()
    next_step = opp.next_step if want_ns else None
    ns_changed: datetime | None = None
    entered: datetime | None = None

    if not history or not (want_stage or want_close or want_ns):
        if want_stage:
            entered = opp.stage_entered_at or opp.created_at
        if next_step:
            ns_changed = opp.created_at
    else:
        rows = sorted(history, key=_BY_TIME)
        stage_rows: list[HistoryLike] = []
        canon_rows: list[HistoryLike] = []
        close_text: str | None = None
        close_last: date | None = None
        close_seen = False
        ns_seen = False
        ns_value: str | None = None
        ns_start: datetime | None = None
        ns_last: datetime | None = None
        for row in rows:
            field = row.field
            if field == "stage_canonical":
                if want_stage:
                    canon_rows.append(row)
            elif field == "stage":
                if want_stage:
                    stage_rows.append(row)
            elif field == "close_date":
                if not want_close:
                    continue
                if not close_seen:
                    close_seen = True
                    close_text = row.old_value
                    close_last = _date(close_text)
                value = row.new_value
                if value is None or value == close_text:
                    continue
                moved = _date(value)
                if moved is None:
                    continue
                if close_last is not None and moved > close_last:
                    pushes += 1
                    slip += (moved - close_last).days
                close_text, close_last = value, moved
            elif field == "next_step":
                if not want_ns:
                    continue
                value = row.new_value or None
                ns_last = row.changed_at
                if not ns_seen:
                    ns_seen = True
                    ns_value = value
                    # a re-statement of the value before: it began earlier, when is unknown
                    ns_start = None if (row.old_value or None) == value else row.changed_at
                elif value != ns_value:
                    ns_value, ns_start = value, row.changed_at

        if close_last is not None and opp.close_date is not None and opp.close_date > close_last:
            pushes += 1
            slip += (opp.close_date - close_last).days

        if next_step:
            if not ns_seen:
                ns_changed = opp.created_at
            elif ns_value == next_step:
                ns_changed = ns_start or opp.created_at
            else:
                ns_changed = ns_last

        if want_stage:
            runs = _runs(stage_rows, canon_rows, canonical_of)
            if runs:
                current = _current(opp, canonical_of)
                last_start, last_stage = runs[-1]
                recorded = (canon_rows or stage_rows)[-1].changed_at
                from_history = last_start if last_stage == current else recorded
                crm = opp.stage_entered_at
                if from_history is None:
                    entered = crm or opp.created_at
                elif crm is not None and crm > from_history:
                    entered = crm
                else:
                    entered = from_history
                if want_path:
                    stages = [stage for _, stage in runs]
                    if last_stage != current:
                        stages.append(current)
                    regressions, skipped = _stage_path(stages)
                if want_pct:
                    stays = _stays(runs)
            else:
                entered = opp.stage_entered_at or opp.created_at
    return HistorySummary(entered, regressions, skipped, pushes, slip, ns_changed, stays)


def derive_from(
    opp: Opportunity,
    summary: HistorySummary,
    now: datetime,
    canonical_of: CanonicalOf,
    durations: StageDurations | None,
    want: Wanted,
) -> Derived:
    """The derived fields at `now` from a deal's history summary (made now or kept by the
    sync): only ages and the percentile depend on the clock. Fields outside `want` are left
    at None (counts at 0, skipped stages empty), as `derive` leaves them."""
    want_stage, want_path, want_close, want_ns, want_activity, want_weighted, want_pct = want
    entered = summary.stage_entered_at if want_stage else None
    days_in_stage = _age(now, entered)
    weighted: Decimal | None = None
    if want_weighted and opp.amount is not None and opp.probability is not None:
        weighted = opp.amount * _fraction(opp.probability)
    percentile: float | None = None
    if want_pct and durations is not None and days_in_stage is not None:
        current = _current(opp, canonical_of)
        if current is not None:
            percentile = durations.percentile_of(opp.pipeline, current, days_in_stage)
    return Derived(
        days_in_stage,
        entered,
        _age(now, opp.last_activity_at or opp.created_at) if want_activity else None,
        summary.close_date_push_count if want_close else 0,
        summary.close_date_slip_days if want_close else 0,
        summary.stage_regressions if want_path else 0,
        summary.skipped_stages if want_path else (),
        _age(now, summary.next_step_changed_at) if want_ns and opp.next_step else None,
        weighted,
        percentile,
    )


def _current(opp: Opportunity, canonical_of: CanonicalOf) -> str | None:
    """The deal's canonical stage now: crmsync's own, else its CRM stage mapped."""
    return opp.stage_canonical if opp.stage_canonical is not None else canonical_of(opp.stage)


SUMMARY_ALGORITHM = "1"  # raise it when `summarize` changes what it says: stored ones go stale


class StageSummarizer:
    """`summarize` with everything, for one connection's stage mapping: what the sync keeps
    (a `store.Summarizer`). Its version names the algorithm and the mapping, so a changed
    mapping file makes the kept summaries out of date rather than wrong."""

    __slots__ = ("canonical_of", "version")

    def __init__(self, stages: Mapping[str, str] | None) -> None:
        if stages is None:
            self.canonical_of: CanonicalOf = _same
            self.version = f"{SUMMARY_ALGORITHM}:same"
        else:
            self.canonical_of = stages.get  # type: ignore[assignment]  # None is no key
            text = json.dumps(sorted(stages.items()), ensure_ascii=False)
            digest = hashlib.sha256(text.encode()).hexdigest()[:16]
            self.version = f"{SUMMARY_ALGORITHM}:{digest}"

    def __call__(self, opp: Opportunity, history: Sequence[HistoryLike]) -> HistorySummary:
        return summarize(opp, history, self.canonical_of)


# Which parts of `derive` a set of field names needs: stage runs, the stage path (regressions,
# skipped stages), close-date moves, the next step, activity, weighted amount, percentile.
Wanted = tuple[bool, bool, bool, bool, bool, bool, bool]
_STAGE_FIELDS = frozenset(
    {"days_in_stage", "stage_entered_at", "stage_regressions", "skipped_stages", "stage_percentile"}
)


def _wanted(fields: Collection[str]) -> Wanted:
    names = set(fields)
    return (
        bool(names & _STAGE_FIELDS),
        bool(names & {"stage_regressions", "skipped_stages"}),
        bool(names & {"close_date_push_count", "close_date_slip_days"}),
        "next_step_age_days" in names,
        "days_since_activity" in names,
        "weighted_amount" in names,
        "stage_percentile" in names,
    )


_ALL: Wanted = (True, True, True, True, True, True, True)
_ALL_WANTED: dict[frozenset[str], Wanted] = {}


def history_fields(fields: Collection[str] | None) -> tuple[str, ...] | None:
    """The history fields `derive` reads to compute `fields` (None: all of them, unfiltered).

    Rows of other fields make no difference to what it computes, so a reader may leave them out.
    """
    if fields is None:
        return None
    want_stage, _, want_close, want_ns, *_ = _wanted(fields)
    out: list[str] = []
    if want_stage:
        out += ["stage", "stage_canonical"]
    if want_close:
        out.append("close_date")
    if want_ns:
        out.append("next_step")
    return tuple(out)


STAGE_HISTORY_FIELDS = ("stage", "stage_canonical")  # what `StageDurations` reads


def derive_fields(fields: Collection[str]) -> frozenset[str]:
    """`fields` as `derive` takes them fastest (its work plan is worked out once, here)."""
    frozen = frozenset(fields)
    if frozen not in _ALL_WANTED and len(_ALL_WANTED) < 256:
        _ALL_WANTED[frozen] = _wanted(frozen)
    return frozen


def _fraction(probability: float) -> Decimal:
    """A probability percent as an exact Decimal fraction ("10.1" -> 0.101), memoized: deals
    share a handful of stage probabilities, and Decimal from text is the costly part."""
    fraction = _FRACTIONS.get(probability)
    if fraction is None:
        fraction = Decimal(str(probability)) / 100
        if len(_FRACTIONS) < 4096:
            _FRACTIONS[probability] = fraction
    return fraction


def _age(now: datetime, then: datetime | None) -> float | None:
    """Days from `then` to `now`, never negative; None when `then` is unknown."""
    if then is None:
        return None
    days = (now - then).total_seconds() / _DAY
    return days if days > 0.0 else 0.0


def _date(text: str | None) -> date | None:
    """A close date from its history text ("2026-12-31", a datetime form tolerated)."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def _runs(
    stage_rows: Sequence[HistoryLike], canon_rows: Sequence[HistoryLike], canonical_of: CanonicalOf
) -> list[_Run]:
    """Contiguous runs of the canonical stage, oldest first, from rows sorted by time."""
    values: list[tuple[HistoryLike, str | None]]
    if canon_rows:
        first = canon_rows[0].changed_at
        early = [(r, canonical_of(r.new_value)) for r in stage_rows if r.changed_at < first]
        if early:
            values = [*early, *((r, r.new_value) for r in canon_rows)]
            initial = canonical_of(early[0][0].old_value)
        else:
            values = [(r, r.new_value) for r in canon_rows]
            initial = canon_rows[0].old_value
        initial_known = values[0][0].old_value is not None
    elif stage_rows:
        values = [(r, canonical_of(r.new_value)) for r in stage_rows]
        initial = canonical_of(stage_rows[0].old_value)
        initial_known = stage_rows[0].old_value is not None
    else:
        return []
    runs: list[_Run] = [(None, initial)] if initial_known else []
    for row, stage in values:
        if not runs or runs[-1][1] != stage:
            runs.append((row.changed_at, stage))
    return runs


def _stays(runs: Sequence[_Run]) -> tuple[tuple[str, float], ...]:
    """The completed stays along the runs: a run that another followed, its start known."""
    return tuple(
        (stage, (end - start).total_seconds() / _DAY)
        for (start, stage), (end, _) in pairwise(runs)
        if start is not None and end is not None and stage is not None
    )


def _stage_path(stages: Sequence[str | None]) -> tuple[int, tuple[str, ...]]:
    """Regressions and skipped open stages along a deal's stage path (unknown stages ignored)."""
    regressions = 0
    previous = -1
    first_open = -1
    highest_open = -1
    won = False
    visited = [False] * _CLOSED_RANK
    for stage in stages:
        rank = _RANK.get(stage) if stage is not None else None
        if rank is None:
            continue
        if rank < previous:
            regressions += 1
        previous = rank
        if rank == _CLOSED_RANK:
            won = won or stage == _WON
            continue
        visited[rank] = True
        if first_open < 0:
            first_open = rank
        if rank > highest_open:
            highest_open = rank
    if first_open < 0:
        return regressions, ()
    end = _CLOSED_RANK if won else highest_open
    skipped = tuple(OPEN_STAGES[r] for r in range(first_open + 1, end) if not visited[r])
    return regressions, skipped


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

    def add_history(
        self,
        opp: Opportunity,
        history: Sequence[HistoryLike],
        canonical_of: CanonicalOf = _same,
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
        canonical_of: CanonicalOf = _same,
    ) -> None:
        """`add_history` for a deal of `pipeline`: only its stage rows are read."""
        if not history:
            return
        stage_rows: list[HistoryLike] = []
        canon_rows: list[HistoryLike] = []
        for row in sorted(history, key=_BY_TIME):
            if row.field == "stage_canonical":
                canon_rows.append(row)
            elif row.field == "stage":
                stage_rows.append(row)
        self.add_stays(pipeline, _stays(_runs(stage_rows, canon_rows, canonical_of)))

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
