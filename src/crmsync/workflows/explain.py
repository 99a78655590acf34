"""Why one deal fires or does not fire each rule of a workflow: `crmsync plan --opportunity`.

Pure, like `plan`: a loaded workflow and one deal with its history in, an `Explanation` out,
nothing read or written elsewhere. Whether a rule fires is decided by the check a plan compiles
(`rules.compile_rule`), so an explanation never disagrees with a plan; this module adds the
values each rule read and, for a rule that did not fire, the first reason why: the deal is out
of the workflow's scope (and which part of the scope), a guard (a closed deal, `stages:`), the
stage not mapped, a missing value, the comparison false, a condition that failed, or a task
text that cannot be rendered (the plan sets such a firing aside).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from crmsync.model import Opportunity
from crmsync.model.records import HistorySummary
from crmsync.model.text import cut
from crmsync.store.history import HistoryLike, same_stage
from crmsync.workflows.condition import Condition
from crmsync.workflows.context import LazyContext
from crmsync.workflows.derived import derive, derive_from, work_plan
from crmsync.workflows.load import LoadedWorkflow
from crmsync.workflows.percentiles import StageDurations
from crmsync.workflows.render import ActionPlan, PlannedAction, reason_renderer
from crmsync.workflows.rules import Subject, applies_to_closed, compile_rule, rule_title
from crmsync.workflows.schema import CustomRule, Rule
from crmsync.workflows.templates import TemplateError
from crmsync.workflows.why_not import read_and_why, reads

__all__ = ["Explanation", "RuleExplanation", "explain", "shown"]

VALUE_LIMIT = 80  # characters of one text value shown


SCOPE_FAILED = "out of scope: scope.condition could not be evaluated"


@dataclass
class RuleExplanation:
    """One rule on one deal: fired or not, what it read, and why (its reasons, or why not)."""

    rule: str
    kind: str  # "staleness no_activity", "custom", ...
    title: str
    fired: bool
    why: str  # the reasons it fires for (joined), or why it does not
    values: dict[str, Any] = field(default_factory=dict)  # name -> value, JSON-ready
    reasons: list[str] = field(default_factory=list)
    actions: list[PlannedAction] = field(default_factory=list)
    route: str | None = None  # where its task would go instead of the owner, and why
    finding: str | None = None  # what the write-back holds of it (set by the caller)
    # a condition or text failed on this deal: apply keeps an open finding of it open
    undecided: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            **({"route": self.route} if self.route else {}),
            **({"finding": self.finding} if self.finding else {}),
            "rule": self.rule,
            "kind": self.kind,
            "title": self.title,
            "fired": self.fired,
            "why": self.why,
            "values": self.values,
            "reasons": self.reasons,
            "actions": [
                {k: shown(v) for k, v in dataclasses.asdict(a).items() if v is not None}
                for a in self.actions
            ],
        }


@dataclass
class Explanation:
    """One workflow on one deal: whether the deal is in scope (why not), and every rule."""

    workflow: str
    opportunity: Opportunity
    in_scope: bool
    scope: str  # "in scope", or which part of the scope leaves the deal out
    scope_values: dict[str, Any] = field(default_factory=dict)
    rules: list[RuleExplanation] = field(default_factory=list)
    mode: str | None = None  # "live, from file" etc. (set by the caller)

    def as_json(self) -> dict[str, Any]:
        opp = self.opportunity
        return {
            "workflow": self.workflow,
            **({"mode": self.mode} if self.mode else {}),
            "opportunity": opp.key,
            "name": opp.name,
            "in_scope": self.in_scope,
            "scope": self.scope,
            "scope_values": self.scope_values,
            "rules": [r.as_json() for r in self.rules],
        }


def shown(value: Any) -> Any:
    """A value as an explanation shows it: JSON-ready, days to one decimal, text cut."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return round(value, 1)
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() and abs(value) < 10**15 else str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [shown(v) for v in value[:20]]
    if isinstance(value, dict):
        return {str(k): shown(v) for k, v in list(value.items())[:20]}
    return cut(str(value), VALUE_LIMIT)


def explain(
    loaded: LoadedWorkflow,
    opp: Opportunity,
    history: Sequence[HistoryLike] | HistorySummary,
    now: datetime,
    *,
    canonical_of: Callable[[str | None], str | None] = same_stage,
    durations: StageDurations | None = None,
) -> Explanation:
    """Every rule of `loaded` on `opp` at `now`: fired or not, the values read, and why."""
    wf = loaded.workflow
    calendar = loaded.calendar
    today = calendar.today(now) if calendar is not None else now.date()
    if isinstance(history, HistorySummary):
        derived = derive_from(opp, history, now, canonical_of, durations, work_plan(None))
    else:
        derived = derive(opp, history, now, canonical_of=canonical_of, durations=durations)
    used = sorted({v for c in loaded.conditions.values() for v in c.variables})
    subject = Subject(opp, derived, today, LazyContext(used).of)
    conditions = loaded.conditions
    scope, scope_values = _scope(loaded, subject)
    out = Explanation(wf.name, opp, scope is None, scope or "in scope", scope_values)
    for rule in wf.rules:
        out.rules.append(_rule(loaded, rule, subject, conditions, durations, scope))
    return out


def _scope(loaded: LoadedWorkflow, s: Subject) -> tuple[str | None, dict[str, Any]]:
    """Why the deal is out of the workflow's scope (None: it is in), and the values read."""
    scope, opp = loaded.workflow.scope, s.opp
    values: dict[str, Any] = {}
    if scope.connections is not None and opp.connection not in scope.connections:
        values["connection"] = opp.connection
        return (
            f"out of scope: scope.connections [{', '.join(scope.connections)}] does not "
            f"include the deal's connection {opp.connection!r}",
            values,
        )
    if opp.deleted:
        return "out of scope: the deal is deleted in the CRM", {"deleted": True}
    if scope.pipelines and opp.pipeline not in scope.pipelines:
        values["pipeline"] = opp.pipeline
        return (
            f"out of scope: scope.pipelines [{', '.join(scope.pipelines)}] does not include "
            f"the deal's pipeline {opp.pipeline!r}",
            values,
        )
    if scope.condition:
        condition = loaded.conditions[scope.condition]
        values.update({k: shown(v) for k, v in reads(condition.variables, s).items()})
        try:
            inside = condition(s.cel())
        except Exception as e:
            return f"{SCOPE_FAILED}: {e}", values
        if not inside:
            return f"out of scope: scope.condition is false: {_one_line(scope.condition)}", values
    return None, values


def _rule(
    loaded: LoadedWorkflow,
    rule: Rule,
    s: Subject,
    conditions: dict[str, Condition],
    durations: StageDurations | None,
    out_of_scope: str | None,
) -> RuleExplanation:
    opp = s.opp
    check_name = getattr(rule, "check", None)
    kind = f"{rule.kind} {check_name}" if check_name else rule.kind
    if isinstance(rule, CustomRule):
        condition = conditions[rule.condition]
        values = reads(condition.variables, s)
        quiet = f"false: {_one_line(rule.condition)}"
    else:
        values, quiet = read_and_why(rule, s, conditions, durations)
    result = RuleExplanation(rule.id, kind, rule_title(rule), False, quiet)
    result.values = {k: shown(v) for k, v in values.items()}
    if out_of_scope is not None:
        result.why = "not evaluated: the deal is out of the workflow's scope"
        result.undecided = out_of_scope.startswith(SCOPE_FAILED)
        return result
    if opp.is_closed and not (loaded.workflow.scope.include_closed or applies_to_closed(rule)):
        result.values["stage_canonical"] = opp.stage_canonical
        result.why = (
            f"guard: the deal is closed ({opp.stage_canonical or opp.stage}); this rule looks "
            "at open deals only (scope.include_closed is false)"
        )
        return result
    explain_custom = reason_renderer(loaded, rule) if isinstance(rule, CustomRule) else None
    check = compile_rule(rule, conditions=conditions, durations=durations, explain=explain_custom)
    try:
        reasons = check(s)
    except TemplateError as e:
        result.why = f"set aside: its reason text cannot be rendered: {e}"
        result.undecided = True
        return result
    except Exception as e:
        result.why = f"error: the condition could not be evaluated: {e}"
        result.undecided = True
        return result
    if not reasons:
        return result
    try:
        actions = ActionPlan(loaded, rule).build(opp, s.derived, s.today, reasons)
    except TemplateError as e:
        result.why = f"set aside: fires ({'; '.join(reasons)}) but its task text fails: {e}"
        result.undecided = True
        return result
    result.fired, result.why, result.reasons, result.actions = (
        True,
        "; ".join(reasons),
        reasons,
        actions,
    )
    return result


def _one_line(source: str) -> str:
    return cut(" ".join(source.split()), 200)
