"""What a deal's field history says, independent of the clock: the summary the sync keeps.

`summarize` reads one deal and its history (both origins mixed, the same change possibly stated
twice, rows out of order): rows are sorted by `changed_at` (stable, so equal stamps keep their
order) and consecutive equal values collapse into one run, which makes duplicates and
re-statements harmless. `StageSummarizer` is what the sync hands the store, one per connection.
Workflows add the clock (`workflows.derived`) and the pipeline's stage percentiles
(`workflows.percentiles`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from itertools import pairwise
from operator import attrgetter
from typing import Protocol

from crmsync.model import CANONICAL_STAGES, Opportunity
from crmsync.model.records import HistorySummary

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
DAY = 86400.0
BY_TIME = attrgetter("changed_at")

# A run of one canonical stage: (start, stage). start is None for the stage the deal was in
# before its first recorded change (when that began is unknown).
Run = tuple[datetime | None, str | None]


def same_stage(s: str | None) -> str | None:
    """The default stage mapping: history and opportunity already hold canonical stages."""
    return s


# Which parts of the derivation a set of field names needs: stage runs, the stage path
# (regressions, skipped stages), close-date moves, the next step, activity, weighted amount,
# percentile (the last three only matter to `workflows.derived`).
Wanted = tuple[bool, bool, bool, bool, bool, bool, bool]
ALL_PARTS: Wanted = (True, True, True, True, True, True, True)


def summarize(
    opp: Opportunity,
    history: Sequence[HistoryLike],
    canonical_of: CanonicalOf = same_stage,
    want: Wanted | None = None,
) -> HistorySummary:
    """What the history says about the deal, independent of the clock (the decisions are listed
    at `workflows.derived.derive`). `want` limits the work as in `derive_wanted`; without it
    everything is summarized, completed stays included: the sync keeps that in the store."""
    if want is None:
        want = ALL_PARTS
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
        rows = sorted(history, key=BY_TIME)
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
            runs = stage_runs(stage_rows, canon_rows, canonical_of)
            if runs:
                current = current_stage(opp, canonical_of)
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
                    stays = completed_stays(runs)
            else:
                entered = opp.stage_entered_at or opp.created_at
    return HistorySummary(entered, regressions, skipped, pushes, slip, ns_changed, stays)


def current_stage(opp: Opportunity, canonical_of: CanonicalOf) -> str | None:
    """The deal's canonical stage now: crmsync's own, else its CRM stage mapped."""
    return opp.stage_canonical if opp.stage_canonical is not None else canonical_of(opp.stage)


SUMMARY_ALGORITHM = "1"  # raise it when `summarize` changes what it says: stored ones go stale


class StageSummarizer:
    """`summarize` with everything, for one connection's stage mapping: what the sync keeps
    (a `model.records.Summarizer`). Its version names the algorithm and the mapping, so a changed
    mapping file makes the kept summaries out of date rather than wrong."""

    __slots__ = ("canonical_of", "version")
    # the history fields `summarize` reads: the store reads back no others to remake a summary
    fields = ("stage", "stage_canonical", "close_date", "next_step")

    def __init__(self, stages: Mapping[str, str] | None) -> None:
        if stages is None:
            self.canonical_of: CanonicalOf = same_stage
            self.version = f"{SUMMARY_ALGORITHM}:same"
        else:
            self.canonical_of = stages.get  # type: ignore[assignment]  # None is no key
            text = json.dumps(sorted(stages.items()), ensure_ascii=False)
            digest = hashlib.sha256(text.encode()).hexdigest()[:16]
            self.version = f"{SUMMARY_ALGORITHM}:{digest}"

    def __call__(self, opp: Opportunity, history: Sequence[HistoryLike]) -> HistorySummary:
        return summarize(opp, history, self.canonical_of)


def _date(text: str | None) -> date | None:
    """A close date from its history text ("2026-12-31", a datetime form tolerated)."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def stage_runs(
    stage_rows: Sequence[HistoryLike], canon_rows: Sequence[HistoryLike], canonical_of: CanonicalOf
) -> list[Run]:
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
    runs: list[Run] = [(None, initial)] if initial_known else []
    for row, stage in values:
        if not runs or runs[-1][1] != stage:
            runs.append((row.changed_at, stage))
    return runs


def completed_stays(runs: Sequence[Run]) -> tuple[tuple[str, float], ...]:
    """The completed stays along the runs: a run that another followed, its start known."""
    return tuple(
        (stage, (end - start).total_seconds() / DAY)
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
