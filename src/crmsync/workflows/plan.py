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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from operator import attrgetter
from typing import Any, Generic, TypeVar

from crmsync.model import FIELDS, Opportunity
from crmsync.model.mapping import Mapping as CrmMapping
from crmsync.model.records import HistoryRow, HistorySummary
from crmsync.store import Store
from crmsync.store.history import HistoryLike, StageSummarizer
from crmsync.workflows.derived import (
    STAGE_HISTORY_FIELDS,
    Derived,
    derive_fields,
    derive_wanted,
    history_fields,
    work_plan,
)
from crmsync.workflows.expressions import Condition, to_cel
from crmsync.workflows.load import LoadedWorkflow
from crmsync.workflows.percentiles import StageDurations
from crmsync.workflows.rules import (
    Check,
    Subject,
    applies_to_closed,
    compile_rule,
    derived_needs,
)
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
    _actions: list[PlannedAction] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @property
    def actions(self) -> list[PlannedAction]:
        """Built on first read, then kept (a plain attribute: cached_property takes a lock)."""
        built = self._actions
        if built is None:
            built = self._actions = self.make_actions()
        return built

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
_Row = TypeVar("_Row", bound=HistoryLike)


class _RowsByKey(Generic[_Row]):
    """History rows ordered by key, handed out one key at a time as a key-ordered stream of
    opportunities passes (keys without an opportunity are skipped): a merge, so neither
    stream is ever held whole."""

    __slots__ = ("_next", "_pending")

    def __init__(self, rows: Iterator[_Row]) -> None:
        self._next = functools.partial(next, rows, None)
        self._pending: _Row | None = self._next()

    def take(self, key: str) -> list[_Row]:
        """The rows of `key`; call with keys in increasing order."""
        pending, advance = self._pending, self._next
        while pending is not None and pending.key < key:
            pending = advance()
        own: list[_Row] = []
        while pending is not None and pending.key == key:
            own.append(pending)
            pending = advance()
        self._pending = pending
        return own


def with_history(store: Store, connection: str) -> Iterator[tuple[Opportunity, list[HistoryRow]]]:
    """Each opportunity with its history rows, by merging two key-ordered streams."""
    rows = _RowsByKey(store.iter_history(connection))
    for opp in store.iter_opportunities(connection):
        yield opp, rows.take(opp.key)


def _stored(
    store: Store, connection: str, fields: Sequence[str] | None
) -> Iterator[tuple[Opportunity, Sequence[HistoryLike]]]:
    """`with_history` for the evaluation: only the history rows of `fields` (what the derived
    fields read; none at all when empty), as light tuples."""
    opportunities = store.iter_opportunities(connection)
    if fields is not None and not fields:
        none: tuple[HistoryLike, ...] = ()
        for opp in opportunities:
            yield opp, none
        return
    rows = _RowsByKey(store.iter_history_tuples(connection, fields))
    for opp in opportunities:
        yield opp, rows.take(f"{opp.connection}:{opp.native_id}")  # opp.key, built once


def _stage_durations(
    store: Store, connection: str, canonical_of: Callable[[str | None], str | None]
) -> StageDurations:
    """The first pass: each deal's pipeline and stage history, nothing else, into durations."""
    durations = StageDurations()
    rows = _RowsByKey(store.iter_history_tuples(connection, STAGE_HISTORY_FIELDS))
    for key, pipeline in store.iter_opportunity_values(connection, ("key", "pipeline")):
        durations.add_runs(pipeline, rows.take(key), canonical_of)
    return durations


def derived_needs_of(loaded: LoadedWorkflow) -> frozenset[str]:
    """The derived fields a workflow reads at all: in its checks, conditions and task texts."""
    derived_names = set(_DERIVED_FIELDS)
    needed: set[str] = set()
    for rule in loaded.workflow.rules:
        needed |= derived_needs(rule)
    for condition in loaded.conditions.values():
        needed.update(n for n in condition.variables if n in derived_names)
    for template in loaded.templates.values():
        needed.update(n for n in template.variables if n in derived_names)
    return derive_fields(needed)


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
) -> PlanSummary:
    """Run one workflow over one connection; `on_firing` receives each firing as it happens.

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
    if needs_durations(loaded.workflow.rules):
        if summaries:
            durations = _stage_durations_summarized(store, connection, summarizer)
        if durations is None:
            durations = _stage_durations(store, connection, canonical_of)
    items: Iterator[tuple[Opportunity, Sequence[HistoryLike] | HistorySummary]]
    if summaries:
        items = _summarized(store, connection, summarizer)
    else:
        items = _stored(store, connection, history_fields(derived_needs_of(loaded)))
    return evaluate_stream(
        loaded,
        items,
        connection,
        now,
        canonical_of=canonical_of,
        durations=durations,
        on_firing=on_firing,
    )


def summarizer_for(mapping: CrmMapping | None) -> StageSummarizer:
    """The history summaries a connection's deals have when synced with `mapping`."""
    return StageSummarizer(None if mapping is None else mapping.stages)


def _summarized(
    store: Store, connection: str, summarizer: StageSummarizer
) -> Iterator[tuple[Opportunity, Sequence[HistoryLike] | HistorySummary]]:
    """Each live deal with its kept summary, or with its history where it has no current one
    (synced before summaries existed, or with another stage mapping)."""
    for opp, summary in store.iter_summarized(connection, summarizer.version, stays=False):
        yield opp, summary if summary is not None else store.history(opp.key)


def _stage_durations_summarized(
    store: Store, connection: str, summarizer: StageSummarizer
) -> StageDurations | None:
    """The first pass, from the completed stays the kept summaries list; None as soon as a
    live deal has no current summary (the history is read instead)."""
    durations = StageDurations()
    for pipeline, stays in store.iter_summary_stays(connection, summarizer.version):
        if stays is None:
            return None
        durations.add_stays(pipeline, stays)
    return durations


def evaluate_stream(
    loaded: LoadedWorkflow,
    items: Iterator[tuple[Opportunity, Sequence[HistoryLike] | HistorySummary]],
    connection: str,
    now: datetime,
    *,
    canonical_of: Callable[[str | None], str | None] = lambda s: s,
    durations: StageDurations | None = None,
    on_firing: OnFiring | None = None,
) -> PlanSummary:
    """The evaluation proper, over any stream of (opportunity, its history or the summary of
    its history).

    Everything that does not depend on the deal is worked out once, before the loop: the checks,
    which derived fields the workflow reads at all (only those are derived), whether the scope
    condition can be decided before deriving, how a CEL context and a template's values are
    read. Per deal the loop allocates only what a firing keeps.
    """
    wf = loaded.workflow
    summary = PlanSummary(wf.name, connection)
    scope = wf.scope
    if scope.connections is not None and connection not in scope.connections:
        return summary
    pipelines = frozenset(scope.pipelines) if scope.pipelines else None
    conditions: dict[str, Condition] = {
        source: _memoized(condition) for source, condition in loaded.conditions.items()
    }
    scope_condition = conditions.get(scope.condition) if scope.condition else None
    include_closed = scope.include_closed
    checks: list[tuple[Rule, Check, bool, _ActionPlan | None]] = [
        (
            rule,
            compile_rule(rule, conditions=conditions, durations=durations),
            include_closed or applies_to_closed(rule),
            _ActionPlan(loaded, rule) if on_firing is not None else None,
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
    derived_names = set(_DERIVED_FIELDS)
    scope_first = scope_condition is None or not any(
        n in derived_names for n in scope_condition.variables
    )

    used = sorted({v for c in loaded.conditions.values() for v in c.variables})
    context = _LazyContext(used)
    subject = Subject(_NO_OPP, _NO_DERIVED, today, context.of)
    by_rule, by_owner = summary.by_rule, summary.by_owner
    evaluated = in_scope = firings = fired = errors = 0
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
                subject.reset(opp, _NO_DERIVED)
                try:
                    if not scope_condition(subject.cel()):
                        continue
                except Exception:
                    errors += 1
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
                except Exception:
                    errors += 1
                    continue
        in_scope += 1
        fired_here = False
        for rule, check, actions in closed_checks if closed else open_checks:
            try:
                reasons = check(subject)
            except Exception:
                errors += 1
                continue
            if not reasons:
                continue
            if not fired_here:
                fired_here = True
                owner = opp.owner_name or opp.owner_id or "(no owner)"
            firings += 1
            by_rule[rule.id] += 1
            by_owner[owner] += 1
            if actions is not None and on_firing is not None:
                make = functools.partial(actions.build, opp, derived, today, reasons)
                on_firing(
                    Firing(workflow_name, rule.id, actions.title, rule.kind, opp, reasons, make)
                )
        if fired_here:
            fired += 1
    summary.evaluated = evaluated
    summary.in_scope = in_scope
    summary.firings = firings
    summary.opportunities_fired = fired
    summary.condition_errors = errors
    return summary


_OPP_FIELDS = tuple(f.name for f in dataclasses.fields(Opportunity))
_DERIVED_FIELDS = tuple(f.name for f in dataclasses.fields(Derived))
_NO_OPP = Opportunity("", "", "", "", datetime.min)
_NO_DERIVED = Derived(None, None, None, 0, 0, 0, (), None, None, None)


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


def _subject_value(name: str) -> Callable[[Any], Any]:
    """`_value_of` reading a Subject, in one C call where it can (a dotted attrgetter)."""
    if name in _OPP_FIELDS:
        read = attrgetter(f"opp.{name}")
        if name in FIELDS and FIELDS[name].type == "decimal":  # as CEL sees it: a double

            def as_double(s: Any) -> Any:
                value = read(s)
                return None if value is None else float(value)

            return as_double
        return read
    if name in _DERIVED_FIELDS and name != "skipped_stages":
        return attrgetter(f"derived.{name}")
    if name == "today":
        return attrgetter("today")
    value_of = _value_of(name)
    return lambda s: value_of(s.opp, s.derived, s.today)


class _LazyContext(Mapping[str, Any]):
    """The deal a Subject looks at, as CEL sees it (`cel_context` values), read on demand.

    Conditions mostly stop after a value or two (`amount != null && ...`), so converting every
    variable of every condition up front, per deal, would cost more than the conditions. One
    instance serves every deal of an evaluation: it reads whatever deal the Subject holds now.
    """

    __slots__ = ("_names", "_readers", "_subject")

    def __init__(self, names: Sequence[str]) -> None:
        self._names = tuple(names)
        self._readers = {n: _subject_value(n) for n in self._names}
        self._subject: Subject | None = None

    def of(self, subject: Subject) -> Mapping[str, Any]:
        """This context, reading `subject` (what `Subject.cel` asks for)."""
        self._subject = subject
        return self

    def __getitem__(self, name: str) -> Any:
        value = self._readers[name](self._subject)
        return value if value.__class__ in _AS_IS else to_cel(value)

    def get(self, name: str, default: Any = None) -> Any:
        read = self._readers.get(name)
        if read is None:
            return default
        value = read(self._subject)
        return value if value.__class__ in _AS_IS else to_cel(value)

    def __contains__(self, name: object) -> bool:
        return name in self._readers

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


_AS_IS = frozenset({str, bool, int, float, type(None)})


def _values_reader(names: Sequence[str]) -> Callable[[Opportunity, Derived, date], dict[str, Any]]:
    """Reads `names` (as `context_values` gives them), the fields of each source in one go."""
    opp_names = tuple(n for n in names if n in _OPP_FIELDS)
    derived_names = tuple(n for n in names if n in _DERIVED_FIELDS and n != "skipped_stages")
    others = tuple(
        (n, _value_of(n)) for n in names if n not in opp_names and n not in derived_names
    )
    read_opp = _getter(opp_names)
    read_derived = _getter(derived_names)

    def read(opp: Opportunity, derived: Derived, today: date) -> dict[str, Any]:
        values = dict(zip(opp_names, read_opp(opp), strict=True))
        if derived_names:
            values.update(zip(derived_names, read_derived(derived), strict=True))
        for n, value_of in others:
            values[n] = value_of(opp, derived, today)
        return values

    return read


def _getter(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """Several attributes at once, always as a tuple."""
    if not names:
        return lambda o: ()
    if len(names) == 1:
        get_one = attrgetter(names[0])
        return lambda o: (get_one(o),)
    get: Callable[[Any], tuple[Any, ...]] = attrgetter(*names)
    return get


class _ActionPlan:
    """What a firing of one rule would do, prepared once: `build` makes the PlannedActions."""

    __slots__ = ("_body", "_due", "_flag", "_loaded", "_rule", "_subject", "_task", "title")

    def __init__(self, loaded: LoadedWorkflow, rule: Rule) -> None:
        self._loaded = loaded
        self._rule = rule
        self.title = rule.title or rule.id
        spec = rule.actions
        self._flag = spec.flag
        self._task = spec.task
        self._subject = self._body = None
        if spec.task is not None:
            self._subject = self._renderer(spec.task.subject)
            self._body = self._renderer(spec.task.body) if spec.task.body else None
        self._due: date | None = None

    def _renderer(self, source: str) -> _Render:
        template = self._loaded.templates[source]  # with just the variables it uses
        names = [n for n in template.variables if n not in ("reasons", "rule")]
        extra = [n for n in template.variables if n in ("reasons", "rule")]
        read = _values_reader(names)
        title = self.title

        def render(opp: Opportunity, derived: Derived, today: date, reasons: list[str]) -> str:
            values = read(opp, derived, today)
            for n in extra:
                values[n] = reasons if n == "reasons" else title
            return template.render(values)

        return render

    def build(
        self, opp: Opportunity, derived: Derived, today: date, reasons: list[str]
    ) -> list[PlannedAction]:
        out: list[PlannedAction] = []
        flag = self._flag
        if flag is not None:
            out.append(PlannedAction("flag", field=flag.field, value=flag.value))
        task = self._task
        if task is not None and self._subject is not None:
            if self._due is None:
                calendar = self._loaded.calendar
                assert calendar is not None
                self._due = calendar.add_business_days(today, task.due_in_business_days)
            remind = self._rule.actions.remind
            out.append(
                PlannedAction(
                    "task",
                    subject=self._subject(opp, derived, today, reasons),
                    body=self._body(opp, derived, today, reasons) if self._body else None,
                    due_date=self._due,
                    priority=task.priority,
                    remind_every_days=remind.every_days if remind else None,
                    remind_mode=remind.mode if remind else None,
                )
            )
        return out


_Render = Callable[[Opportunity, Derived, date, list[str]], str]


class _Memo:
    """A CEL condition whose results are remembered by the values of its variables.

    CEL is pure, so the same values give the same answer; many conditions read few, repetitive
    values (`!is_closed`, a stage name), and a dict lookup is far cheaper than a CEL call. Only
    plain hashable values are keys (with their type, so 1, 1.0 and true differ; zeros keep
    their sign); errors are never remembered. When a condition's values hardly repeat
    (an amount, a timestamp), remembering stops after a trial: memory stays bounded.
    """

    __slots__ = ("_cache", "_calls", "_condition", "_hits", "_on", "source", "variables")

    TRIAL = 2000
    LIMIT = 4096

    def __init__(self, condition: Condition) -> None:
        self._condition = condition
        self.source = condition.source
        self.variables = condition.variables
        self._cache: dict[tuple[Any, ...], bool] = {}
        self._calls = self._hits = 0
        self._on = True

    def __call__(self, context: Mapping[str, Any]) -> bool:
        if not self._on:
            return self._condition(context)
        key: list[Any] = []
        for name in self.variables:
            value = context.get(name, _MISSING)
            kind = value.__class__
            if kind not in _MEMO_TYPES:
                return self._condition(context)
            if kind is float and value == 0.0:
                value = repr(value)  # 0.0 and -0.0 are equal but may give different answers
            key.append(kind)
            key.append(value)
        frozen = tuple(key)
        self._calls += 1
        found = self._cache.get(frozen)
        if found is not None:
            self._hits += 1
            return found
        result = self._condition(context)
        if len(self._cache) < self.LIMIT:
            self._cache[frozen] = result
        if self._calls >= self.TRIAL and self._hits * 2 < self._calls:
            self._on = False
            self._cache.clear()
        return result


_MISSING = object()
_MEMO_TYPES = frozenset({bool, int, float, str, type(None)})


def _memoized(condition: Condition) -> Condition:
    if condition.fast:  # plain comparisons: cheaper than building a memo key
        return condition
    return _Memo(condition)  # type: ignore[return-value]
