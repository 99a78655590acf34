"""Rule kinds compiled to plain checks: opportunity + derived fields in, reasons out.

Each check returns None when the rule does not fire, or the list of reasons it fires for, each
naming the value and the threshold (`days_since_activity=23 > 14`), so that `crmsync plan` can
explain every firing. Built-in kinds are plain Python (fast); only `custom` rules and scope
conditions run CEL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from crmsync.model import Opportunity
from crmsync.workflows.derived import Derived, StageDurations
from crmsync.workflows.schema import (
    OPEN_STAGES,
    CustomRule,
    HygieneRule,
    Requirement,
    Rule,
    StageGateRule,
    StalenessRule,
    plain_number,
)


@dataclass(frozen=True)
class Subject:
    """What a check looks at: the opportunity, its derived fields, today, and a CEL context."""

    opp: Opportunity
    derived: Derived
    today: date
    cel: Callable[[], Mapping[str, Any]]  # built on first use: most checks never need it


Check = Callable[[Subject], list[str] | None]
Condition = Callable[[Mapping[str, Any]], bool]


def compile_rule(
    rule: Rule, *, conditions: Mapping[str, Condition], durations: StageDurations | None
) -> Check:
    """The check for one rule; `conditions` holds the compiled CEL of custom rules and gates."""
    if isinstance(rule, StalenessRule):
        return _staleness(rule, durations)
    if isinstance(rule, HygieneRule):
        return _hygiene(rule)
    if isinstance(rule, StageGateRule):
        return _stage_gate(rule, conditions)
    if isinstance(rule, CustomRule):
        condition = conditions[rule.condition]
        return lambda s: [f"{rule.condition} is true"] if condition(s.cel()) else None
    raise TypeError(rule)


def applies_to_closed(rule: Rule) -> bool:
    """Most rules look at open deals only; these also (or only) concern closed ones."""
    return isinstance(rule, CustomRule) or (
        isinstance(rule, HygieneRule) and rule.check == "closed_won_without_amount"
    )


# ---- staleness ---------------------------------------------------------------------------
def _staleness(rule: StalenessRule, durations: StageDurations | None) -> Check:
    stages = set(rule.stages) if rule.stages else None
    days, times = rule.days, rule.times

    def in_stages(s: Subject) -> bool:
        return stages is None or s.opp.stage_canonical in stages

    if rule.check == "no_activity":

        def no_activity(s: Subject) -> list[str] | None:
            idle = s.derived.days_since_activity
            if in_stages(s) and idle is not None and days is not None and idle > days:
                return [f"days_since_activity={int(idle)} > {days}"]
            return None

        return no_activity
    if rule.check == "stuck_in_stage":
        pct = rule.percentile

        def stuck(s: Subject) -> list[str] | None:
            held = s.derived.days_in_stage
            stage = s.opp.stage_canonical
            if held is None or stage is None or not in_stages(s):
                return None
            if pct is not None and durations is not None:
                limit = durations.threshold(s.opp.pipeline, stage, pct)
                if limit is not None:
                    if held > limit:
                        return [
                            f"days_in_stage={int(held)} > {limit:.0f} (p{pct:g} of {stage} "
                            f"in {s.opp.pipeline or 'this pipeline'})"
                        ]
                    return None
            if days is not None and held > days:
                return [f"days_in_stage={int(held)} > {days} ({stage})"]
            return None

        return stuck
    if rule.check == "close_date_past":
        grace = days or 0

        def past(s: Subject) -> list[str] | None:
            close = s.opp.close_date
            if close is not None and in_stages(s) and (s.today - close).days > grace:
                return [f"close_date={close.isoformat()} < today {s.today.isoformat()}"]
            return None

        return past
    if rule.check == "close_date_pushed":

        def pushed(s: Subject) -> list[str] | None:
            n = s.derived.close_date_push_count
            if in_stages(s) and times is not None and n >= times:
                return [f"close_date_push_count={n} >= {times}"]
            return None

        return pushed
    if rule.check == "close_date_slipped":

        def slipped(s: Subject) -> list[str] | None:
            n = s.derived.close_date_slip_days
            if in_stages(s) and days is not None and n > days:
                return [f"close_date_slip_days={n} > {days}"]
            return None

        return slipped
    if rule.check == "no_next_step":
        return lambda s: ["next_step is empty"] if in_stages(s) and not s.opp.next_step else None

    def next_step_stale(s: Subject) -> list[str] | None:
        age = s.derived.next_step_age_days
        if in_stages(s) and age is not None and days is not None and age > days:
            return [f"next_step unchanged for {int(age)} days > {days}"]
        return None

    return next_step_stale


# ---- hygiene -----------------------------------------------------------------------------
def _hygiene(rule: HygieneRule) -> Check:
    if rule.check == "amount_missing":
        return lambda s: ["amount is missing"] if s.opp.amount is None else None
    if rule.check == "amount_implausible":
        low = Decimal(str(rule.min)) if rule.min is not None else None
        high = Decimal(str(rule.max)) if rule.max is not None else None

        def implausible(s: Subject) -> list[str] | None:
            amount = s.opp.amount
            if amount is None:
                return None
            if low is not None and amount < low:
                return [f"amount={plain_number(amount)} < {plain_number(low)}"]
            if high is not None and amount > high:
                return [f"amount={plain_number(amount)} > {plain_number(high)}"]
            return None

        return implausible
    if rule.check == "probability_mismatch":
        expected, tolerance = rule.expected, rule.tolerance

        def mismatch(s: Subject) -> list[str] | None:
            p, stage = s.opp.probability, s.opp.stage_canonical
            if p is None or stage is None or stage not in expected:
                return None
            if abs(p - expected[stage]) > tolerance:
                return [
                    f"probability={p:g} differs from {expected[stage]:g} ({stage}) by more "
                    f"than {tolerance:g}"
                ]
            return None

        return mismatch
    if rule.check == "closed_won_without_amount":
        return lambda s: (
            ["closed won with no amount"] if s.opp.is_won and not s.opp.amount else None
        )
    if rule.check == "owner_missing":
        return lambda s: ["owner is missing"] if not s.opp.owner_id else None
    return lambda s: (
        [f"owner {s.opp.owner_name or s.opp.owner_id} is inactive"]
        if s.opp.owner_active is False
        else None
    )


# ---- stage gates -------------------------------------------------------------------------
def _filled(value: Any) -> bool:
    if value is None or value is False:
        return False
    return not (isinstance(value, str) and not value.strip())


def _stage_gate(rule: StageGateRule, conditions: Mapping[str, Condition]) -> Check:
    required = rule.requirements()
    skipped = rule.fire_on_skipped_stages

    def gate(s: Subject) -> list[str] | None:
        stage = s.opp.stage_canonical
        reasons: list[str] = []
        if stage in OPEN_STAGES:
            missing = []
            for item in required[stage]:
                if isinstance(item, Requirement):
                    if not conditions[item.condition](s.cel()):
                        missing.append(item.label)
                elif not _filled(getattr(s.opp, item)):
                    missing.append(item)
            if missing:
                reasons.append(f"stage={stage} requires {', '.join(missing)}: missing")
        if skipped and s.derived.skipped_stages:
            reasons.append(f"skipped {', '.join(s.derived.skipped_stages)} on the way to {stage}")
        return reasons or None

    return gate
