"""The evaluation's shortcuts give exactly what the plain paths give.

Each shortcut (deriving only the fields a workflow reads, reading only the history rows they
need, remembering CEL results, rendering simple templates without Jinja's machinery, the store's
light row readers) is checked against the plain path it replaces, on generated deals.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from crmsync.config import load_mapping
from crmsync.model import Opportunity
from crmsync.model.records import HistoryRow
from crmsync.store import Store
from crmsync.workflows.context import memoized
from crmsync.workflows.derived import (
    STAGE_HISTORY_FIELDS,
    Derived,
    derive,
    derive_fields,
    history_fields,
)
from crmsync.workflows.expressions import cel_context, compile_condition
from crmsync.workflows.load import LoadedWorkflow, load_workflow, variables
from crmsync.workflows.percentiles import StageDurations
from crmsync.workflows.plan import (
    Firing,
    derived_needs_of,
    evaluate,
    evaluate_stream,
    needs_durations,
)
from crmsync.workflows.readers import summarizer_for, with_history
from crmsync.workflows.rules import applies_to_closed
from crmsync.workflows.templates import compile_template

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ("pipeline-hygiene", "stage-gates")
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DERIVED = tuple(f.name for f in dataclasses.fields(Derived))


def _bench() -> ModuleType:
    """bench/evaluate.py, for its seeded generator of realistic deals and histories."""
    spec = importlib.util.spec_from_file_location("bench_evaluate", ROOT / "bench/evaluate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BENCH = _bench()
STAGES = load_mapping(ROOT / "connectors/salesforce.yaml").stages


def canonical_of(stage: str | None) -> str | None:
    return STAGES.get(stage) if stage is not None else None


def deals(n: int, seed: int = 11) -> Iterator[tuple[Opportunity, list[HistoryRow]]]:
    deals: Iterator[tuple[Opportunity, list[HistoryRow]]] = BENCH.opportunities(
        n, seed, NOW, STAGES
    )
    return deals


def loaded(name: str) -> LoadedWorkflow:
    return load_workflow(ROOT / "workflows" / f"{name}.yaml")


def firings(
    items: Any,
    wf: LoadedWorkflow,
    durations: StageDurations | None,
    canonical: Callable[[str | None], str | None] = canonical_of,
) -> list[str]:
    """Every firing of `wf` over `items`, as JSON with its rendered actions."""
    out: list[str] = []
    summary = evaluate_stream(
        wf,
        iter(items),
        "sf",
        NOW,
        canonical_of=canonical,
        durations=durations,
        on_firing=lambda f: out.append(json.dumps(f.as_json(), sort_keys=True)),
    )
    out.append(repr(dataclasses.astuple(summary)))
    return out


# ---- deriving only what is read ----------------------------------------------------------------
@pytest.mark.parametrize(
    "fields",
    [
        *((name,) for name in DERIVED),
        ("skipped_stages",),
        ("days_since_activity", "close_date_push_count"),
        *(tuple(derived_needs_of(loaded(name))) for name in WORKFLOWS),
    ],
)
def test_derive_some_fields_matches_derive_all(fields: tuple[str, ...]) -> None:
    """derive(fields=...) gives the full derivation's values for those fields, also when given
    only the history rows `history_fields` names."""
    durations = StageDurations(min_samples=5)
    items = list(deals(600))
    for opp, history in items:
        durations.add_history(opp, history, canonical_of=canonical_of)
    wanted = derive_fields(fields)
    kept = history_fields(wanted)
    assert kept is not None
    for opp, history in items:
        full = derive(opp, history, NOW, canonical_of=canonical_of, durations=durations)
        some = [r for r in history if r.field in kept]
        for given in (history, some):
            part = derive(
                opp, given, NOW, canonical_of=canonical_of, durations=durations, fields=wanted
            )
            for name in fields:
                assert getattr(part, name) == getattr(full, name), (opp.key, name)


def test_stage_durations_from_stage_rows_alone() -> None:
    """StageDurations built from the stage rows alone (add_runs) equal those from all rows."""
    everything, stage_only = StageDurations(min_samples=5), StageDurations(min_samples=5)
    pipelines: set[str | None] = set()
    for opp, history in deals(800):
        pipelines.add(opp.pipeline)
        everything.add_history(opp, history, canonical_of=canonical_of)
        rows = [r for r in history if r.field in STAGE_HISTORY_FIELDS]
        stage_only.add_runs(opp.pipeline, rows, canonical_of)
    assert len(pipelines) >= 2
    for pipeline in pipelines:
        for stage in ("qualified", "discovery", "proposal", "negotiation"):
            assert everything.samples(pipeline, stage) == stage_only.samples(pipeline, stage)
            assert everything.threshold(pipeline, stage, 80) == stage_only.threshold(
                pipeline, stage, 80
            )


# ---- the engine, against a plain re-implementation of the loop ---------------------------------
@pytest.mark.parametrize("name", WORKFLOWS)
def test_engine_is_unchanged_by_filtered_history(name: str) -> None:
    """Leaving out the history rows the workflow's derived fields do not read changes nothing."""
    wf = loaded(name)
    items = list(deals(1500))
    durations = None
    if needs_durations(wf.workflow.rules):
        durations = StageDurations()
        for opp, history in items:
            durations.add_history(opp, history, canonical_of=canonical_of)
    kept = history_fields(derived_needs_of(wf)) or ()
    filtered = [(o, [r for r in h if r.field in kept]) for o, h in items]
    assert firings(items, wf, durations) == firings(filtered, wf, durations)


# ---- CEL results remembered --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "contexts"),
    [
        ("!is_closed", [{"is_closed": v} for v in (True, False, True, False)]),
        (
            "amount == null || amount >= 1000.0",
            [{"amount": v} for v in (None, 5.0, 1000.0, 5.0, None, 2e6, 1000.0)],
        ),
        # 0.0 and -0.0 are equal as keys but not in CEL: 1.0 / x gives +inf and -inf
        ("1.0 / amount > 0.0", [{"amount": v} for v in (0.0, -0.0, 0.0, -0.0)]),
        ('stage_canonical == "proposal"', [{"stage_canonical": v} for v in ("proposal", None)]),
        ("amount > 10.0", [{"amount": v} for v in (None, 11.0, None)]),  # errors: not kept
        (
            "days_since_activity != null && days_since_activity > 7.0",
            [{"days_since_activity": float(d)} for d in range(30)] * 3,
        ),
    ],
)
def test_memoized_conditions_answer_like_cel(source: str, contexts: list[dict[str, Any]]) -> None:
    """A remembered condition gives CEL's answer, or its error, for every record."""
    condition = compile_condition(source, variables())
    memo = memoized(condition)
    for context in [*contexts, *contexts]:
        values = cel_context(context)
        expected: bool | type[Exception]
        try:
            expected = condition(values)
        except Exception as e:
            expected = type(e)
        got: bool | type[Exception]
        try:
            got = memo(values)
        except Exception as e:
            got = type(e)
        assert got == expected, (source, context)


def test_memo_keys_tell_types_apart() -> None:
    """1, 1.0 and true are equal in Python but not to CEL: each is evaluated on its own."""
    condition = compile_condition("custom.x == 1", variables())
    memo = memoized(condition)
    for value in (1, 1.0, True, 1, True):
        context = cel_context({"custom": {"x": value}})
        assert memo(context) == condition(context)
    scalar = memoized(compile_condition("probability == 1.0", variables()))
    assert [scalar({"probability": v}) for v in (1.0, 1, True)] == [
        compile_condition("probability == 1.0", variables())({"probability": v})
        for v in (1.0, 1, True)
    ]


# ---- templates rendered without Jinja's machinery ----------------------------------------------
TEMPLATE_VALUES: list[dict[str, Any]] = [
    {
        "name": "Acme",
        "account_name": None,
        "amount": Decimal("12500.5"),
        "close_date": date(2026, 12, 31),
        "days_since_activity": 23.5,
        "stage_canonical": "proposal",
        "reasons": ["no champion", "no pain"],
        "close_date_push_count": 3,
        "last_activity_at": datetime(2026, 10, 28, 15, tzinfo=UTC),
    },
    {
        "name": "",
        "account_name": "Globex",
        "amount": None,
        "close_date": None,
        "days_since_activity": None,
        "stage_canonical": None,
        "reasons": [],
        "close_date_push_count": 0,
        "last_activity_at": None,
    },
    {
        "name": "Odd",
        "account_name": 0,
        "amount": "not a number",  # the filter fails: Jinja's error, as before
        "close_date": "2026-13-45",
        "days_since_activity": float("inf"),
        "stage_canonical": 7,
        "reasons": "ab",
        "close_date_push_count": None,
        "last_activity_at": 3,
    },
]
TEMPLATES = [
    "{{ name }}: no activity for {{ days_since_activity|days }}",
    "{{ name }} ({{ account_name or 'no account' }}) {{ amount|money }}\n",
    "Close {{ close_date|date }} / {{ last_activity_at|date('%d %b %Y') }}.",
    '{{ reasons|join("; ") }}|{{ reasons|join }}',
    "{{ name and stage_canonical }} {{ not account_name }} {{ close_date_push_count }}",
    "{{ 'x' }}{{ 3 }}{{ none }}plain",
    "{{ amount|money or 'no amount' }}",
]


@pytest.mark.parametrize("source", TEMPLATES)
def test_fast_templates_render_as_jinja(source: str) -> None:
    """Simple templates skip Jinja's render machinery and give its text, or its error."""
    names = [*TEMPLATE_VALUES[0], "rule"]
    template = compile_template(source, names)
    assert template._fast is not None
    for values in TEMPLATE_VALUES:
        try:
            expected: str | type[Exception] = template._template.render(values)
        except Exception:
            expected = Exception
        got: str | type[Exception]
        try:
            got = template.render(values)
        except Exception:
            got = Exception
        assert got == expected, (source, values)


def test_other_templates_go_through_jinja() -> None:
    """Loops, conditions, attributes and other filters are left to Jinja."""
    for source in ("{% for r in reasons %}{{ r }}{% endfor %}", "{{ name|upper }}", "{{ x.y }}"):
        assert compile_template(source, ["reasons", "name", "x"])._fast is None


# ---- from the store -------------------------------------------------------------------------
def _load(target: Store, items: list[tuple[Opportunity, list[HistoryRow]]]) -> None:
    for start in range(0, len(items), 500):
        part = items[start : start + 500]
        target.apply_batch(
            "sf",
            "Opportunity",
            opportunities=[o for o, _ in part],
            history=[r for _, h in part for r in h],
            observed_at=NOW,
        )


@pytest.mark.slow
def test_store_readers_and_evaluate_match_the_plain_stream(store: Store) -> None:
    """On both backends: the light history tuples equal iter_history's rows, the column reader
    gives iter_opportunities' values, and evaluate() (filtered history, light rows, a lean first
    pass) plans exactly what evaluate_stream plans over the public with_history."""
    _load(store, list(deals(1200)))
    plain = list(store.iter_history("sf"))
    assert [tuple(r) for r in store.iter_history_tuples("sf", batch_size=7)] == [
        dataclasses.astuple(r) for r in plain
    ]
    some = ["stage", "next_step"]
    assert [tuple(r) for r in store.iter_history_tuples("sf", some)] == [
        dataclasses.astuple(r) for r in store.iter_history("sf", some)
    ]
    assert list(store.iter_opportunity_values("sf", ("key", "pipeline"), batch_size=7)) == [
        (o.key, o.pipeline) for o in store.iter_opportunities("sf")
    ]
    mapping = load_mapping(ROOT / "connectors/salesforce.yaml")
    for name in WORKFLOWS:
        wf = loaded(name)
        durations = None
        if needs_durations(wf.workflow.rules):
            durations = StageDurations()
            for opp, history in with_history(store, "sf"):
                durations.add_history(opp, history, canonical_of=canonical_of)
        expected = firings(with_history(store, "sf"), wf, durations)
        got: list[str] = []

        def keep(f: Firing, got: list[str] = got) -> None:
            got.append(json.dumps(f.as_json(), sort_keys=True))

        summary = evaluate(wf, store, "sf", NOW, mapping=mapping, on_firing=keep)
        got.append(repr(dataclasses.astuple(summary)))
        assert got == expected
        assert len(got) > 100


def test_firing_keeps_the_full_opportunity_and_lazy_actions() -> None:
    """A firing carries the whole Opportunity; its actions are built before it is handed on
    (so that a task text that fails sets it aside) and kept."""
    wf = loaded("pipeline-hygiene")
    seen: list[Firing] = []
    evaluate_stream(wf, deals(50), "sf", NOW, canonical_of=canonical_of, on_firing=seen.append)
    assert seen
    first = seen[0]
    assert isinstance(first.opportunity, Opportunity)
    assert "actions" not in first.__dict__
    assert first.actions is first.actions


@pytest.mark.slow
def test_evaluate_from_kept_summaries_plans_what_the_history_plans(
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On both backends, evaluate() plans from the kept summaries exactly what it plans from
    the history: with none kept (the history read in bulk), all kept (no history read at all),
    some dropped by a later write (only those deals' histories read), and all out of date after
    a stage mapping change (the history read again, with that mapping)."""
    items = list(deals(600))
    _load(store, items)  # no summarizer: none kept
    mapping = load_mapping(ROOT / "connectors/salesforce.yaml")

    def plan_of(wf: LoadedWorkflow, crm_mapping: Any, summaries: bool = True) -> list[str]:
        got: list[str] = []
        summary = evaluate(
            wf,
            store,
            "sf",
            NOW,
            mapping=crm_mapping,
            on_firing=lambda f: got.append(json.dumps(f.as_json(), sort_keys=True)),
            summaries=summaries,
        )
        return [*got, repr(dataclasses.astuple(summary))]

    reads: list[str] = []

    def spy(name: str) -> None:
        real = getattr(store, name)

        def counted(*a: Any, **k: Any) -> Any:
            reads.append(name)
            return real(*a, **k)

        monkeypatch.setattr(store, name, counted)

    for name in ("iter_history_tuples", "iter_history", "history"):
        spy(name)

    summarizer = summarizer_for(mapping)
    assert store.stale_summaries("sf", summarizer.version) == 600
    from_history = {name: plan_of(loaded(name), mapping, summaries=False) for name in WORKFLOWS}
    for name in WORKFLOWS:
        reads.clear()
        assert plan_of(loaded(name), mapping) == from_history[name]
        assert reads.count("history") == 0  # none kept: the history read in bulk
        assert reads.count("iter_history_tuples") >= 1
        assert len(from_history[name]) > 50

    assert store.refresh_summaries("sf", summarizer) == 600
    for name in WORKFLOWS:
        reads.clear()
        assert plan_of(loaded(name), mapping) == from_history[name]
        assert reads == []

    pushed = [
        dataclasses.replace(o, close_date=date(2027, 9, 30), modified_at=NOW) for o, _ in items[:7]
    ]
    store.apply_batch("sf", "Opportunity", opportunities=pushed, observed_at=NOW)
    assert store.stale_summaries("sf", summarizer.version) == 7
    for name in WORKFLOWS:
        expected = plan_of(loaded(name), mapping, summaries=False)
        reads.clear()
        assert plan_of(loaded(name), mapping) == expected
        # only the deals the workflow looks at (closed ones only if a rule concerns them)
        closed_too = any(applies_to_closed(r) for r in loaded(name).workflow.rules)
        looked_at = [o for o in pushed if closed_too or not o.is_closed]
        assert reads.count("history") == len(looked_at) > 0
        # a percentile rule's durations need every deal's stays: read from the history then
        needs = needs_durations(loaded(name).workflow.rules)
        assert reads.count("iter_history_tuples") == (1 if needs else 0)
    assert store.refresh_summaries("sf", summarizer) == 7

    other = mapping.model_copy(update={"stages": {**mapping.stages, "Qualification": "discovery"}})
    assert store.stale_summaries("sf", summarizer_for(other).version) == 600
    for name in WORKFLOWS:
        expected = firings_with(with_history(store, "sf"), loaded(name), other)
        reads.clear()
        assert plan_of(loaded(name), other) == expected
        assert reads.count("iter_history_tuples") >= 1  # out-of-date summaries were not used


def firings_with(items: Any, wf: LoadedWorkflow, crm_mapping: Any) -> list[str]:
    """`firings` with another stage mapping (its durations from the same history)."""
    stages = crm_mapping.stages

    def canonical(stage: str | None) -> str | None:
        return stages.get(stage) if stage is not None else None

    items = list(items)
    durations = StageDurations()
    for opp, history in items:
        durations.add_history(opp, history, canonical_of=canonical)
    return firings(items, wf, durations, canonical)
