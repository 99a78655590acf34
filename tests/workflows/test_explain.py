"""`workflows.explain`: why one deal fires or does not fire each rule, without a store."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from crmsync.model import Opportunity
from crmsync.workflows.explain import explain
from crmsync.workflows.load import load_workflow

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
WORKFLOW = """\
name: why
scope:
  condition: amount == null || amount > 1000.0
rules:
  - id: stuck
    kind: staleness
    check: stuck_in_stage
    days: 10
  - id: huge
    kind: custom
    condition: amount != null && amount > 0.0
    actions:
      task:
        subject: "{{ (amount * 10**40)|money }}"
  - id: ratio
    kind: custom
    condition: custom.tier == "gold"
  - id: prob
    kind: hygiene
    check: probability_mismatch
  - id: gate
    kind: stage_gate
    requires:
      discovery: [pain, champion]
"""


def _deal(**values: object) -> Opportunity:
    base: dict[str, object] = {
        "connection": "sf",
        "native_id": "006A",
        "source": "salesforce",
        "name": "Acme",
        "modified_at": NOW,
        "created_at": datetime(2026, 11, 1, tzinfo=UTC),
    }
    return Opportunity(**{**base, **values})  # type: ignore[arg-type]


def _why(tmp_path: Path, **values: object) -> dict[str, tuple[bool, str, dict[str, object]]]:
    path = tmp_path / "why.yaml"
    path.write_text(WORKFLOW)
    e = explain(load_workflow(path), _deal(**values), [], NOW)
    assert [r.rule for r in e.rules] == ["stuck", "huge", "ratio", "prob", "gate"]
    return {r.rule: (r.fired, r.why, r.values) for r in e.rules}


def test_an_unmapped_stage_a_render_failure_and_a_failing_condition(tmp_path: Path) -> None:
    """A stage the mapping does not know, a task text that cannot render (set aside, as the
    plan does), and a condition that fails on this deal each say so."""
    why = _why(tmp_path, stage="Verbal", amount=Decimal(5000), probability=0.0)
    assert why["stuck"][:2] == (
        False,
        "the stage 'Verbal' is not mapped to a canonical stage (add it to the connection's "
        "stage mapping)",
    )
    assert why["prob"][1] == why["stuck"][1] and why["gate"][1] == why["stuck"][1]
    fired, text, values = why["huge"]
    assert not fired and text.startswith("set aside: fires (") and "money needs" in text
    assert values == {"amount": 5000.0}
    fired, text, values = why["ratio"]
    assert not fired and text == (
        "error: the condition could not be evaluated: no 'tier' in this record "
        "(guard with has(custom.tier))"
    )
    assert values == {"custom": {}}


def test_out_of_scope_by_condition_shows_its_values(tmp_path: Path) -> None:
    """A deal the scope condition leaves out: which condition, with the values it read."""
    path = tmp_path / "why.yaml"
    path.write_text(WORKFLOW)
    e = explain(load_workflow(path), _deal(amount=Decimal(10)), [], NOW)
    assert not e.in_scope
    assert e.scope == "out of scope: scope.condition is false: amount == null || amount > 1000.0"
    assert e.scope_values == {"amount": 10.0}
    assert all(not r.fired for r in e.rules)


def test_a_gate_shows_each_requirement_and_fires_on_what_is_missing(tmp_path: Path) -> None:
    """In discovery with pain but no champion the gate fires; the values show both fields."""
    why = _why(tmp_path, stage="Discovery", stage_canonical="discovery", pain="budget cuts")
    fired, text, values = why["gate"]
    assert fired and text == "missing champion (needed in discovery)"
    assert values == {"stage_canonical": "discovery", "pain": "budget cuts", "champion": None}
    assert why["stuck"][:2] == (True, "in discovery for 19 days (limit 10)")
