"""Workflow files: what a healthy pipeline looks like, as admins write it in `workflows/*.yaml`.

A workflow has a schedule, a scope (connections, pipelines, a condition), and rules. Each rule is
one check of one kind (stage_gate, staleness, hygiene, custom) and says what to do when it fires:
set a flag, create a task for the owner, remind while unresolved, clean up once fixed. Files may
carry examples (an opportunity, the rules it should fire and, in `expect:`, what they should
write: `expectations`) that `crmsync test` runs.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from crmsync.files import FieldError, FileModel
from crmsync.model import CANONICAL_STAGES, FIELDS
from crmsync.workflows.expectations import Expectation, check_expect

OPEN_STAGES = ("qualified", "discovery", "proposal", "negotiation")
Stage = Literal["qualified", "discovery", "proposal", "negotiation", "closed_won", "closed_lost"]


def _id(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,59}", value):
        raise ValueError(
            f"'{value}' must be lowercase letters, digits and dashes, like "
            "'pipeline-hygiene' (at most 60 characters)"
        )
    return value


Id = Annotated[str, AfterValidator(_id)]

# What a stage gate may require: normalized fields a deal must have filled in.
GATE_FIELDS = (
    "amount",
    "close_date",
    "next_step",
    "budget",
    "budget_confirmed",
    "economic_buyer",
    "pain",
    "timeline",
    "metrics",
    "decision_criteria",
    "decision_process",
    "champion",
    "owner_id",
    "account_id",
)

# BANT: budget, authority, need, timeline, once a deal is past first qualification.
BANT: dict[str, list[str]] = {
    "discovery": ["budget_confirmed", "economic_buyer", "pain", "timeline"],
}
# MEDDIC, built up stage by stage (each stage also needs what the earlier ones needed).
MEDDIC: dict[str, list[str]] = {
    "discovery": ["pain", "metrics"],
    "proposal": ["economic_buyer", "decision_criteria", "champion"],
    "negotiation": ["decision_process"],
}
PRESETS = {"bant": BANT, "meddic": MEDDIC}


# ---- actions ----------------------------------------------------------------------------------
class FlagAction(FileModel):
    """Set a flag field on the record while the rule fires (cleared once it stops)."""

    field: str = Field(min_length=1, description="a custom field of the connection's mapping")
    value: str = Field(min_length=1, max_length=80)


class TaskAction(FileModel):
    """A follow-up task for the opportunity's owner."""

    subject: str = Field(min_length=1, max_length=255)
    body: str = ""
    due_in_business_days: int = Field(default=2, ge=0, le=90)
    priority: Literal["low", "normal", "high"] = "normal"


class RemindAction(FileModel):
    """While the rule keeps firing: a new task, or the open task's due date moved, every N days."""

    every_days: int = Field(ge=1, le=365)
    mode: Literal["new_task", "update_due"] = "update_due"


class ResolveAction(FileModel):
    """Once the rule stops firing: clear the flag and complete the task, with a note."""

    clear_flag: bool = True
    close_task: bool = True
    note: str = "Resolved automatically: the condition that raised this task no longer holds."


class Actions(FileModel):
    flag: FlagAction | None = None
    task: TaskAction | None = None
    remind: RemindAction | None = None
    resolve: ResolveAction = Field(default_factory=ResolveAction)

    @model_validator(mode="after")
    def _remind_needs_task(self) -> Actions:
        if self.remind is not None and self.task is None:
            raise FieldError("remind needs a task to remind about", "remind", key=True)
        return self


# ---- rules ------------------------------------------------------------------------------------
class _Rule(FileModel):
    id: Id
    title: str = Field(default="", max_length=120, description="shown to admins and reps")
    actions: Actions = Field(default_factory=Actions)


class Requirement(FileModel):
    """A gate criterion beyond "this field is filled in": a CEL condition and its label."""

    label: str = Field(min_length=1)
    condition: str = Field(min_length=1)


class StageGateRule(_Rule):
    """What must be true for a deal to sit in a stage (exit criteria of the stages before it)."""

    kind: Literal["stage_gate"]
    preset: Literal["bant", "meddic"] | None = None
    requires: dict[Stage, list[str | Requirement]] = Field(default_factory=dict)
    cumulative: bool = True  # a stage also needs what the earlier stages needed
    fire_on_skipped_stages: bool = False

    @field_validator("requires")
    @classmethod
    def _known(cls, value: dict[str, list[str | Requirement]]) -> dict[str, Any]:
        for stage, items in value.items():
            if stage in ("closed_won", "closed_lost"):
                raise FieldError("gates apply to open stages only", stage, key=True)
            for i, item in enumerate(items):
                if isinstance(item, str) and item not in GATE_FIELDS:
                    close = _close(item, GATE_FIELDS)
                    raise FieldError(
                        f"'{item}' cannot be required{close}; gate fields are: "
                        f"{', '.join(GATE_FIELDS)}",
                        stage,
                        i,
                    )
        return value

    @model_validator(mode="after")
    def _something(self) -> StageGateRule:
        if not self.requires and self.preset is None and not self.fire_on_skipped_stages:
            raise FieldError(
                "a stage_gate needs `preset`, `requires` or `fire_on_skipped_stages`",
                "kind",
                key=True,
            )
        return self

    def requirements(self) -> dict[str, list[str | Requirement]]:
        """Per open stage, everything a deal there must have (presets and cumulation applied)."""
        own: dict[str, list[str | Requirement]] = {s: [] for s in OPEN_STAGES}
        for source in (PRESETS.get(self.preset or "", {}), self.requires):
            for stage, items in source.items():
                own[stage].extend(i for i in items if i not in own[stage])
        if not self.cumulative:
            return own
        out: dict[str, list[str | Requirement]] = {}
        acc: list[str | Requirement] = []
        for stage in OPEN_STAGES:
            acc = acc + [i for i in own[stage] if i not in acc]
            out[stage] = list(acc)
        return out


STALENESS_CHECKS = (
    "no_activity",
    "stuck_in_stage",
    "close_date_past",
    "close_date_pushed",
    "close_date_slipped",
    "no_next_step",
    "next_step_stale",
)


class StalenessRule(_Rule):
    """Stale deals: no activity, stuck in stage, close dates past or slipping, no next step."""

    kind: Literal["staleness"]
    check: Literal[
        "no_activity",
        "stuck_in_stage",
        "close_date_past",
        "close_date_pushed",
        "close_date_slipped",
        "no_next_step",
        "next_step_stale",
    ]
    days: int | None = Field(default=None, ge=0, le=3650)
    times: int | None = Field(default=None, ge=1, le=100)
    percentile: float | None = Field(default=None, gt=0, lt=100)
    stages: list[Stage] | None = None  # only deals in these canonical stages

    @model_validator(mode="after")
    def _params(self) -> StalenessRule:
        needs = {
            "no_activity": "days",
            "close_date_slipped": "days",
            "next_step_stale": "days",
            "close_date_pushed": "times",
        }.get(self.check)
        if needs and getattr(self, needs) is None:
            raise FieldError(f"check '{self.check}' needs `{needs}`", "check")
        if self.check == "stuck_in_stage" and self.days is None and self.percentile is None:
            raise FieldError("check 'stuck_in_stage' needs `days` or `percentile`", "check")
        return self


HYGIENE_CHECKS = (
    "amount_missing",
    "amount_implausible",
    "probability_mismatch",
    "closed_won_without_amount",
    "owner_missing",
    "owner_inactive",
)
# The probability each canonical stage usually carries; `probability_mismatch` compares with it.
STAGE_PROBABILITY: dict[Stage, float] = {
    "qualified": 10.0,
    "discovery": 25.0,
    "proposal": 50.0,
    "negotiation": 75.0,
    "closed_won": 100.0,
    "closed_lost": 0.0,
}


class HygieneRule(_Rule):
    """Records that cannot be right: missing or implausible amounts, probabilities, owners."""

    kind: Literal["hygiene"]
    check: Literal[
        "amount_missing",
        "amount_implausible",
        "probability_mismatch",
        "closed_won_without_amount",
        "owner_missing",
        "owner_inactive",
    ]
    min: float | None = None
    max: float | None = None
    tolerance: float = Field(default=25.0, ge=0, le=100)
    expected: dict[Stage, float] = Field(default_factory=lambda: dict(STAGE_PROBABILITY))

    @model_validator(mode="after")
    def _params(self) -> HygieneRule:
        if self.check == "amount_implausible":
            if self.min is None and self.max is None:
                raise FieldError("check 'amount_implausible' needs `min` or `max`", "check")
            if self.min is not None and self.max is not None and self.min >= self.max:
                raise FieldError(
                    f"min ({plain_number(self.min)}) must be below max ({plain_number(self.max)})",
                    "min",
                )
        return self


class CustomRule(_Rule):
    """Anything else, as a CEL condition over the opportunity and its derived fields."""

    kind: Literal["custom"]
    condition: str = Field(min_length=1)
    reason: str = Field(
        default="", description="a template saying why, in plain words: reps read it in tasks"
    )


Rule = Annotated[
    StageGateRule | StalenessRule | HygieneRule | CustomRule, Field(discriminator="kind")
]


# ---- the workflow -----------------------------------------------------------------------------
class Schedule(FileModel):
    cron: str = Field(min_length=1)
    timezone: str = "UTC"


class Calendar(FileModel):
    """Whose business days due dates count: a country (and region) from the holidays package."""

    country: str | None = None
    subdivision: str | None = None
    timezone: str = "UTC"


class Scope(FileModel):
    connections: list[str] | None = None  # None: every configured connection
    pipelines: list[str] | None = None
    condition: str | None = None
    include_closed: bool = False


class Example(FileModel):
    """An opportunity (and optionally its history) with the rules it should fire."""

    name: str = Field(min_length=1)
    now: datetime
    opportunity: dict[str, Any]
    history: list[dict[str, Any]] = Field(default_factory=list)
    fires: list[str]
    expect: dict[str, Expectation] = Field(default_factory=dict)  # rule: what it should write

    @field_validator("opportunity")
    @classmethod
    def _fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        allowed = set(FIELDS) | {"custom", "native_id", "connection", "source"}
        for name in value:
            if name not in allowed:
                raise FieldError(
                    f"'{name}' is not an opportunity field{_close(name, allowed)}", name, key=True
                )
        return value


class Workflow(FileModel):
    """One workflow file."""

    name: Id
    description: str = ""
    mode: Literal["shadow", "live"] = "shadow"
    # How the findings already there when the workflow goes live get tasks: none (only new
    # findings from then on), all (every one at once), ramp (at most ramp_per_owner_per_day of
    # them a day per owner, by priority; default: the owner's daily budget of new tasks).
    enroll: Literal["none", "all", "ramp"] = "ramp"
    ramp_per_owner_per_day: int | None = Field(default=None, ge=1, le=100_000, strict=True)
    schedule: Schedule | None = None
    calendar: Calendar = Field(default_factory=Calendar)
    scope: Scope = Field(default_factory=Scope)
    rules: list[Rule] = Field(min_length=1)
    examples: list[Example] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_and_known(self) -> Workflow:
        if self.ramp_per_owner_per_day is not None and self.enroll != "ramp":
            raise FieldError(
                f"needs `enroll: ramp` (enroll is '{self.enroll}')",
                "ramp_per_owner_per_day",
            )
        seen: dict[str, int] = {}
        for i, rule in enumerate(self.rules):
            if rule.id in seen:
                raise FieldError(
                    f"duplicate rule id '{rule.id}' (also rules[{seen[rule.id]}])", "rules", i, "id"
                )
            seen[rule.id] = i
        for i, example in enumerate(self.examples):
            for j, rule_id in enumerate(example.fires):
                if rule_id not in seen:
                    raise FieldError(
                        f"no rule '{rule_id}' in this workflow{_close(rule_id, seen)}",
                        "examples",
                        i,
                        "fires",
                        j,
                    )
        check_expect(
            {r.id: (r.actions.task is not None, r.actions.flag is not None) for r in self.rules},
            [(e.fires, e.expect) for e in self.examples],
        )
        return self


def plain_number(value: float | Decimal) -> str:
    """A number as people write it: 5000000, 0.01, 12500.5 (no exponent, no trailing 0)."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _close(name: str, options: Any) -> str:
    import difflib

    match = difflib.get_close_matches(name, list(options), n=1)
    return f" (did you mean '{match[0]}'?)" if match else ""


__all__ = ["CANONICAL_STAGES", "Rule", "Workflow"]
