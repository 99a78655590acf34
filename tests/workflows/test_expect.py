"""`crmsync test` with `expect:`: an example asserts what a rule it fires would write (subject,
body, due date, priority, flag); a part that differs fails the example with the expected and
the written value on one line each, and an `expect:` that cannot hold is refused on load."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from crmsync.cli import main
from crmsync.workflows.examples import run_examples
from crmsync.workflows.load import load_workflow

WORKFLOW = """\
name: expecting
calendar: {country: US, timezone: America/New_York}
rules:
  - id: idle
    kind: staleness
    check: no_activity
    days: 14
    actions:
      flag: {field: flags, value: stale}
      task:
        subject: "{{ name }}: no activity for {{ days_since_activity|days }}"
        body: |
          Nothing logged on {{ name }}.

          Log your last touch.
        due_in_business_days: 2
        priority: high
  - id: no-amount
    kind: hygiene
    check: amount_missing
    actions:
      task: {subject: "{{ name }}: add an amount"}
  - id: flag-only
    kind: hygiene
    check: owner_missing
    actions:
      flag: {field: flags, value: noowner}
examples:
  - name: a quiet deal
    now: 2026-11-20T12:00:00Z          # a Friday
    opportunity:
      name: Acme
      stage_canonical: discovery
      amount: 5000
      owner_id: "005A"
      last_activity_at: 2026-10-20T10:00:00Z
      created_at: 2026-09-01T10:00:00Z
    fires: [idle]
    expect:
      idle:
EXPECT"""

RIGHT = """\
        subject: "Acme: no activity for 31 days"
        subject_contains: [Acme, 31 days]
        body: |
          Nothing logged on Acme.

          Log your last touch.
        body_contains: Log your last touch
        due_date: 2026-11-24
        priority: high
        flag: stale
"""


def _file(tmp_path: Path, expect: str, text: str = WORKFLOW) -> Path:
    path = tmp_path / "expecting.yaml"
    path.write_text(text.replace("EXPECT", expect))
    return path


def _test(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["test", str(path)], prog_name="crmsync")
    return result.exit_code, result.output


def test_an_example_whose_rule_writes_what_it_expects_passes(tmp_path: Path) -> None:
    """Every part matching (the whole subject and body, parts of them, due date two business
    days on, priority, flag value) passes."""
    path = _file(tmp_path, RIGHT)
    [result] = run_examples(load_workflow(path))
    assert result.passed, result.mismatches
    assert _test(path) == (0, "PASS expecting: a quiet deal\n1 passed, 0 failed\n")


@pytest.mark.parametrize(
    ("expect", "part", "expected", "got"),
    [
        ('subject: "Acme: no activity for 30 days"', "subject",
         "'Acme: no activity for 30 days'", "'Acme: no activity for 31 days'"),
        ("subject_contains: [Acme, 30 days]", "subject_contains",
         "'30 days'", "'Acme: no activity for 31 days'"),
        ("body: Nothing logged.", "body",
         "'Nothing logged.'", "'Nothing logged on Acme.\\n\\nLog your last touch.'"),
        ("body_contains: Call them", "body_contains",
         "'Call them'", "'Nothing logged on Acme.\\n\\nLog your last touch.'"),
        ("due_date: 2026-11-23", "due_date", "2026-11-23", "2026-11-24"),
        ("priority: normal", "priority", "'normal'", "'high'"),
        ("flag: stalled", "flag", "'stalled'", "'stale'"),
    ],
)  # fmt: skip
def test_a_part_that_differs_fails_with_expected_and_got(
    tmp_path: Path, expect: str, part: str, expected: str, got: str
) -> None:
    """The example fails (exit 1) naming the example and the rule, and shows the expected and
    the written value each on one line."""
    code, out = _test(_file(tmp_path, f"        {expect}\n"))
    assert code == 1, out
    lines = out.splitlines()
    assert lines[0] == "FAIL expecting: a quiet deal"
    # the right rule fired: said once, not as "expected: idle" over "fired: idle"
    assert lines[1] == "     fired:    idle, as expected; but:"
    at = lines.index(f"     idle: {part}")
    assert lines[at + 1 : at + 3] == [f"       expected: {expected}", f"       got:      {got}"]
    assert lines[-1] == "0 passed, 1 failed"


def test_every_differing_part_is_shown(tmp_path: Path) -> None:
    """Two wrong parts: two expected/got pairs, one example failed."""
    code, out = _test(_file(tmp_path, "        priority: low\n        flag: x\n"))
    assert code == 1
    assert "     idle: priority" in out and "     idle: flag" in out
    assert out.count("       expected: ") == 2


@pytest.mark.parametrize(
    ("expect", "message"),
    [
        (
            "        colour: red\n",
            "expecting.yaml:42:9: examples[0].expect.idle: unknown field 'colour'",
        ),
        ("        priority: urgent\n", "examples[0].expect.idle.priority"),
        ("        due_date: soon\n", "examples[0].expect.idle.due_date"),
        ("      no-amount: {subject: x}\n",
         "examples[0].expect.no-amount: the example does not fire 'no-amount'"),
        ("      idel: {subject: x}\n", "examples[0].expect.idel: no rule 'idel'"),
    ],
)  # fmt: skip
def test_an_expect_that_cannot_hold_is_refused_on_load(
    tmp_path: Path, expect: str, message: str
) -> None:
    """Unknown parts, bad values, rules the example does not fire or that do not exist: one
    line naming file:line:col and the field, exit 2."""
    code, out = _test(_file(tmp_path, "        subject: x\n" + expect))
    assert code == 2, out
    [line] = out.splitlines()
    assert line.startswith("crmsync: error: ") and message in line, line


@pytest.mark.parametrize(
    ("fires", "expect", "message"),
    [
        ("[idle, no-amount]", "      no-amount: {flag: x}\n", "rule 'no-amount' sets no flag"),
        ("[idle, flag-only]", "      flag-only: {priority: high}\n",
         "rule 'flag-only' creates no task"),
    ],
)  # fmt: skip
def test_a_part_the_rule_cannot_write_is_refused(
    tmp_path: Path, fires: str, expect: str, message: str
) -> None:
    """A flag expected of a rule without one, or a task part of a rule without a task."""
    text = WORKFLOW.replace("fires: [idle]", f"fires: {fires}")
    code, out = _test(_file(tmp_path, "        subject: x\n" + expect, text))
    assert code == 2, out
    assert message in out
