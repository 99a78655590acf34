"""The columnar engine plans exactly what the per-deal engine plans: the same firings, reasons,
actions (rendered texts, due dates, flags) and counts, deal by deal, on both backends.

Two kinds of evidence: the shipped workflows over a generated store with both CRMs' stage
mappings, and a property test over generated workflows (thresholds, stages, CEL conditions,
gates) and generated deals with the awkward values (no amount, NaN, blank text, a cent either
side of a limit, nulls compared for order, closed deals, stamps in the future).
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from crmsync.config import load_mapping
from crmsync.model import Opportunity
from crmsync.model.mapping import Mapping as CrmMapping
from crmsync.model.records import HistoryRow
from crmsync.store import Store
from crmsync.workflows.columnar import run as columnar_run
from crmsync.workflows.columnar.run import plan_layout
from crmsync.workflows.load import LoadedWorkflow, load_workflow
from crmsync.workflows.plan import Firing, evaluate
from crmsync.workflows.readers import summarizer_for

from .test_fast_paths import BENCH, NOW

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ("pipeline-hygiene", "stage-gates")


def _plan(
    wf: LoadedWorkflow, store: Store, mapping: CrmMapping, engine: str, connection: str = "sf"
) -> list[Any]:
    got: list[Any] = []

    def keep(f: Firing) -> None:
        got.append(json.dumps(f.as_json(), sort_keys=True))

    summary = evaluate(wf, store, connection, NOW, mapping=mapping, on_firing=keep, engine=engine)
    counts = evaluate(wf, store, connection, NOW, mapping=mapping, engine=engine)
    return [*got, repr(dataclasses.astuple(summary)), repr(dataclasses.astuple(counts))]


def _load(store: Store, connection: str, items: list[tuple[Opportunity, list[HistoryRow]]]) -> None:
    for start in range(0, len(items), 500):
        part = items[start : start + 500]
        store.apply_batch(
            connection,
            "Opportunity",
            opportunities=[o for o, _ in part],
            history=[r for _, h in part for r in h],
            observed_at=NOW,
        )


def _as(connection: str, source: str, items: Any) -> Iterator[tuple[Opportunity, list[HistoryRow]]]:
    """The generated deals under another connection (and CRM), keys and history to match."""
    for opp, history in items:
        moved = dataclasses.replace(opp, connection=connection, source=source)
        yield moved, [dataclasses.replace(r, key=moved.key) for r in history]


@pytest.fixture
def ran_columnar(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Which workflows the columnar engine ran (so that a silent fallback fails the test)."""
    seen: list[str] = []
    real = columnar_run.evaluate_columnar

    def spy(loaded: LoadedWorkflow, *a: Any, **k: Any) -> Any:
        seen.append(loaded.name)
        return real(loaded, *a, **k)

    monkeypatch.setattr(columnar_run, "evaluate_columnar", spy)
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_shipped_workflows_plan_the_same_on_columns(
    store: Store, crm: str, ran_columnar: list[str]
) -> None:
    mapping = load_mapping(ROOT / f"connectors/{crm}.yaml")
    stages = load_mapping(ROOT / "connectors/salesforce.yaml").stages
    items = list(_as(crm[:2], crm, BENCH.opportunities(1500, 5, NOW, stages)))
    _load(store, crm[:2], items)
    store.refresh_summaries(crm[:2], summarizer_for(mapping))
    for name in WORKFLOWS:
        wf = load_workflow(ROOT / "workflows" / f"{name}.yaml")
        expected = _plan(wf, store, mapping, "per-deal", crm[:2])
        assert len(expected) > 100
        assert _plan(wf, store, mapping, "auto", crm[:2]) == expected
    assert ran_columnar == [name for name in WORKFLOWS for _ in (1, 2)]


@pytest.mark.slow
def test_the_sqlite_helper_plans_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ran_columnar: list[str]
) -> None:
    """A big SQLite store is read by the ADBC helper process: the plans are still the per-deal
    engine's, firing for firing (and the helper did the reading)."""
    from crmsync.store import sqlite_arrow

    monkeypatch.setattr(sqlite_arrow, "HELPER_FROM", 1000)
    reads: list[str] = []
    real = sqlite_arrow.arrow_frames

    def spy(*a: Any, **k: Any) -> Any:
        reads.append("helper")
        return real(*a, **k)

    monkeypatch.setattr(sqlite_arrow, "arrow_frames", spy)
    mapping = load_mapping(ROOT / "connectors/salesforce.yaml")
    store = Store.open(f"sqlite:///{tmp_path / 'crmsync.db'}")
    try:
        _load(store, "sf", list(BENCH.opportunities(1500, 11, NOW, mapping.stages)))
        store.refresh_summaries("sf", summarizer_for(mapping))
        for name in WORKFLOWS:
            wf = load_workflow(ROOT / "workflows" / f"{name}.yaml")
            expected = _plan(wf, store, mapping, "per-deal")
            assert len(expected) > 100
            assert _plan(wf, store, mapping, "auto") == expected
    finally:
        store.close()
        sqlite_arrow._close_all()
    assert ran_columnar == [name for name in WORKFLOWS for _ in (1, 2)]
    assert len(reads) == 6  # the deals, four times; pipeline-hygiene's stage stays, twice


def test_layout_says_what_runs_where() -> None:
    """Built-in rules and the CEL subset run on columns; a condition with a function (or a
    field the columns do not carry) runs deal by deal, and the layout says which and why."""
    wf = load_workflow(ROOT / "workflows/pipeline-hygiene.yaml")
    lines = plan_layout(wf, None).describe()
    assert lines[0] == "scope: columnar"
    assert all(line.endswith(": columnar") for line in lines)
    odd = _workflow(
        _Params(custom='name.startsWith("A") && amount != null', scope="close_date != null"),
    )
    lines = plan_layout(odd, None).describe()
    assert lines[0].startswith("scope: per-deal")
    assert "custom-rule: per-deal (its condition)" in lines


# ---- generated workflows over generated deals ----------------------------------------------------
@dataclasses.dataclass
class _Params:
    days: int = 14
    times: int = 2
    tolerance: int = 20
    low: str = "100"
    high: str = "5000000"
    stages: tuple[str, ...] = ("discovery", "proposal")
    custom: str = "amount != null && amount >= 50000.0"
    scope: str = "amount == null || amount >= 500.0"
    gate: str = "amount != null && amount > 0.0"
    closed: bool = False


def _workflow(p: _Params) -> LoadedWorkflow:
    text = f"""
name: generated
scope:
  condition: {json.dumps(p.scope)}
  include_closed: {str(p.closed).lower()}
rules:
  - {{id: idle, kind: staleness, check: no_activity, days: {p.days}}}
  - {{id: idle-some, kind: staleness, check: no_activity, days: {p.days + 3},
      stages: {list(p.stages)}}}
  - {{id: stuck, kind: staleness, check: stuck_in_stage, days: {p.days}}}
  - {{id: past, kind: staleness, check: close_date_past, days: {p.times}}}
  - {{id: pushed, kind: staleness, check: close_date_pushed, times: {p.times}}}
  - {{id: slipped, kind: staleness, check: close_date_slipped, days: {p.days}}}
  - {{id: no-next, kind: staleness, check: no_next_step, stages: {list(p.stages)}}}
  - {{id: next-stale, kind: staleness, check: next_step_stale, days: {p.days}}}
  - {{id: no-amount, kind: hygiene, check: amount_missing}}
  - {{id: odd-amount, kind: hygiene, check: amount_implausible, min: {p.low}, max: {p.high}}}
  - {{id: prob, kind: hygiene, check: probability_mismatch, tolerance: {p.tolerance}}}
  - {{id: won-empty, kind: hygiene, check: closed_won_without_amount}}
  - {{id: owner-gone, kind: hygiene, check: owner_inactive}}
  - {{id: owner-none, kind: hygiene, check: owner_missing}}
  - id: gate
    kind: stage_gate
    fire_on_skipped_stages: true
    requires:
      proposal: [amount, close_date, economic_buyer, budget_confirmed]
      negotiation:
        - decision_process
        - {{label: a real amount, condition: {json.dumps(p.gate)}}}
  - id: custom-rule
    kind: custom
    condition: {json.dumps(p.custom)}
    reason: "{{{{ name }}}} at {{{{ amount|money }}}}"
    actions:
      task: {{subject: "{{{{ name }}}}: look", due_in_business_days: 2}}
"""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
    return load_workflow(Path(f.name))


_STAGES = ["qualified", "discovery", "proposal", "negotiation", "closed_won", "closed_lost", None]
_TEXT = st.sampled_from([None, "", " ", "\x1c", "\u3000", "Dana", "x"])
_AMOUNTS = st.sampled_from(
    [
        None,
        "0",
        "0.00",
        "99.995",
        "99.994",
        "100",
        "4999999.995",
        "5000000.01",
        "1E+3",
        "50000",
        "49999.999",
        "123456789012.5",
        "-5",
        "NaN",
        "Infinity",
    ]
)
_STAMP = st.one_of(
    st.none(),
    st.integers(-400, 5).map(lambda d: NOW + timedelta(days=d, hours=d % 7, seconds=d % 13)),
)


@st.composite
def _deal(draw: Any, i: int) -> tuple[Opportunity, list[HistoryRow]]:
    stage = draw(st.sampled_from(_STAGES))
    closed = stage in ("closed_won", "closed_lost") or (draw(st.booleans()) and stage is None)
    amount = draw(_AMOUNTS)
    close = draw(
        st.one_of(st.none(), st.integers(-60, 90).map(lambda d: NOW.date() + timedelta(d)))
    )
    opp = Opportunity(
        connection="sf",
        native_id=f"{i:04d}",
        source="salesforce",
        name=f"Deal {i}",
        modified_at=NOW - timedelta(days=1),
        owner_id=draw(st.sampled_from([None, "", "u1", "u2"])),
        owner_name=draw(st.sampled_from([None, "", "Ann", "Bo"])),
        owner_active=draw(st.sampled_from([None, True, False])),
        pipeline=draw(st.sampled_from([None, "default", "renewals"])),
        stage_canonical=stage,
        is_closed=closed,
        is_won=closed and stage != "closed_lost" and draw(st.booleans()),
        amount=None if amount is None else Decimal(amount),
        currency=draw(st.sampled_from([None, "USD", "EUR"])),
        probability=draw(st.sampled_from([None, 0.0, 10.0, 25.0, 33.3, 60.0, 90.0, math.nan])),
        close_date=close,
        next_step=draw(_TEXT),
        last_activity_at=draw(_STAMP),
        created_at=draw(_STAMP),
        stage_entered_at=draw(_STAMP),
        economic_buyer=draw(_TEXT),
        budget_confirmed=draw(st.sampled_from([None, True, False])),
        decision_process=draw(_TEXT),
    )
    history = []
    pushes = draw(st.integers(0, 4))
    for n in range(pushes):
        old, new = date(2026, 6, 1) + timedelta(30 * n), date(2026, 6, 1) + timedelta(30 * n + 30)
        at = NOW - timedelta(days=100 - 10 * n)
        history.append(
            HistoryRow(opp.key, "close_date", old.isoformat(), new.isoformat(), at, "crm")
        )
    if draw(st.booleans()):
        at = NOW - timedelta(days=draw(st.integers(0, 90)))
        history.append(HistoryRow(opp.key, "next_step", None, "x", at, "crm"))
    if draw(st.booleans()):
        at = NOW - timedelta(days=draw(st.integers(0, 90)))
        history.append(
            HistoryRow(opp.key, "stage_canonical", "qualified", "negotiation", at, "crm")
        )
    return opp, history


_PARAMS = st.builds(
    _Params,
    days=st.integers(0, 60),
    times=st.integers(1, 4),
    tolerance=st.integers(0, 50),
    low=st.sampled_from(["100", "99.99", "0"]),
    high=st.sampled_from(["5000000", "50000", "4999999.99"]),
    stages=st.lists(st.sampled_from(_STAGES[:4]), min_size=1, max_size=3, unique=True).map(tuple),
    custom=st.sampled_from(
        [
            "amount != null && amount >= 50000.0",
            "amount >= 1000.0 || probability > 50.0",
            '!is_closed && (stage_canonical == "proposal" ? days_in_stage > 10.0 : false)',
            'stage_canonical in ["proposal", "negotiation"] && close_date_push_count >= 1',
            "days_since_activity != null && days_since_activity * 2.0 > 30.0",
            'owner_active == false || next_step == ""',
        ]
    ),
    scope=st.sampled_from(
        ["amount == null || amount >= 500.0", "!is_closed", "probability < 50.0", "true"]
    ),
    gate=st.sampled_from(["amount != null && amount > 0.0", "amount > 1000.0"]),
    closed=st.booleans(),
)


@pytest.mark.slow
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=(Phase.explicit, Phase.reuse, Phase.generate),  # a store per example: no shrinking
)
@given(params=_PARAMS, data=st.data())
def test_generated_workflows_plan_the_same_on_columns(params: _Params, data: Any) -> None:
    items = [data.draw(_deal(i)) for i in range(data.draw(st.integers(1, 25)))]
    mapping = load_mapping(ROOT / "connectors/salesforce.yaml")
    wf = _workflow(params)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(f"sqlite:///{tmp}/store.db")
        try:
            _load(store, "sf", items)
            store.refresh_summaries("sf", summarizer_for(mapping))
            stale = data.draw(st.integers(0, 3))  # deals changed since their summary was made
            changed = [
                dataclasses.replace(o, close_date=date(2027, 3, 1), modified_at=NOW)
                for o, _ in items[:stale]
            ]
            store.apply_batch("sf", "Opportunity", opportunities=changed, observed_at=NOW)
            got, expected = _plan(wf, store, mapping, "auto"), _plan(wf, store, mapping, "per-deal")
            first = next(
                (i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b), None
            )
            assert got == expected, (params, first, got[first or 0], expected[first or 0])
        finally:
            store.close()


def test_differential_check_can_fail(store: Store) -> None:
    """A deliberately wrong vectorised rule is caught: the two engines then disagree."""
    mapping = load_mapping(ROOT / "connectors/salesforce.yaml")
    stages = mapping.stages
    items = list(BENCH.opportunities(300, 3, NOW, stages))
    _load(store, "sf", items)
    store.refresh_summaries("sf", summarizer_for(mapping))
    wf = load_workflow(ROOT / "workflows/pipeline-hygiene.yaml")
    right = _plan(wf, store, mapping, "auto")
    assert right == _plan(wf, store, mapping, "per-deal")
    from crmsync.workflows.columnar import frame

    real = frame.DAY
    try:
        frame.DAY = real * 2  # ages half as long: "no activity" fires less
        assert _plan(wf, store, mapping, "auto") != right
    finally:
        frame.DAY = real


_ = (UTC, datetime)


def test_stage_durations_on_columns_match_the_summaries(store: Store) -> None:
    """The percentile rules' first pass on columns counts the same stays as the per-deal one."""
    from crmsync.workflows.columnar.durations import durations_on_columns
    from crmsync.workflows.readers import stage_durations_from_summaries

    mapping = load_mapping(ROOT / "connectors/salesforce.yaml")
    _load(store, "sf", list(BENCH.opportunities(800, 9, NOW, mapping.stages)))
    summarizer = summarizer_for(mapping)
    assert durations_on_columns(store, "sf", summarizer.version) is None  # none kept yet
    store.refresh_summaries("sf", summarizer)
    columns = durations_on_columns(store, "sf", summarizer.version)
    rows = stage_durations_from_summaries(store, "sf", summarizer)
    assert columns is not None and rows is not None
    assert columns._days == rows._days and len(rows._days) >= 4
    for pipeline, stage in rows._days:
        for pct in (50.0, 80.0, 99.5):
            assert columns.threshold(pipeline, stage, pct) == rows.threshold(pipeline, stage, pct)


@pytest.mark.parametrize(
    "reasons", [["a"], ["a", "b"], ["owner A\x1fB is inactive"], ["x\x1e", "y"], ["", ""]]
)
def test_reasons_survive_their_column(reasons: list[str]) -> None:
    from crmsync.workflows.columnar.engine import joined, split

    text = joined(reasons)
    assert text is not None and split(text) == reasons


def test_a_driver_failure_is_the_stores_one_line_error(tmp_path: Path) -> None:
    """A store file that is not a database fails as the store's one-line error naming the
    store, not as the driver's traceback."""
    from crmsync.store.columnar import read_frames
    from crmsync.store.errors import StoreError

    store = Store.open(f"sqlite:///{tmp_path}/store.db")
    store.close()
    for left in tmp_path.glob("store.db*"):
        left.unlink()
    (tmp_path / "store.db").write_bytes(b"not a database" * 512)
    with pytest.raises(StoreError, match=r"store sqlite:///.*: read opportunities failed: file is"):
        list(read_frames(store, "sf", "v", ["pipeline"], batch_size=10))


@pytest.mark.parametrize("crash", ["store", "panic"])
def test_a_failed_count_fails_a_plan_read_by_two_helpers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash: str
) -> None:
    """A big SQLite store, its deals read by two helpers in turn, the second waiting for the
    stays count: that count failing, also with a library's panic (not an Exception), fails the
    plan with it; it never waits for good."""
    import threading

    from polars.exceptions import PanicException

    from crmsync.store import sqlite_arrow
    from crmsync.store.errors import StoreUnavailable
    from crmsync.workflows.columnar import durations as columnar_durations

    mapping = load_mapping(ROOT / "connectors/salesforce.yaml")
    store = Store.open(f"sqlite:///{tmp_path / 'crmsync.db'}")
    _load(store, "sf", list(BENCH.opportunities(200, 9, NOW, mapping.stages)))
    store.refresh_summaries("sf", summarizer_for(mapping))
    for name, value in (("HELPER_FROM", 0), ("SPLIT_FROM", 0), ("RUN", 40)):
        monkeypatch.setattr(sqlite_arrow, name, value)
    raised = StoreUnavailable("gone") if crash == "store" else PanicException("gone")

    def broken(*_: Any) -> None:
        raise raised

    monkeypatch.setattr(columnar_durations, "durations_on_columns", broken)
    wf = load_workflow(ROOT / "workflows" / "pipeline-hygiene.yaml")
    got: list[BaseException] = []

    def plan() -> None:
        try:
            evaluate(wf, store, "sf", NOW, mapping=mapping, engine="auto")
        except BaseException as e:
            got.append(e)

    try:
        t = threading.Thread(target=plan, daemon=True)
        t.start()
        t.join(20)
        assert not t.is_alive(), "the plan hung"
        assert got == [raised]
    finally:
        store.close()
        sqlite_arrow._close_all()


def test_a_failed_durations_pass_fails_the_plan(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stage durations are counted in a thread while the deals are read: what that count
    raises is the plan's error, not a plan with empty percentiles."""
    from crmsync.store.errors import StoreUnavailable
    from crmsync.workflows.columnar import durations as columnar_durations

    mapping = load_mapping(ROOT / "connectors/salesforce.yaml")
    _load(store, "sf", list(BENCH.opportunities(200, 9, NOW, mapping.stages)))
    store.refresh_summaries("sf", summarizer_for(mapping))

    def broken(*_: Any) -> None:
        raise StoreUnavailable("cannot read store: gone")

    monkeypatch.setattr(columnar_durations, "durations_on_columns", broken)
    wf = load_workflow(ROOT / "workflows" / "pipeline-hygiene.yaml")
    with pytest.raises(StoreUnavailable, match="gone"):
        evaluate(wf, store, "sf", NOW, mapping=mapping, engine="auto")
