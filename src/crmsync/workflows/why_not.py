"""What a built-in rule reads of one deal, and why it does not fire: the words of
`crmsync plan --opportunity` (`explain`).

Whether a rule fires is never decided here: the compiled check of `rules` decides it, as in a
plan. For a rule that did not fire, `read_and_why` names the values the check read and the first
reason it stayed quiet, in this order: a guard (`stages:`, a closed deal), the stage not mapped
to a canonical stage, a value missing (null), the comparison false (with the values compared).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from crmsync.model import Opportunity
from crmsync.workflows.derived import Derived
from crmsync.workflows.percentiles import StageDurations
from crmsync.workflows.rules import Subject, stage_words
from crmsync.workflows.sales_filters import days as days_text
from crmsync.workflows.schema import (
    HygieneRule,
    Requirement,
    Rule,
    StageGateRule,
    StalenessRule,
    plain_number,
)

Condition = Callable[[Mapping[str, Any]], bool]
Read = dict[str, Any]

# What each staleness check reads besides the stage (derived fields and deal fields).
_STALENESS_READS = {
    "no_activity": ("days_since_activity", "last_activity_at", "created_at"),
    "stuck_in_stage": ("days_in_stage", "stage_entered_at", "pipeline"),
    "close_date_past": ("close_date", "today"),
    "close_date_pushed": ("close_date_push_count", "close_date"),
    "close_date_slipped": ("close_date_slip_days", "close_date"),
    "no_next_step": ("next_step",),
    "next_step_stale": ("next_step_age_days", "next_step"),
}
_HYGIENE_READS = {
    "amount_missing": ("amount",),
    "amount_implausible": ("amount", "currency"),
    "probability_mismatch": ("probability", "stage_canonical"),
    "closed_won_without_amount": ("stage_canonical", "amount"),
    "owner_missing": ("owner_id",),
    "owner_inactive": ("owner_active", "owner_name", "owner_id"),
}


def value_of(name: str, opp: Opportunity, derived: Derived, s: Subject) -> Any:
    """One variable as conditions and templates see it (the deal, its derived fields, today)."""
    if name == "today":
        return s.today
    if name == "key":
        return opp.key
    if hasattr(derived, name):
        return getattr(derived, name)
    return getattr(opp, name, None)


def reads(names: tuple[str, ...], s: Subject) -> Read:
    return {n: value_of(n, s.opp, s.derived, s) for n in names}


def unmapped(opp: Opportunity) -> str:
    """Why a rule that needs the canonical stage cannot use this deal's stage."""
    return (
        f"the stage {opp.stage!r} is not mapped to a canonical stage "
        "(add it to the connection's stage mapping)"
        if opp.stage
        else "the deal has no stage (null)"
    )


def _stage_guard(stages: Sequence[str] | None, opp: Opportunity) -> str | None:
    if not stages:
        return None
    if opp.stage_canonical is None:
        return unmapped(opp)
    if opp.stage_canonical not in stages:
        return (
            f"guard: stages: [{', '.join(stages)}] does not include the deal's stage "
            f"{opp.stage_canonical}"
        )
    return None


def read_and_why(
    rule: Rule,
    s: Subject,
    conditions: Mapping[str, Condition],
    durations: StageDurations | None,
) -> tuple[Read, str]:
    """The values `rule` reads of the deal `s` looks at, and why it does not fire on it."""
    if isinstance(rule, StalenessRule):
        read = reads(_STALENESS_READS[rule.check], s)
        if rule.stages or rule.check == "stuck_in_stage":
            read["stage_canonical"] = s.opp.stage_canonical
        return read, _staleness(rule, s, durations) or "the check is false"
    if isinstance(rule, HygieneRule):
        return reads(_HYGIENE_READS[rule.check], s), _hygiene(rule, s)
    if isinstance(rule, StageGateRule):
        return _gate(rule, s, conditions)
    raise TypeError(rule)


def _staleness(rule: StalenessRule, s: Subject, durations: StageDurations | None) -> str | None:
    opp, d = s.opp, s.derived
    guard = _stage_guard(rule.stages, opp)
    if guard is not None:
        return guard
    check, days, times = rule.check, rule.days, rule.times
    if check == "no_activity":
        if d.days_since_activity is None:
            return "missing: days_since_activity is null (no last_activity_at, no created_at)"
        return (
            f"false: no activity for {days_text(d.days_since_activity)}, "
            f"not more than the limit of {days}"
        )
    if check == "stuck_in_stage":
        if opp.stage_canonical is None:
            return unmapped(opp)
        if d.days_in_stage is None:
            return "missing: days_in_stage is null (no stage_entered_at)"
        held, stage = days_text(d.days_in_stage), stage_words(opp.stage_canonical)
        if rule.percentile is not None and durations is not None:
            usual = durations.threshold(opp.pipeline, opp.stage_canonical, rule.percentile)
            if usual is not None:
                return (
                    f"false: in {stage} for {held}, not more than the usual {int(usual // 1)} "
                    f"(the {rule.percentile:g}th percentile of {stage} in "
                    f"{opp.pipeline or 'this pipeline'})"
                )
        if days is None:
            return f"missing: too few recorded stays in {stage} in {opp.pipeline} for a percentile"
        return f"false: in {stage} for {held}, not more than the limit of {days}"
    if check == "close_date_past":
        if opp.close_date is None:
            return "missing: close_date is null"
        late = (s.today - opp.close_date).days
        when = f"{days_text(late)} ago" if late > 0 else "not passed"
        return f"false: close date {opp.close_date.isoformat()} {when}, {days or 0} allowed"
    if check == "close_date_pushed":
        n = d.close_date_push_count
        return f"false: close date pushed {n} times, fires at {times} or more"
    if check == "close_date_slipped":
        return (
            f"false: close date slipped {days_text(d.close_date_slip_days)} in all, "
            f"not more than the limit of {days}"
        )
    if check == "no_next_step":
        return "false: the next step is filled in"
    if d.next_step_age_days is None:
        return "missing: next_step is empty (null), so it has no age"
    return (
        f"false: next step unchanged for {days_text(d.next_step_age_days)}, "
        f"not more than the limit of {days}"
    )


def _hygiene(rule: HygieneRule, s: Subject) -> str:
    opp, check = s.opp, rule.check
    if check == "amount_missing":
        return "false: the amount is filled in"
    if check == "amount_implausible":
        if opp.amount is None:
            return "missing: amount is null"
        low = "" if rule.min is None else f"not below {plain_number(rule.min)}"
        high = "" if rule.max is None else f"not above {plain_number(rule.max)}"
        bounds = " and ".join(b for b in (low, high) if b)
        return f"false: amount {plain_number(opp.amount)} is {bounds}"
    if check == "probability_mismatch":
        if opp.stage_canonical is None:
            return unmapped(opp)
        if opp.probability is None:
            return "missing: probability is null"
        expected = rule.expected.get(opp.stage_canonical)  # type: ignore[call-overload]
        if expected is None:
            return f"guard: no expected probability for {stage_words(opp.stage_canonical)}"
        return (
            f"false: probability {opp.probability:g}% is within {rule.tolerance:g} points of "
            f"the {expected:g}% usual in {stage_words(opp.stage_canonical)}"
        )
    if check == "closed_won_without_amount":
        if not opp.is_won:
            if opp.stage_canonical is None:
                return unmapped(opp)
            return f"guard: the deal is not closed won (it is {stage_words(opp.stage_canonical)})"
        return "false: the amount is filled in"
    if check == "owner_missing":
        return "false: the deal has an owner"
    if opp.owner_active is None:
        return "missing: owner_active is null (the owner is not in the owner directory)"
    return "false: the owner is active"


def _gate(rule: StageGateRule, s: Subject, conditions: Mapping[str, Condition]) -> tuple[Read, str]:
    opp = s.opp
    read: Read = {"stage_canonical": opp.stage_canonical}
    if rule.fire_on_skipped_stages:
        read["skipped_stages"] = list(s.derived.skipped_stages)
    stage = opp.stage_canonical
    if stage is None:
        return read, unmapped(opp)
    items = rule.requirements().get(stage) or []
    for item in items:
        if isinstance(item, Requirement):
            read[item.label] = conditions[item.condition](s.cel())
        else:
            read[item] = getattr(opp, item)
    skipped = " and no stage was skipped" if rule.fire_on_skipped_stages else ""
    if not items:
        return read, f"guard: nothing is required in {stage_words(stage)}{skipped}"
    return read, f"false: every requirement of {stage_words(stage)} is met{skipped}"
