"""Evaluating a workflow over one connection's opportunities: which rules fire, why, and what
would be done. Pure: it reads the store and writes nothing anywhere.

Opportunities and their field history are streamed together (both ordered by key), so memory
does not grow with the number of opportunities. When a rule compares with a pipeline's
historical stage durations, a first pass collects them (a per-day histogram).
"""

from __future__ import annotations

import dataclasses
import functools
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from crmsync.connectors.mapping import Mapping as CrmMapping
from crmsync.model import Opportunity
from crmsync.store import HistoryRow, Store
from crmsync.workflows.derived import Derived, StageDurations, derive
from crmsync.workflows.expressions import cel_context
from crmsync.workflows.load import LoadedWorkflow
from crmsync.workflows.rules import Check, Subject, applies_to_closed, compile_rule
from crmsync.workflows.schema import Rule, StalenessRule


@dataclass
class PlannedAction:
    """One write the rule asks for (the write-back step carries it out)."""

    kind: str  # "flag" | "task"
    field: str | None = None
    value: str | None = None
    subject: str | None = None
    body: str | None = None
    due_date: date | None = None
    priority: str | None = None
    remind_every_days: int | None = None
    remind_mode: str | None = None


@dataclass
class Firing:
    """A rule that fires on an opportunity, with its reasons and the actions that would follow.

    The actions (rendered task texts, due dates) are built when first read: a consumer that
    only counts firings does not pay for templates.
    """

    workflow: str
    rule_id: str
    rule_title: str
    kind: str
    opportunity: Opportunity
    reasons: list[str]
    make_actions: Callable[[], list[PlannedAction]] = field(
        repr=False, compare=False, default=lambda: []
    )

    @functools.cached_property
    def actions(self) -> list[PlannedAction]:
        return self.make_actions()

    def as_json(self) -> dict[str, Any]:
        opp = self.opportunity
        return {
            "workflow": self.workflow,
            "rule": self.rule_id,
            "kind": self.kind,
            "title": self.rule_title,
            "opportunity": opp.key,
            "name": opp.name,
            "owner": opp.owner_name or opp.owner_id,
            "owner_email": opp.owner_email,
            "stage": opp.stage_canonical,
            "amount": None if opp.amount is None else str(opp.amount),
            "reasons": self.reasons,
            "actions": [
                {
                    k: (v.isoformat() if isinstance(v, date) else v)
                    for k, v in dataclasses.asdict(a).items()
                    if v is not None
                }
                for a in self.actions
            ],
        }


@dataclass
class PlanSummary:
    """Counts of one (workflow, connection) evaluation."""

    workflow: str
    connection: str
    evaluated: int = 0
    in_scope: int = 0
    firings: int = 0
    opportunities_fired: int = 0
    by_rule: Counter[str] = field(default_factory=Counter)
    by_owner: Counter[str] = field(default_factory=Counter)
    condition_errors: int = 0


OnFiring = Callable[[Firing], None]


def with_history(store: Store, connection: str) -> Iterator[tuple[Opportunity, list[HistoryRow]]]:
    """Each opportunity with its history rows, by merging two key-ordered streams."""
    rows = store.iter_history(connection)
    pending = next(rows, None)
    for opp in store.iter_opportunities(connection):
        own: list[HistoryRow] = []
        while pending is not None and pending.key < opp.key:
            pending = next(rows, None)
        while pending is not None and pending.key == opp.key:
            own.append(pending)
            pending = next(rows, None)
        yield opp, own


def needs_durations(rules: Sequence[Rule]) -> bool:
    return any(isinstance(r, StalenessRule) and r.percentile is not None for r in rules)


def evaluate(
    loaded: LoadedWorkflow,
    store: Store,
    connection: str,
    now: datetime,
    *,
    mapping: CrmMapping | None = None,
    on_firing: OnFiring | None = None,
) -> PlanSummary:
    """Run one workflow over one connection; `on_firing` receives each firing as it happens."""
    canonical_of = _canonical(mapping)
    durations = None
    if needs_durations(loaded.workflow.rules):
        durations = StageDurations()
        for opp, history in with_history(store, connection):
            durations.add_history(opp, history, canonical_of=canonical_of)
    return evaluate_stream(
        loaded,
        with_history(store, connection),
        connection,
        now,
        canonical_of=canonical_of,
        durations=durations,
        on_firing=on_firing,
    )


def evaluate_stream(
    loaded: LoadedWorkflow,
    items: Iterator[tuple[Opportunity, Sequence[HistoryRow]]],
    connection: str,
    now: datetime,
    *,
    canonical_of: Callable[[str | None], str | None] = lambda s: s,
    durations: StageDurations | None = None,
    on_firing: OnFiring | None = None,
) -> PlanSummary:
    """The evaluation proper, over any stream of (opportunity, history)."""
    wf = loaded.workflow
    summary = PlanSummary(wf.name, connection)
    scope = wf.scope
    if scope.connections is not None and connection not in scope.connections:
        return summary
    pipelines = set(scope.pipelines) if scope.pipelines else None
    scope_condition = loaded.conditions.get(scope.condition) if scope.condition else None
    checks: list[tuple[Rule, Check, bool]] = [
        (
            rule,
            compile_rule(rule, conditions=loaded.conditions, durations=durations),
            applies_to_closed(rule),
        )
        for rule in wf.rules
    ]
    calendar = loaded.calendar
    today = calendar.today(now) if calendar is not None else now.date()
    due_cache: dict[int, date] = {}
    any_closed_rule = scope.include_closed or any(c for _, _, c in checks)
    used = sorted({v for c in loaded.conditions.values() for v in c.variables})
    readers = [(name, _value_of(name)) for name in used]

    for opp, history in items:
        summary.evaluated += 1
        if opp.deleted or (pipelines is not None and opp.pipeline not in pipelines):
            continue
        if opp.is_closed and not any_closed_rule:
            continue
        derived = derive(opp, history, now, canonical_of=canonical_of, durations=durations)
        cel_cache: list[dict[str, Any]] = []

        def cel(
            opp: Opportunity = opp,
            derived: Derived = derived,
            cache: list[dict[str, Any]] = cel_cache,
        ) -> dict[str, Any]:
            if not cache:  # only the variables the workflow's conditions use
                cache.append(cel_context({n: read(opp, derived, today) for n, read in readers}))
            return cache[0]

        subject = Subject(opp, derived, today, cel)
        if scope_condition is not None:
            try:
                if not scope_condition(cel()):
                    continue
            except Exception:
                summary.condition_errors += 1
                continue
        summary.in_scope += 1
        fired_here = False
        for rule, check, closed_ok in checks:
            if opp.is_closed and not (closed_ok or scope.include_closed):
                continue
            try:
                reasons = check(subject)
            except Exception:
                summary.condition_errors += 1
                continue
            if not reasons:
                continue
            fired_here = True
            summary.firings += 1
            summary.by_rule[rule.id] += 1
            summary.by_owner[opp.owner_name or opp.owner_id or "(no owner)"] += 1
            if on_firing is not None:
                make = functools.partial(
                    _actions, loaded, rule, opp, derived, today, reasons, due_cache
                )
                on_firing(
                    Firing(wf.name, rule.id, rule.title or rule.id, rule.kind, opp, reasons, make)
                )
        if fired_here:
            summary.opportunities_fired += 1
    return summary


_OPP_FIELDS = tuple(f.name for f in dataclasses.fields(Opportunity))
_DERIVED_FIELDS = tuple(f.name for f in dataclasses.fields(Derived))


def context_values(opp: Opportunity, derived: Derived, today: date) -> dict[str, Any]:
    """What conditions and templates see: the opportunity, its derived fields, and today."""
    values = {name: getattr(opp, name) for name in _OPP_FIELDS}
    values.update({name: getattr(derived, name) for name in _DERIVED_FIELDS})
    values["key"] = opp.key
    values["today"] = today
    values["skipped_stages"] = list(derived.skipped_stages)
    return values


def _value_of(name: str) -> Callable[[Opportunity, Derived, date], Any]:
    """How to read one variable a condition uses, straight from its source."""
    if name in _OPP_FIELDS:
        return lambda o, d, t: getattr(o, name)
    if name == "skipped_stages":
        return lambda o, d, t: list(d.skipped_stages)
    if name in _DERIVED_FIELDS:
        return lambda o, d, t: getattr(d, name)
    if name == "key":
        return lambda o, d, t: o.key
    if name == "today":
        return lambda o, d, t: t
    return lambda o, d, t: None


def _actions(
    loaded: LoadedWorkflow,
    rule: Rule,
    opp: Opportunity,
    derived: Derived,
    today: date,
    reasons: list[str],
    due_cache: dict[int, date],
) -> list[PlannedAction]:
    spec = rule.actions
    out: list[PlannedAction] = []
    if spec.flag is not None:
        out.append(PlannedAction("flag", field=spec.flag.field, value=spec.flag.value))
    if spec.task is not None:
        task = spec.task
        extra = {"reasons": reasons, "rule": rule.title or rule.id}

        def render(source: str) -> str:
            template = loaded.templates[source]  # with just the variables it uses
            values = {
                n: extra[n] if n in extra else _value_of(n)(opp, derived, today)
                for n in template.variables
            }
            return template.render(values)

        n = task.due_in_business_days
        if n not in due_cache:
            assert loaded.calendar is not None
            due_cache[n] = loaded.calendar.add_business_days(today, n)
        out.append(
            PlannedAction(
                "task",
                subject=render(task.subject),
                body=render(task.body) if task.body else None,
                due_date=due_cache[n],
                priority=task.priority,
                remind_every_days=spec.remind.every_days if spec.remind else None,
                remind_mode=spec.remind.mode if spec.remind else None,
            )
        )
    return out


def _canonical(mapping: CrmMapping | None) -> Callable[[str | None], str | None]:
    if mapping is None:
        return lambda s: s
    stages = mapping.stages
    return lambda s: stages.get(s) if s is not None else None
