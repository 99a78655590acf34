"""Workflow evaluation: rule kinds fire with their reasons, YAML changes change the plan."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from crmsync.errors import InvalidInput
from crmsync.workflows.examples import run_examples
from crmsync.workflows.load import load_workflow
from crmsync.workflows.plan import Firing, evaluate_stream
from crmsync.workflows.schema import Example
from crmsync.workflows.templates import TemplateError

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)

BASE_OPP: dict[str, Any] = {
    "name": "Acme",
    "stage_canonical": "discovery",
    "amount": 25000,
    "probability": 25,
    "close_date": "2027-01-15",
    "next_step": "Demo",
    "last_activity_at": "2026-11-18T10:00:00Z",
    "created_at": "2026-09-01T10:00:00Z",
    "modified_at": "2026-11-18T10:00:00Z",
    "owner_id": "005A",
    "owner_name": "Jane Doe",
    "owner_active": True,
}


def _workflow(tmp_path: Path, rules: str, scope: str = "") -> Path:
    path = tmp_path / "wf.yaml"
    path.write_text(f"name: test-wf\n{scope}rules:\n{rules}")
    return path


def _fire(
    path: Path, opp: dict[str, Any], history: list[dict[str, Any]] | None = None
) -> dict[str, list[str]]:
    """The rules that fire on one opportunity, with their reasons."""
    loaded = load_workflow(path)
    from crmsync.workflows.examples import build

    example = Example(name="t", now=NOW, opportunity=opp, history=history or [], fires=[])
    item = build(example, loaded, 0)
    firings: list[Firing] = []
    evaluate_stream(loaded, iter([item]), item[0].connection, NOW, on_firing=firings.append)
    return {f.rule_id: f.reasons for f in firings}


def test_shipped_workflows_pass_their_own_examples() -> None:
    """Both shipped workflow files load, and every example they carry passes."""
    for name in ("pipeline-hygiene", "stage-gates"):
        loaded = load_workflow(ROOT / "workflows" / f"{name}.yaml")
        results = run_examples(loaded)
        assert results, name
        failures = [(r.name, r.expected, r.fired, r.reasons) for r in results if not r.passed]
        assert failures == []


@pytest.mark.parametrize(("days", "fires"), [(14, True), (45, False)])
def test_changing_a_threshold_changes_the_plan(tmp_path: Path, days: int, fires: bool) -> None:
    """The same deal, 31 days idle, fires at a 14-day threshold and not at 45."""
    path = _workflow(
        tmp_path, f"  - {{id: idle, kind: staleness, check: no_activity, days: {days}}}\n"
    )
    opp = {**BASE_OPP, "last_activity_at": "2026-10-20T12:00:00Z"}
    result = _fire(path, opp)
    assert ("idle" in result) is fires
    if fires:
        assert result["idle"] == ["no activity for 31 days (limit 14)"]


def test_changing_a_stage_criterion_changes_the_plan(tmp_path: Path) -> None:
    """Requiring champion in discovery makes a deal without one fire; dropping it does not."""
    opp = {**BASE_OPP, "pain": "slow reports", "metrics": "2 FTE"}
    strict = _workflow(
        tmp_path,
        "  - id: gate\n    kind: stage_gate\n    requires:\n      discovery: [pain, champion]\n",
    )
    assert _fire(strict, opp) == {"gate": ["missing champion (needed in discovery)"]}
    lenient = _workflow(
        tmp_path, "  - id: gate\n    kind: stage_gate\n    requires:\n      discovery: [pain]\n"
    )
    assert _fire(lenient, opp) == {}


def test_cumulative_gates_carry_earlier_criteria(tmp_path: Path) -> None:
    """A negotiation deal needs the proposal criteria too, unless cumulative is false."""
    opp = {**BASE_OPP, "stage_canonical": "negotiation", "economic_buyer": None}
    rules = (
        "  - id: gate\n    kind: stage_gate\n{extra}    requires:\n"
        "      proposal: [economic_buyer]\n      negotiation: [next_step]\n"
    )
    assert _fire(_workflow(tmp_path, rules.format(extra="")), opp) == {
        "gate": ["missing economic buyer (needed in negotiation)"]
    }
    assert _fire(_workflow(tmp_path, rules.format(extra="    cumulative: false\n")), opp) == {}


def test_hygiene_checks(tmp_path: Path) -> None:
    """Each hygiene check fires on its own kind of bad record, with a readable reason."""
    rules = "".join(
        f"  - {{id: {c.replace('_', '-')}, kind: hygiene, check: {c}{extra}}}\n"
        for c, extra in [
            ("amount_missing", ""),
            ("owner_missing", ""),
            ("owner_inactive", ""),
            ("amount_implausible", ", max: 1000000"),
            ("probability_mismatch", ", tolerance: 20"),
        ]
    )
    path = _workflow(tmp_path, rules)
    bad = {**BASE_OPP, "amount": 1e10, "probability": 90, "owner_active": False}
    assert _fire(path, bad) == {
        "owner-inactive": ["owner Jane Doe is inactive"],
        "amount-implausible": ["amount 10,000,000,000 is above 1,000,000"],
        "probability-mismatch": [
            "probability 90% is far from the 25% usual in discovery (more than 20 points apart)"
        ],
    }
    assert set(_fire(path, {**BASE_OPP, "amount": None, "owner_id": None})) == {
        "amount-missing",
        "owner-missing",
    }


def test_closed_deals_only_meet_closed_rules(tmp_path: Path) -> None:
    """A closed-won deal is not stale, but it is flagged when it has no amount."""
    path = _workflow(
        tmp_path,
        "  - {id: idle, kind: staleness, check: no_activity, days: 1}\n"
        "  - {id: won, kind: hygiene, check: closed_won_without_amount}\n",
    )
    won = {
        **BASE_OPP,
        "stage_canonical": "closed_won",
        "is_closed": True,
        "is_won": True,
        "amount": None,
        "last_activity_at": "2026-01-01T00:00:00Z",
    }
    assert _fire(path, won) == {"won": ["closed won with no amount"]}


def test_scope_condition_and_custom_rule(tmp_path: Path) -> None:
    """The scope condition filters deals; a custom CEL rule fires and explains itself."""
    path = _workflow(
        tmp_path,
        "  - id: big\n    kind: custom\n    condition: amount != null && amount > 20000.0\n",
        scope="scope:\n  condition: owner_active == true\n",
    )
    assert _fire(path, BASE_OPP) == {"big": ['meets the condition of "Big"']}
    assert _fire(path, {**BASE_OPP, "owner_active": False}) == {}


def test_a_custom_rules_reason_is_rendered_with_the_deals_values(tmp_path: Path) -> None:
    """A custom rule's `reason:` is a template: the deal's values in plain words, never CEL."""
    path = _workflow(
        tmp_path,
        "  - id: big\n    kind: custom\n    title: Big deal\n"
        "    condition: amount != null && amount > 20000.0\n"
        '    reason: "{{ name }} is worth {{ amount|money }} ({{ rule }})"\n',
    )
    opp = {**BASE_OPP, "currency": "EUR"}
    assert _fire(path, opp) == {"big": ["Acme is worth EUR 25,000 (Big deal)"]}


def test_a_reason_cannot_use_the_reasons(tmp_path: Path) -> None:
    """`reasons` in a reason is refused when the workflow loads, naming the file and field."""
    path = _workflow(
        tmp_path,
        "  - id: big\n    kind: custom\n    condition: amount != null\n"
        '    reason: "{{ reasons }}"\n',
    )
    with pytest.raises(InvalidInput, match=r"\.yaml:\d+:\d+: rules\[0\]\.reason: .*'reasons'"):
        load_workflow(path)


def test_actions_render_tasks_with_business_day_due_dates(tmp_path: Path) -> None:
    """A task's texts render from the deal, and its due date skips the weekend and Thanksgiving."""
    path = tmp_path / "wf.yaml"
    path.write_text("""name: t
calendar: {country: US}
rules:
  - id: idle
    kind: staleness
    check: no_activity
    days: 14
    actions:
      flag: {field: flags, value: stale}
      task:
        subject: "{{ name }}: idle {{ days_since_activity|days }}"
        due_in_business_days: 3
        priority: high
""")
    loaded = load_workflow(path)
    from crmsync.workflows.examples import build

    now = datetime(2026, 11, 23, 9, tzinfo=UTC)  # a Monday; Thursday the 26th is Thanksgiving
    opp, history = build(
        Example(
            name="t",
            now=now,
            opportunity={**BASE_OPP, "last_activity_at": "2026-11-01T09:00:00Z"},
            fires=[],
        ),
        loaded,
        0,
    )
    firings: list[Firing] = []
    evaluate_stream(loaded, iter([(opp, history)]), "example", now, on_firing=firings.append)
    [firing] = firings
    flag, task = firing.actions
    assert (flag.kind, flag.field, flag.value) == ("flag", "flags", "stale")
    assert task.subject == "Acme: idle 22 days"
    assert task.due_date is not None and task.due_date.isoformat() == "2026-11-27"
    assert task.priority == "high"


def test_a_rule_that_fails_is_counted_and_logged_once(tmp_path: Path) -> None:
    """A rule whose condition fails at run time counts a condition error per deal and logs
    the rule and the reason once, not a line per deal."""
    path = _workflow(
        tmp_path,
        "  - id: bad\n    kind: custom\n    condition: int(name) > 0\n"
        "  - id: big\n    kind: custom\n    condition: amount != null && amount > 20000.0\n",
    )
    loaded = load_workflow(path)
    from crmsync.workflows.examples import build

    items = [
        build(Example(name=f"t{i}", now=NOW, opportunity=BASE_OPP, history=[], fires=[]), loaded, i)
        for i in range(3)
    ]
    firings: list[Firing] = []
    with capture_logs() as logs:
        summary = evaluate_stream(
            loaded, iter(items), items[0][0].connection, NOW, on_firing=firings.append
        )
    assert summary.condition_errors == 3
    assert [f.rule_id for f in firings] == ["big", "big", "big"]
    failed = [e for e in logs if e["event"] == "plan.condition_failed"]
    assert len(failed) == 1
    assert failed[0]["rule"] == "bad" and failed[0]["workflow"] == "test-wf"
    assert "int" in failed[0]["error"] or "Acme" in failed[0]["error"]


def test_a_task_text_that_fails_sets_that_firing_aside(tmp_path: Path) -> None:
    """A task text that cannot be rendered for a deal sets that firing aside: counted, logged
    once per rule (plan.render_failed), and the other deals and rules go on."""
    path = _workflow(
        tmp_path,
        "  - id: bad\n    kind: custom\n    condition: amount != null\n"
        "    actions:\n      task: {subject: '{{ custom.region|money }}'}\n"
        "  - id: good\n    kind: custom\n    condition: amount != null\n"
        "    actions:\n      task: {subject: 'Call {{ name }}'}\n",
    )
    loaded = load_workflow(path)
    from crmsync.workflows.examples import build

    regions = ["EMEA", "12.5", "APAC"]
    opps = [{**BASE_OPP, "custom": {"region": r}} for r in regions]
    items = [
        build(Example(name=f"t{i}", now=NOW, opportunity=o, history=[], fires=[]), loaded, i)
        for i, o in enumerate(opps)
    ]
    firings: list[Firing] = []
    with capture_logs() as logs:
        summary = evaluate_stream(
            loaded, iter(items), items[0][0].connection, NOW, on_firing=firings.append
        )
    assert summary.render_errors == 2
    assert [f.rule_id for f in firings] == ["good", "bad", "good", "good"]
    assert firings[1].actions[0].subject == "12.50"
    failed = [e for e in logs if e["event"] == "plan.render_failed"]
    assert len(failed) == 1
    assert failed[0]["rule"] == "bad" and failed[0]["opportunity"] == items[0][0].key
    assert failed[0]["error"] == "cannot render: money needs a number, got 'EMEA'"
    assert summary.firings == 4


def test_actions_on_read_defers_texts_and_undecided_deals_are_told(tmp_path: Path) -> None:
    """The per-deal engine with `actions_on_read` (as apply runs it): every firing is handed
    on, a task text is built on first read (a failing one raises there), a flag-only rule's
    actions are made at once; a condition that raises tells `on_undecided` (rule, deal)."""
    path = _workflow(
        tmp_path,
        "  - id: bad\n    kind: custom\n    condition: amount != null\n"
        "    actions:\n      task: {subject: '{{ custom.region|money }}'}\n"
        "  - id: flag\n    kind: custom\n    condition: amount != null\n"
        "    actions:\n      flag: {field: flags, value: f}\n"
        "  - id: odd\n    kind: custom\n    condition: int(custom.region) > 0\n",
    )
    loaded = load_workflow(path)
    from crmsync.workflows.examples import build

    opps = [{**BASE_OPP, "custom": {"region": r}} for r in ["EMEA", "12.5"]]
    items = [
        build(Example(name=f"t{i}", now=NOW, opportunity=o, history=[], fires=[]), loaded, i)
        for i, o in enumerate(opps)
    ]
    firings: list[Firing] = []
    undecided: list[tuple[str | None, str]] = []
    summary = evaluate_stream(
        loaded,
        iter(items),
        items[0][0].connection,
        NOW,
        on_firing=firings.append,
        actions_on_read=True,
        on_undecided=lambda rule, key: undecided.append((rule, key)),
    )
    assert [f.rule_id for f in firings] == ["bad", "flag", "bad", "flag"]
    assert summary.render_errors == 0  # nothing rendered yet
    bad = [f for f in firings if f.rule_id == "bad"]
    assert all(f._actions is None for f in bad)  # deferred
    assert all(f._actions is not None for f in firings if f.rule_id == "flag")  # made at once
    with pytest.raises(TemplateError):
        bad[0].actions  # noqa: B018 ("EMEA" is no amount)
    assert bad[1].actions[0].subject == "12.50"
    # int("EMEA") raises: undecided; int("12.5") too (not an integer text)
    assert undecided == [("odd", items[0][0].key), ("odd", items[1][0].key)]


def test_task_texts_lose_control_characters_and_are_cut(tmp_path: Path) -> None:
    """A deal name with escape codes, CR/LF and 100,000 characters gives a one-line subject of
    at most 255 characters and a body of at most 32,000 that keeps only line breaks and tabs
    (a line break inside a paragraph is reflowed into a space, see model.text.reflow)."""
    path = _workflow(
        tmp_path,
        "  - id: r\n    kind: custom\n    condition: amount != null\n"
        "    actions:\n      task:\n        subject: 'Call {{ name }}'\n"
        '        body: "{{ name }}\\n{{ name }}"\n',
    )
    name = "\x1b[31mEvil\r\nCorp\t\u202e" + "x" * 100_000
    fired = _fire_actions(path, {**BASE_OPP, "name": name})
    [task] = fired
    assert task.subject is not None and task.body is not None
    assert task.subject.startswith("Call  [31mEvil  Corp  ")
    assert len(task.subject) == 255 and task.subject.endswith("…")
    assert task.body.startswith("[31mEvil Corp\t")
    assert 31_990 < len(task.body) <= 32_000 and task.body.endswith("…")


def _fire_actions(path: Path, opp: dict[str, Any]) -> list[Any]:
    """The actions of the one firing on `opp`."""
    loaded = load_workflow(path)
    from crmsync.workflows.examples import build

    item = build(Example(name="t", now=NOW, opportunity=opp, history=[], fires=[]), loaded, 0)
    firings: list[Firing] = []
    evaluate_stream(loaded, iter([item]), item[0].connection, NOW, on_firing=firings.append)
    [firing] = firings
    return firing.actions


def test_crmsync_test_fails_an_example_whose_task_cannot_render(tmp_path: Path) -> None:
    """`crmsync test` fails an example whose rule fires but whose task text cannot be
    rendered, with one line naming the rule and the reason."""
    from click.testing import CliRunner

    from crmsync.cli import main

    path = _workflow(
        tmp_path,
        "  - id: bad\n    kind: custom\n    condition: amount != null\n"
        "    actions:\n      task: {subject: '{{ custom.region|money }}'}\n"
        "examples:\n  - name: emea\n    now: 2026-11-20T12:00:00Z\n"
        "    opportunity: {name: Acme, amount: 10, custom: {region: EMEA}}\n"
        "    fires: [bad]\n",
    )
    result = CliRunner().invoke(main, ["test", str(path)])
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "FAIL test-wf: emea"
    assert "     bad: task cannot render: money needs a number, got 'EMEA'" in lines
    assert lines[-1] == "0 passed, 1 failed"


def test_a_custom_rules_firing_shows_what_its_condition_read(tmp_path: Path) -> None:
    """`plan` shows an admin the values a custom condition read (table and JSON), since its
    reason need not name them; built-in kinds say theirs in their reasons."""
    from crmsync.cli.workflows import firing_lines
    from crmsync.workflows.examples import build

    path = _workflow(
        tmp_path,
        "  - id: big\n    kind: custom\n    title: Big deal in discovery\n"
        '    condition: amount != null && amount >= 20000.0 && stage_canonical == "discovery"\n'
        "    actions:\n      task:\n        subject: '{{ name }}: look'\n",
    )
    loaded = load_workflow(path)
    item = build(Example(name="t", now=NOW, opportunity=BASE_OPP, history=[], fires=[]), loaded, 0)
    firings: list[Firing] = []
    evaluate_stream(loaded, iter([item]), item[0].connection, NOW, on_firing=firings.append)
    [firing] = firings
    assert firing.as_json()["values"] == {"amount": 25000.0, "stage_canonical": "discovery"}
    lines = firing_lines(firing, header=False)
    assert lines[1] == '      read: amount=25000.0  stage_canonical="discovery"'


def test_crmsync_test_says_why_an_expected_rule_did_not_fire(tmp_path: Path) -> None:
    """A failing example says why: the scope left its deal out (with the values read), or,
    per expected rule, why it did not fire, in `plan --opportunity`'s words."""
    from click.testing import CliRunner

    from crmsync.cli import main

    example = (
        "examples:\n  - name: {name}\n    now: 2026-11-20T12:00:00Z\n"
        "    opportunity: {{name: Acme, stage_canonical: discovery, amount: {amount},\n"
        "      last_activity_at: 2026-11-18T10:00:00Z, created_at: 2026-09-01T10:00:00Z,\n"
        "      modified_at: 2026-11-18T10:00:00Z, owner_id: '005A', owner_active: true}}\n"
        "    fires: [idle]\n"
    )
    path = _workflow(
        tmp_path,
        "  - id: idle\n    kind: staleness\n    check: no_activity\n    days: 14\n",
        scope="scope:\n  condition: amount != null && amount >= 1000.0\n",
    )
    with path.open("a") as f:
        f.write(example.format(name="tiny", amount=10))
    out = CliRunner().invoke(main, ["test", str(path)]).output
    assert (
        "     the example's deal is out of scope: scope.condition is false: "
        "amount != null && amount >= 1000.0 (read: amount=10.0)"
    ) in out
    path.write_text(path.read_text().replace("amount: 10,", "amount: 5000,"))
    out = CliRunner().invoke(main, ["test", str(path)]).output
    assert (
        "     idle did not fire: false: no activity for 2 days, not more than the limit of 14"
    ) in out
