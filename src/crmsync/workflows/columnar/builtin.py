"""Built-in rule kinds as columns: a vectorised test picks the deals that may fire, and the
rule's own words (rules.py's formatters) are written once per distinct value among those deals.

A rule here is a `Vector`: `candidate`, a boolean expression over the frame, and `decide`, a
plain function of a few of the candidate's values (`inputs`) that gives the reasons, or None
where the exact test says no (an amount rounded to cents as `money` shows it, say). Most
candidates fire outright; `decide` runs once per distinct input, not once per deal.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl

from crmsync.store.columnar import column_type
from crmsync.workflows.percentiles import StageDurations
from crmsync.workflows.rules import (
    field_words,
    gate_reasons,
    money_text,
    stage_words,
    to_cents,
)
from crmsync.workflows.sales_filters import days as days_text
from crmsync.workflows.sales_filters import ordinal
from crmsync.workflows.schema import (
    HygieneRule,
    Requirement,
    Rule,
    StageGateRule,
    StalenessRule,
)

Decide = Callable[..., list[str] | None]
# Python's own whitespace (what str.strip removes): "blank" means the same on columns. Written
# out, not found by testing every code point at import (a tenth of a second per command); a test
# holds it to str.isspace.
SPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


@dataclass(frozen=True)
class Vector:
    """One rule over a frame: which deals may fire, and their reasons from a few values."""

    candidate: pl.Expr
    inputs: tuple[pl.Expr, ...]  # what `decide` reads, in order (few distinct values)
    decide: Decide
    columns: frozenset[str]  # frame columns the rule reads
    extra: tuple[tuple[str, pl.Expr], ...] = ()  # columns the rule adds before its test
    unsure: pl.Expr | None = None  # rows the per-deal engine must decide (CEL unsure there)


class NotVectorised(Exception):
    """This rule runs on the per-deal engine (the message says why, for --explain-engine)."""


def _in_stages(stages: frozenset[str] | None) -> pl.Expr:
    if stages is None:
        return pl.lit(True)
    return pl.col("stage_canonical").is_in(sorted(stages)).fill_null(False)


def _whole(name: str) -> pl.Expr:
    """Completed days, as rules compare and show them."""
    return pl.col(name).floor()


def vector(
    rule: Rule,
    durations: StageDurations | None,
    requirement: Callable[[str], pl.Expr | None],
) -> Vector:
    """The rule as a `Vector`; NotVectorised when it needs the per-deal engine.
    `requirement` compiles a gate's CEL requirement (None: outside the subset)."""
    if isinstance(rule, StalenessRule):
        return _staleness(rule, durations)
    if isinstance(rule, HygieneRule):
        return _hygiene(rule)
    if isinstance(rule, StageGateRule):
        return _stage_gate(rule, requirement)
    raise NotVectorised("custom rules are compiled from their condition")


def _staleness(rule: StalenessRule, durations: StageDurations | None) -> Vector:
    stages = frozenset(rule.stages) if rule.stages else None
    days, times, check = rule.days, rule.times, rule.check
    where = _in_stages(stages)
    counted = ("no_activity", "close_date_pushed", "close_date_slipped", "next_step_stale")
    if check in counted and (days if check != "close_date_pushed" else times) is None:
        return Vector(pl.lit(False), (), lambda: None, frozenset())
    if check == "no_activity":
        limit = days
        return Vector(
            (_whole("days_since_activity") > limit).fill_null(False) & where,
            (_whole("days_since_activity"),),
            lambda idle: [f"no activity for {days_text(idle)} (limit {limit})"],
            frozenset({"days_since_activity", "stage_canonical"}),
        )
    if check == "next_step_stale":
        limit = days
        return Vector(
            (_whole("next_step_age_days") > limit).fill_null(False) & where,
            (_whole("next_step_age_days"),),
            lambda age: [f"next step unchanged for {days_text(age)} (limit {limit})"],
            frozenset({"next_step_age_days", "stage_canonical"}),
        )
    if check == "close_date_pushed":
        least = times
        return Vector(
            (pl.col("close_date_push_count") >= least).fill_null(False) & where,
            (pl.col("close_date_push_count"),),
            lambda n: [f"close date pushed {n} times ({least} or more flagged)"],
            frozenset({"close_date_push_count", "stage_canonical"}),
        )
    if check == "close_date_slipped":
        limit = days
        return Vector(
            (pl.col("close_date_slip_days") > limit).fill_null(False) & where,
            (pl.col("close_date_slip_days"),),
            lambda n: [f"close date slipped {days_text(n)} in all (limit {limit})"],
            frozenset({"close_date_slip_days", "stage_canonical"}),
        )
    if check == "no_next_step":
        filled = pl.col("next_step").is_not_null() & (pl.col("next_step") != "")
        return Vector(
            ~filled & where,
            (),
            lambda: ["no next step"],
            frozenset({"next_step", "stage_canonical"}),
        )
    if check == "close_date_past":
        grace = days or 0
        allowed = f", {grace} allowed" if grace else ""
        late = pl.col("late_days")

        def past(close: date, late: int) -> list[str] | None:
            return [f"close date {close.isoformat()} passed {days_text(late)} ago{allowed}"]

        return Vector(
            (late > grace).fill_null(False) & where,
            (pl.col("close_date"), pl.col("late_days")),
            past,
            frozenset({"close_date", "stage_canonical", "late_days"}),
        )
    return _stuck(rule, stages, durations)


def _stuck(rule: StalenessRule, stages: frozenset[str] | None, durations: Any) -> Vector:
    """Stuck in stage: the pipeline's percentile where there is one, else the fixed limit; the
    usual duration is looked up once per (pipeline, stage) in `decide`."""
    pct, days = rule.percentile, rule.days
    usual_of: dict[tuple[str | None, str], int | None] = {}

    def usual(pipeline: str | None, stage: str) -> int | None:
        key = (pipeline, stage)
        if key not in usual_of:
            threshold = durations.threshold(pipeline, stage, pct)
            usual_of[key] = None if threshold is None else int(threshold // 1)
        return usual_of[key]

    def stuck(held: float, stage: str, pipeline: str | None) -> list[str] | None:
        whole = math.floor(held)
        if pct is not None and durations is not None:
            limit = usual(pipeline, stage)
            if limit is not None:
                if whole <= limit:
                    return None
                which = ordinal(int(pct)) if pct == int(pct) else f"{pct:g}th"
                place = pipeline or "this pipeline"
                return [
                    f"in {stage_words(stage)} for {days_text(held)} (usual: {limit}, "
                    f"the {which} percentile of {stage_words(stage)} in {place})"
                ]
        if days is not None and whole > days:
            return [f"in {stage_words(stage)} for {days_text(held)} (limit {days})"]
        return None

    held = pl.col("days_in_stage")
    candidate = held.is_not_null() & pl.col("stage_canonical").is_not_null() & _in_stages(stages)
    if pct is None or durations is None:
        if days is None:
            return Vector(pl.lit(False), (), lambda: None, frozenset())
        candidate = candidate & (_whole("days_in_stage") > days)
    return Vector(
        candidate.fill_null(False),
        (_whole("days_in_stage"), pl.col("stage_canonical"), pl.col("pipeline")),
        stuck,
        frozenset({"days_in_stage", "stage_canonical", "pipeline"}),
    )


def _hygiene(rule: HygieneRule) -> Vector:
    check = rule.check
    if check == "amount_missing":
        return Vector(pl.col("amount").is_null(), (), lambda: ["no amount"], frozenset({"amount"}))
    if check == "amount_implausible":
        return _implausible(rule)
    if check == "probability_mismatch":
        expected: dict[str, float] = {str(k): v for k, v in rule.expected.items()}
        tolerance = rule.tolerance
        usual = pl.col("stage_canonical").replace_strict(
            expected, default=None, return_dtype=pl.Float64
        )

        def mismatch(p: float, stage: str) -> list[str] | None:
            return [
                f"probability {p:g}% is far from the {expected[stage]:g}% usual in "
                f"{stage_words(stage)} (more than {tolerance:g} points apart)"
            ]

        return Vector(
            ((pl.col("probability") - usual).abs() > tolerance).fill_null(False),
            (pl.col("probability"), pl.col("stage_canonical")),
            mismatch,
            frozenset({"probability", "stage_canonical"}),
        )
    if check == "closed_won_without_amount":
        empty = pl.col("amount").is_null() | (pl.col("amount") == 0.0).fill_null(False)
        return Vector(
            pl.col("is_won").fill_null(False) & empty,
            (),
            lambda: ["closed won with no amount"],
            frozenset({"is_won", "amount"}),
        )
    if check == "owner_missing":
        missing = pl.col("owner_id").is_null() | (pl.col("owner_id") == "")
        return Vector(missing, (), lambda: ["no owner"], frozenset({"owner_id"}))

    def inactive(name: str | None) -> list[str]:
        return [f"owner {name} is inactive" if name else "owner is inactive"]

    return Vector(
        (pl.col("owner_active") == False).fill_null(False),  # noqa: E712 (a column, not a bool)
        (pl.col("owner_name"),),
        inactive,
        frozenset({"owner_active", "owner_name"}),
    )


def _implausible(rule: HygieneRule) -> Vector:
    """Compared as `money` shows the amount (rounded to cents): the float test only narrows the
    deals down (a cent's margin and more), the exact Decimal test decides."""
    low = Decimal(str(rule.min)) if rule.min is not None else None
    high = Decimal(str(rule.max)) if rule.max is not None else None
    amount = pl.col("amount")
    candidate = pl.lit(False)
    if low is not None:
        candidate = candidate | (amount < float(low) + 1.0)
    if high is not None:
        candidate = candidate | (amount > float(high) - 1.0)

    def implausible(text: str, currency: str | None) -> list[str] | None:
        value = Decimal(text)
        if not value.is_finite():
            return None
        shown = to_cents(value)
        if low is not None and shown < low:
            return [f"amount {money_text(value, currency)} is below {money_text(low, currency)}"]
        if high is not None and shown > high:
            return [f"amount {money_text(value, currency)} is above {money_text(high, currency)}"]
        return None

    return Vector(
        candidate.fill_null(False),
        (pl.col("amount_text"), pl.col("currency")),
        implausible,
        frozenset({"amount", "amount_text", "currency"}),
    )


def _stage_gate(rule: StageGateRule, requirement: Callable[[str], pl.Expr | None]) -> Vector:
    """Per stage, one `missing_<i>` test per requirement; the reason names what is missing in
    the deal's stage. A CEL requirement left unsure on a row marks it for the reference
    (`unsure`); `decide` then gets None for that requirement and the engine asks CEL."""
    required = rule.requirements()
    columns: set[str] = {"stage_canonical"}
    labels: list[tuple[str, str]] = []  # (stage, label) per test, in order
    tests: list[pl.Expr] = []
    sources: list[str] = []
    for stage, items in required.items():
        for item in items:
            in_stage = pl.col("stage_canonical") == stage
            if isinstance(item, Requirement):
                compiled = requirement(item.condition)
                if compiled is None:
                    raise NotVectorised(f"requirement {item.label!r} is outside the CEL subset")
                tests.append(pl.when(in_stage).then(~compiled).otherwise(False))
                labels.append((stage, item.label))
                sources.append(item.condition)
            else:
                value = pl.col(item)
                kind = column_type(item) if item != "amount" else "float"  # parsed in `prepare`
                if kind == "text":
                    blank = value.is_null() | (value.str.strip_chars(SPACE).str.len_bytes() == 0)
                elif kind == "bool":
                    blank = value.is_null() | ~value.fill_null(True)
                else:
                    blank = value.is_null()
                tests.append(pl.when(in_stage).then(blank).otherwise(False))
                labels.append((stage, field_words(item)))
                columns.add(item)
    skipped = rule.fire_on_skipped_stages
    if skipped:
        columns.add("s_skipped_stages")
    names = tuple(f"missing_{i}" for i in range(len(tests)))
    missing_any = (
        pl.any_horizontal(*[pl.col(n).fill_null(False) for n in names]) if names else pl.lit(False)
    )
    jumped = pl.col("s_skipped_stages").is_not_null() & (pl.col("s_skipped_stages") != "[]")
    candidate = (missing_any if names else pl.lit(False)) | (jumped if skipped else pl.lit(False))
    unsure = pl.any_horizontal(*[pl.col(n).is_null() for n in names]) if sources else None

    def gate(stage: str | None, skipped_text: str | None, *missing: bool) -> list[str] | None:
        names_missing = [
            label for (at, label), gone in zip(labels, missing, strict=True) if gone and at == stage
        ]
        jumped = json.loads(skipped_text) if skipped and skipped_text else ()
        return gate_reasons(stage, names_missing, jumped)

    return Vector(
        candidate.fill_null(False),
        (pl.col("stage_canonical"), pl.col("s_skipped_stages"), *map(pl.col, names)),
        gate,
        frozenset(columns | {"s_skipped_stages"}),
        extra=tuple(zip(names, tests, strict=True)),
        unsure=unsure,
    )
