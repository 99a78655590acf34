"""Evaluating a workflow over one connection's opportunities: which rules fire, why, and what
would be done. Pure: it reads the store and writes nothing anywhere.

Opportunities and their field history are streamed together (both ordered by key), so memory
does not grow with the number of opportunities. When a rule compares with a pipeline's
historical stage durations, a first pass collects them (a per-day histogram).

The store is read in `readers`, conditions see a deal through `context`, and the actions a
firing would take are built in `render`; this module is the loop over the deals. A rule whose
task text cannot be rendered for a deal sets that firing aside (`render_errors`, logged once per
rule as ``plan.render_failed``); every other deal and rule goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from functools import partial

import structlog

from crmsync.model import Opportunity
from crmsync.model.mapping import Mapping as CrmMapping
from crmsync.model.records import HistorySummary
from crmsync.store import Store
from crmsync.store.history import HistoryLike
from crmsync.workflows.condition import Condition
from crmsync.workflows.context import (
    DERIVED_FIELDS,
    NO_DERIVED,
    NO_OPPORTUNITY,
    LazyContext,
    memoized,
)
from crmsync.workflows.derived import derive_wanted, history_fields, work_plan
from crmsync.workflows.firing import (
    FailureLog,
    Firing,
    OnFiring,
    OnUndecided,
    PlanSummary,
    derived_needs_of,
)
from crmsync.workflows.load import LoadedWorkflow
from crmsync.workflows.percentiles import StageDurations
from crmsync.workflows.readers import (
    stage_durations,
    stage_durations_from_summaries,
    summarizer_for,
    with_field_history,
    with_history,
    with_summaries,
)
from crmsync.workflows.render import ActionPlan, reason_renderer
from crmsync.workflows.rules import (
    Check,
    Subject,
    applies_to_closed,
    compile_rule,
)
from crmsync.workflows.schema import CustomRule, Rule, StalenessRule
from crmsync.workflows.templates import TemplateError
from crmsync.workflows.why_not import value_of

__all__ = [  # re-exported for callers: with_history and summarizer_for from `readers`, the rest
    # from `firing`
    "Firing",
    "OnFiring",
    "PlanSummary",
    "derived_needs_of",
    "evaluate",
    "evaluate_stream",
    "needs_durations",
    "summarizer_for",
    "with_history",
]

log = structlog.get_logger("crmsync.workflows")


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
    summaries: bool = True,
    engine: str = "auto",
    actions_on_read: bool = False,
    on_undecided: OnUndecided | None = None,
) -> PlanSummary:
    """Run one workflow over one connection; `on_firing` receives each firing as it happens.

    A firing's actions (task texts, due dates) are built before it is handed on, so that one
    whose text cannot be rendered is set aside and counted; with `actions_on_read` they are
    built when first read, and a TemplateError is raised there (apply: an open finding that
    wants no new task or reminder needs no text). `on_undecided` hears of each (rule, deal) a
    failing condition or text left undecided (apply keeps their open findings open).

    Deals are read with the history summaries the sync keeps (one row a deal); a deal without
    a current one (synced before summaries existed, or with another stage mapping file) is read
    with its history, which gives the same plan, only slower; so is every deal when a pipeline's
    stage durations are needed and any summary is missing, or when none is kept (read in bulk
    then). `summaries=False` reads the history regardless (for checks and benchmarks).
    """
    summarizer = summarizer_for(mapping)
    canonical_of = summarizer.canonical_of
    scoped = loaded.workflow.scope.connections
    if scoped is not None and connection not in scoped:
        return PlanSummary(loaded.workflow.name, connection)
    # none kept (an upgrade, a changed mapping): read the history in bulk, not deal by deal
    summaries = summaries and store.has_summaries(connection, summarizer.version)
    durations = None
    columnar = engine != "per-deal" and summaries and _has_polars()
    if columnar:
        from crmsync.workflows.columnar.durations import durations_meanwhile
        from crmsync.workflows.columnar.run import evaluate_columnar

        ready = None
        if needs_durations(loaded.workflow.rules):  # counted while the deals are read
            durations, ready = durations_meanwhile(store, connection, summarizer)
        return evaluate_columnar(
            loaded,
            store,
            connection,
            now,
            version=summarizer.version,
            canonical_of=canonical_of,
            durations=durations,
            durations_ready=ready,
            on_firing=on_firing,
            actions_on_read=actions_on_read,
            on_undecided=on_undecided,
        )
    if needs_durations(loaded.workflow.rules):
        if summaries:
            durations = stage_durations_from_summaries(store, connection, summarizer)
        if durations is None:
            durations = stage_durations(store, connection, canonical_of)
    items: Iterator[tuple[Opportunity, Sequence[HistoryLike] | HistorySummary]]
    if summaries:
        items = with_summaries(store, connection, summarizer)
    else:
        items = with_field_history(store, connection, history_fields(derived_needs_of(loaded)))
    return evaluate_stream(
        loaded,
        items,
        connection,
        now,
        canonical_of=canonical_of,
        durations=durations,
        on_firing=on_firing,
        actions_on_read=actions_on_read,
        on_undecided=on_undecided,
    )


def columnar_ready(store: Store, connection: str, version: str) -> bool:
    """Whether the columnar engine can read this connection: polars is installed and the sync
    keeps history summaries (a deal without a current one goes to the per-deal engine)."""
    return _has_polars() and store.has_summaries(connection, version)


def _has_polars() -> bool:
    import importlib.util

    return importlib.util.find_spec("polars") is not None


def evaluate_stream(
    loaded: LoadedWorkflow,
    items: Iterator[tuple[Opportunity, Sequence[HistoryLike] | HistorySummary]],
    connection: str,
    now: datetime,
    *,
    canonical_of: Callable[[str | None], str | None] = lambda s: s,
    durations: StageDurations | None = None,
    on_firing: OnFiring | None = None,
    on_set_aside: Callable[[str, str, str], None] | None = None,
    actions_on_read: bool = False,
    on_undecided: OnUndecided | None = None,
) -> PlanSummary:
    """The evaluation proper, over any stream of (opportunity, its history or the summary of
    its history).

    Everything that does not depend on the deal is worked out once, before the loop: the checks,
    which derived fields the workflow reads at all (only those are derived), whether the scope
    condition can be decided before deriving, how a CEL context and a template's values are
    read. Per deal the loop allocates only what a firing keeps. `on_set_aside` receives
    (rule, opportunity key, reason) for each firing set aside because its task text fails.
    """
    wf = loaded.workflow
    summary = PlanSummary(wf.name, connection)
    scope = wf.scope
    if scope.connections is not None and connection not in scope.connections:
        return summary
    pipelines = frozenset(scope.pipelines) if scope.pipelines else None
    conditions: dict[str, Condition] = {
        source: memoized(condition) for source, condition in loaded.conditions.items()
    }
    scope_condition = conditions.get(scope.condition) if scope.condition else None
    include_closed = scope.include_closed
    checks: list[tuple[Rule, Check, bool, ActionPlan | None]] = [
        (
            rule,
            compile_rule(
                rule,
                conditions=conditions,
                durations=durations,
                explain=reason_renderer(loaded, rule) if isinstance(rule, CustomRule) else None,
            ),
            include_closed or applies_to_closed(rule),
            ActionPlan(loaded, rule) if on_firing is not None else None,
        )
        for rule in wf.rules
    ]
    calendar = loaded.calendar
    today = calendar.today(now) if calendar is not None else now.date()
    any_closed_rule = include_closed or any(c for _, _, c, _ in checks)
    open_checks = [(rule, check, actions) for rule, check, _, actions in checks]
    closed_checks = [(rule, check, actions) for rule, check, ok, actions in checks if ok]

    fields = derived_needs_of(loaded)  # only these are derived
    want = work_plan(fields)
    derived_names = set(DERIVED_FIELDS)
    scope_first = scope_condition is None or not any(
        n in derived_names for n in scope_condition.variables
    )

    used = sorted({v for c in loaded.conditions.values() for v in c.variables})
    context = LazyContext(used)
    subject = Subject(NO_OPPORTUNITY, NO_DERIVED, today, context.of)
    by_rule, by_owner = summary.by_rule, summary.by_owner
    evaluated = in_scope = firings = fired = errors = 0
    failures = FailureLog(wf.name, connection, on_set_aside, on_undecided)
    failed, render_failed = failures.condition, failures.render

    workflow_name = wf.name

    for opp, history in items:
        evaluated += 1
        if opp.deleted or (pipelines is not None and opp.pipeline not in pipelines):
            continue
        closed = opp.is_closed
        if closed and not any_closed_rule:
            continue
        if scope_first:  # decided on the opportunity alone: no need to derive out of scope
            if scope_condition is not None:
                subject.reset(opp, NO_DERIVED)
                try:
                    if not scope_condition(subject.cel()):
                        continue
                except Exception as e:
                    errors += 1
                    failed(None, opp.key, e)
                    continue
            derived = derive_wanted(opp, history, now, canonical_of, durations, want)
            subject.reset(opp, derived)
        else:
            derived = derive_wanted(opp, history, now, canonical_of, durations, want)
            subject.reset(opp, derived)
            if scope_condition is not None:
                try:
                    if not scope_condition(subject.cel()):
                        continue
                except Exception as e:
                    errors += 1
                    failed(None, opp.key, e)
                    continue
        in_scope += 1
        fired_here = False
        for rule, check, actions in closed_checks if closed else open_checks:
            try:
                reasons = check(subject)
            except TemplateError as e:  # a custom rule's reason: set aside like a task text
                summary.render_errors += 1
                render_failed(rule.id, opp.key, e)
                continue
            except Exception as e:
                errors += 1
                failed(rule.id, opp.key, e)
                continue
            if not reasons:
                continue
            built = None
            # a text waits to be read; a flag's actions are made at once (holding the
            # deal's derived values for them would cost more than making them)
            if actions is not None and not (actions_on_read and actions.renders_text):
                try:
                    built = actions.build(opp, derived, today, reasons)
                except TemplateError as e:
                    summary.render_errors += 1
                    render_failed(rule.id, opp.key, e)
                    continue
            if not fired_here:
                fired_here = True
                owner = opp.owner_name or opp.owner_id or "(no owner)"
            firings += 1
            by_rule[rule.id] += 1
            by_owner[owner] += 1
            if actions is not None and on_firing is not None:
                firing = Firing(workflow_name, rule.id, actions.title, rule.kind, opp, reasons)
                if built is None:  # actions_on_read: a task text, built when read
                    firing.make_actions = partial(actions.build, opp, derived, today, reasons)
                    firing.has_task = True
                else:
                    firing._actions = built
                if isinstance(rule, CustomRule):  # the admin sees what the condition read
                    names = conditions[rule.condition].variables
                    firing.values = {n: value_of(n, opp, derived, subject) for n in names}
                on_firing(firing)
        if fired_here:
            fired += 1
    summary.evaluated = evaluated
    summary.in_scope = in_scope
    summary.firings = firings
    summary.opportunities_fired = fired
    summary.condition_errors = errors
    return summary
