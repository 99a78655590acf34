"""Derived fields for workflow rules: what the field history says about a deal's hygiene, now.

`derive` turns one opportunity and its field history (or the summary of it the sync keeps,
`store.history`) into the numbers the hygiene rules test (days in stage, close-date pushes,
regressions, skipped stages, ...). Only ages and the stage percentile depend on the clock.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from crmsync.model import Opportunity
from crmsync.model.records import HistorySummary
from crmsync.store.history import (
    ALL_PARTS,
    DAY,
    CanonicalOf,
    HistoryLike,
    Wanted,
    current_stage,
    same_stage,
    summarize,
)
from crmsync.workflows.percentiles import StageDurations

_FRACTIONS: dict[float, Decimal] = {}


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
    canonical_of: CanonicalOf = same_stage,
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
        return ALL_PARTS
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
        current = current_stage(opp, canonical_of)
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


# Which parts of `derive` a set of field names needs: stage runs, the stage path (regressions,
# skipped stages), close-date moves, the next step, activity, weighted amount, percentile.
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
    days = (now - then).total_seconds() / DAY
    return days if days > 0.0 else 0.0
