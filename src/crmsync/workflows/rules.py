"""Rule kinds compiled to plain checks: opportunity + derived fields in, reasons out.

Each check returns None when the rule does not fire, or the list of reasons it fires for: plain
sentences naming the value and the limit (``no activity for 23 days (limit 14)``), which reps
read in tasks and digests and admins in `crmsync plan`. Numbers are written by the one formatter
of `sales_filters` (task templates use it too) and days are compared as they are shown, in
completed days, so a reason never looks false. A custom rule's reason is its `reason:` template
rendered for the deal (`render.reason_renderer`), never its CEL. Built-in kinds are plain Python
(fast); only `custom` rules and scope conditions run CEL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from operator import attrgetter
from typing import Any

from crmsync.model import Opportunity
from crmsync.workflows.derived import Derived
from crmsync.workflows.percentiles import StageDurations
from crmsync.workflows.sales_filters import days as days_text
from crmsync.workflows.sales_filters import money, ordinal
from crmsync.workflows.schema import (
    CustomRule,
    HygieneRule,
    Requirement,
    Rule,
    StageGateRule,
    StalenessRule,
    plain_number,
)


class Subject:
    """What a check looks at: the opportunity, its derived fields, today, and a CEL context.

    The CEL context is built on first use (most checks never need it) by `build`, and kept for
    the other conditions on the same deal. The evaluation loop reuses one Subject for every
    deal (`reset`), so a deal costs no allocation here.
    """

    __slots__ = ("_build", "_context", "derived", "opp", "today")

    def __init__(
        self,
        opp: Opportunity,
        derived: Derived,
        today: date,
        cel: Callable[[Subject], Mapping[str, Any]],
    ) -> None:
        self.opp = opp
        self.derived = derived
        self.today = today
        self._build = cel
        self._context: Mapping[str, Any] | None = None

    def reset(self, opp: Opportunity, derived: Derived) -> None:
        """Look at another deal (same day, same context builder)."""
        self.opp = opp
        self.derived = derived
        self._context = None

    def cel(self) -> Mapping[str, Any]:
        """The deal as CEL sees it: built once per deal, on first use."""
        context = self._context
        if context is None:
            context = self._context = self._build(self)
        return context


Check = Callable[[Subject], list[str] | None]
Condition = Callable[[Mapping[str, Any]], bool]
Explain = Callable[[Opportunity, Derived, date], str]


def compile_rule(
    rule: Rule,
    *,
    conditions: Mapping[str, Condition],
    durations: StageDurations | None,
    explain: Explain | None = None,
) -> Check:
    """The check for one rule; `conditions` holds the compiled CEL of custom rules and gates,
    `explain` says why a custom rule fires (its rendered `reason:`; without one, a neutral
    sentence naming the rule)."""
    if isinstance(rule, StalenessRule):
        return _staleness(rule, durations)
    if isinstance(rule, HygieneRule):
        return _hygiene(rule)
    if isinstance(rule, StageGateRule):
        return _stage_gate(rule, conditions)
    if isinstance(rule, CustomRule):
        condition = conditions[rule.condition]
        if explain is None:
            fixed = f'meets the condition of "{rule_title(rule)}"'
            return lambda s: [fixed] if condition(s.cel()) else None
        say = explain
        return lambda s: [say(s.opp, s.derived, s.today)] if condition(s.cel()) else None
    raise TypeError(rule)


def rule_title(rule: Rule) -> str:
    """What reps see as a rule's name: its title, or its id in words (never the id itself)."""
    return rule.title or rule.id.replace("-", " ").capitalize()


def stage_words(stage: str) -> str:
    """A canonical stage as words: ``closed_won`` is ``closed won``."""
    return stage.replace("_", " ")


def _field_words(name: str) -> str:
    return name.replace("_", " ")


def _and(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def applies_to_closed(rule: Rule) -> bool:
    """Most rules look at open deals only; these also (or only) concern closed ones."""
    return isinstance(rule, CustomRule) or (
        isinstance(rule, HygieneRule) and rule.check == "closed_won_without_amount"
    )


# Which derived fields each staleness check reads (see `derived_needs`).
_STALENESS_NEEDS = {
    "no_activity": ("days_since_activity",),
    "stuck_in_stage": ("days_in_stage",),
    "close_date_pushed": ("close_date_push_count",),
    "close_date_slipped": ("close_date_slip_days",),
    "next_step_stale": ("next_step_age_days",),
}


def derived_needs(rule: Rule) -> frozenset[str]:
    """The derived fields a built-in rule's check reads (a custom rule's come from its CEL)."""
    if isinstance(rule, StalenessRule):
        return frozenset(_STALENESS_NEEDS.get(rule.check, ()))
    if isinstance(rule, StageGateRule) and rule.fire_on_skipped_stages:
        return frozenset({"skipped_stages"})
    return frozenset()


# ---- staleness ---------------------------------------------------------------------------
def _never(s: Subject) -> list[str] | None:
    return None


def _staleness(rule: StalenessRule, durations: StageDurations | None) -> Check:
    stages = frozenset(rule.stages) if rule.stages else None
    days, times = rule.days, rule.times

    if rule.check == "no_activity":
        if days is None:
            return _never

        def no_activity(s: Subject) -> list[str] | None:
            idle = s.derived.days_since_activity
            if idle is None or idle // 1 <= days:  # completed days, as shown
                return None
            if stages is not None and s.opp.stage_canonical not in stages:
                return None
            return [f"no activity for {days_text(idle)} (limit {days})"]

        return no_activity
    if rule.check == "stuck_in_stage":
        pct = rule.percentile

        def stuck(s: Subject) -> list[str] | None:
            held = s.derived.days_in_stage
            opp = s.opp
            stage = opp.stage_canonical
            if held is None or stage is None or (stages is not None and stage not in stages):
                return None
            whole = held // 1  # completed days, compared and shown
            if pct is not None and durations is not None:
                threshold = durations.threshold(opp.pipeline, stage, pct)
                if threshold is not None:
                    usual = int(threshold // 1)
                    if whole > usual:
                        which = ordinal(int(pct)) if pct == int(pct) else f"{pct:g}th"
                        where = opp.pipeline or "this pipeline"
                        return [
                            f"in {stage_words(stage)} for {days_text(held)} (usual: {usual}, "
                            f"the {which} percentile of {stage_words(stage)} in {where})"
                        ]
                    return None
            if days is not None and whole > days:
                return [f"in {stage_words(stage)} for {days_text(held)} (limit {days})"]
            return None

        return stuck
    if rule.check == "close_date_past":
        grace = days or 0

        def past(s: Subject) -> list[str] | None:
            close = s.opp.close_date
            if close is None or (s.today - close).days <= grace:
                return None
            if stages is not None and s.opp.stage_canonical not in stages:
                return None
            late = (s.today - close).days
            allowed = f", {grace} allowed" if grace else ""
            return [f"close date {close.isoformat()} passed {days_text(late)} ago{allowed}"]

        return past
    if rule.check == "close_date_pushed":
        if times is None:
            return _never

        def pushed(s: Subject) -> list[str] | None:
            n = s.derived.close_date_push_count
            if n < times or (stages is not None and s.opp.stage_canonical not in stages):
                return None
            return [f"close date pushed {n} times ({times} or more flagged)"]

        return pushed
    if rule.check == "close_date_slipped":
        if days is None:
            return _never

        def slipped(s: Subject) -> list[str] | None:
            n = s.derived.close_date_slip_days
            if n <= days or (stages is not None and s.opp.stage_canonical not in stages):
                return None
            return [f"close date slipped {days_text(n)} in all (limit {days})"]

        return slipped
    if rule.check == "no_next_step":

        def no_next_step(s: Subject) -> list[str] | None:
            opp = s.opp
            if opp.next_step or (stages is not None and opp.stage_canonical not in stages):
                return None
            return ["no next step"]

        return no_next_step
    if days is None:
        return _never

    def next_step_stale(s: Subject) -> list[str] | None:
        age = s.derived.next_step_age_days
        if age is None or age // 1 <= days:  # completed days, as shown
            return None
        if stages is not None and s.opp.stage_canonical not in stages:
            return None
        return [f"next step unchanged for {days_text(age)} (limit {days})"]

    return next_step_stale


# ---- hygiene -----------------------------------------------------------------------------
def _hygiene(rule: HygieneRule) -> Check:
    if rule.check == "amount_missing":
        return lambda s: ["no amount"] if s.opp.amount is None else None
    if rule.check == "amount_implausible":
        low = Decimal(str(rule.min)) if rule.min is not None else None
        high = Decimal(str(rule.max)) if rule.max is not None else None

        def implausible(s: Subject) -> list[str] | None:
            amount = s.opp.amount
            if amount is None or not amount.is_finite():
                return None
            shown = _to_cents(amount)  # compared as `money` shows it
            currency = s.opp.currency
            if low is not None and shown < low:
                return [f"amount {_money(amount, currency)} is below {_money(low, currency)}"]
            if high is not None and shown > high:
                return [f"amount {_money(amount, currency)} is above {_money(high, currency)}"]
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
                    f"probability {p:g}% is far from the {expected[stage]:g}% usual in "
                    f"{stage_words(stage)} (more than {tolerance:g} points apart)"
                ]
            return None

        return mismatch
    if rule.check == "closed_won_without_amount":
        return lambda s: (
            ["closed won with no amount"] if s.opp.is_won and not s.opp.amount else None
        )
    if rule.check == "owner_missing":
        return lambda s: ["no owner"] if not s.opp.owner_id else None
    return lambda s: (
        [f"owner {s.opp.owner_name} is inactive" if s.opp.owner_name else "owner is inactive"]
        if s.opp.owner_active is False
        else None
    )


def _to_cents(amount: Decimal) -> Decimal:
    """An amount rounded half up to cents, as `money` shows it (a huge one as it is)."""
    if amount.adjusted() >= 20:
        return amount
    return amount.quantize(_CENT, rounding=ROUND_HALF_UP)


def _money(amount: Decimal, currency: str | None) -> str:
    """`money`, or the plain number for an amount too large for it (1e30 and up)."""
    try:
        return money(amount, currency)
    except ValueError:
        return plain_number(amount)


_CENT = Decimal("0.01")


# ---- stage gates -------------------------------------------------------------------------
def _filled(value: Any) -> bool:
    if value is None or value is False:
        return False
    return not (isinstance(value, str) and not value.strip())


def _stage_gate(rule: StageGateRule, conditions: Mapping[str, Condition]) -> Check:
    required = rule.requirements()
    skipped = rule.fire_on_skipped_stages
    # per stage: the requirements in order, each (field getter or CEL condition, label)
    gates: dict[str, tuple[tuple[Callable[[Opportunity], Any] | None, Condition | None, str], ...]]
    gates = {
        stage: tuple(
            (None, conditions[item.condition], item.label)
            if isinstance(item, Requirement)
            else (attrgetter(item), None, _field_words(item))
            for item in items
        )
        for stage, items in required.items()
        if items
    }

    def gate(s: Subject) -> list[str] | None:
        opp = s.opp
        stage = opp.stage_canonical
        items = gates.get(stage) if stage is not None else None
        missing: list[str] = []
        if items is not None:
            for get, condition, label in items:
                if get is not None:
                    value = get(opp)
                    if (
                        value is None
                        or value is False
                        or (isinstance(value, str) and not value.strip())
                    ):
                        missing.append(label)
                elif condition is not None and not condition(s.cel()):
                    missing.append(label)
        return gate_reasons(stage, missing, s.derived.skipped_stages if skipped else ())

    return gate


def gate_reasons(
    stage: str | None, missing: Sequence[str], jumped: Sequence[str]
) -> list[str] | None:
    """A stage gate's reasons (both engines word them here): what the deal's stage needs and
    it lacks, then the stages it skipped on the way."""
    reasons = []
    if missing:
        reasons.append(f"missing {_and(list(missing))} (needed in {stage_words(stage or '')})")
    if jumped:
        words = _and([stage_words(j) for j in jumped])
        reasons.append(f"skipped {words} on the way to {stage_words(stage or '')}")
    return reasons or None


# The reason wording's pieces, for the columnar engine (which writes the same reasons).
field_words = _field_words
money_text = _money
to_cents = _to_cents
