"""Write-back with a task text that fails for some deals: those firings are set aside, the
rest of the workflow is planned, recorded and sent (issue 14)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from structlog.testing import capture_logs

from crmsync.store.schema import outbox
from tests.actions.world import WORKFLOW, World, builds_counted, write_workflow

# a rule whose task text fails for every deal it fires on (money shows amounts below 1e30;
# the smallest amount is a cent)
FAILING = """\
  - id: huge-amount
    kind: custom
    condition: amount != null && amount > 0.0
    title: Huge amount
    actions:
      task:
        subject: "{{ (amount * 10**40)|money }}"
"""


def test_a_failing_task_text_sets_its_firings_aside_and_apply_goes_on(world: World) -> None:
    """apply does not abort: the failing rule's firings are set aside with one log line per
    rule, and the other rules' tasks and flags are recorded and sent on both CRMs."""
    folder = Path(str(world.config.workflows))
    write_workflow(folder, WORKFLOW.replace("rules:\n", "rules:\n" + FAILING, 1))
    with capture_logs() as logs:
        report = world.apply()
    failed = [e for e in logs if e["event"] == "plan.render_failed"]
    assert {(e["rule"], e["connection"]) for e in failed} == {("huge-amount", "sf"),
                                                              ("huge-amount", "hs")}  # fmt: skip
    assert len(failed) == 2
    assert failed[0]["error"].startswith("cannot render: money needs an amount below 1e30")
    assert not [e for e in logs if e["event"] in ("job.failed", "apply.failed")]
    with world.store.reading("test") as conn:
        rules = {r.rule for r in conn.execute(sa.select(outbox.c.rule))}
    assert "no-next-step" in rules and "huge-amount" not in rules
    assert report.total("created") > 0
    assert all(w.set_aside > 0 for w in report.workflows)  # said in the report too


# the task text of no-next-step, made to fail for every deal (an amount far over 1e30)
BROKEN_TEXT = WORKFLOW.replace(
    'subject: "{{ name }}: add a next step"', 'subject: "{{ (1 * 10**40)|money }}"'
)


def test_an_open_finding_whose_text_starts_failing_stays_open(world: World) -> None:
    """A finding already open needs no new text until it reminds or takes its task: a text that
    fails later neither resolves it (its deal still has no next step) nor closes its task."""
    first = world.apply()
    assert first.total("created") > 0
    open_before = {c: len(world.open_tasks(c)) for c in ("sf", "hs")}
    assert BROKEN_TEXT != WORKFLOW
    write_workflow(Path(str(world.config.workflows)), BROKEN_TEXT)
    with capture_logs() as logs:
        again = world.apply()
    assert sum(w.resolved for w in again.workflows) == 0
    assert again.total("completed") == 0
    assert {c: len(world.open_tasks(c)) for c in ("sf", "hs")} == open_before
    assert not [e for e in logs if e["event"] == "plan.render_failed"]  # no text was needed


def test_apply_renders_no_text_for_findings_that_want_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second apply right away opens nothing and reminds no one: it renders no task text."""
    world.apply()
    built = builds_counted(monkeypatch)
    again = world.apply()
    assert sum(w.firings for w in again.workflows) > 0
    assert sum(w.opened + w.reminded for w in again.workflows) == 0
    # no task text: a flag-only rule's actions, made at once, hold none
    assert "No next step" not in built


BIG = """\
  - id: big
    kind: custom
    condition: amount != null && amount > 0.0
    title: Big deal
    actions:
      flag: {field: flags, value: big}
      task:
        subject: "{{ name }}: a big one"
"""


@pytest.mark.parametrize(
    "breaks",
    [
        lambda text: text.replace("amount != null && amount > 0.0", "int(name) > 0"),  # a rule's
        lambda text: text.replace("rules:\n", "scope:\n  condition: int(name) > 0\nrules:\n", 1),
    ],
    ids=["rule", "scope"],
)
def test_an_open_finding_survives_a_condition_that_fails(
    world: World, breaks: Callable[[str], str]
) -> None:
    """A condition that raises on a deal (here for every deal: no name is a number) leaves the
    finding undecided, not fixed: its open findings stay open, their tasks stay open and their
    flags stay on the deals (the CRM's flags synced back in between, as a service does)."""
    folder = Path(str(world.config.workflows))
    text = WORKFLOW.replace("rules:\n", "rules:\n" + BIG, 1)
    write_workflow(folder, text)
    assert world.apply().total("created") > 0
    world.sync()
    open_before = {c: len(world.open_tasks(c)) for c in ("sf", "hs")}
    flags_before = {c: world.flags(c) for c in ("sf", "hs")}
    assert any("big" in (v or "") for f in flags_before.values() for v in f.values())
    broken = breaks(text)
    assert broken != text
    write_workflow(folder, broken)
    with capture_logs() as logs:
        again = world.apply()
    assert [e for e in logs if e["event"] == "plan.condition_failed"]
    assert sum(w.resolved for w in again.workflows) == 0
    assert sum(w.undecided for w in again.workflows) > 0  # said in the report, not only logged
    assert again.total("completed") == 0 and again.total("flagged") == 0
    assert {c: len(world.open_tasks(c)) for c in ("sf", "hs")} == open_before
    assert {c: world.flags(c) for c in ("sf", "hs")} == flags_before


def test_a_removed_rule_resolves_even_where_the_scope_fails(world: World) -> None:
    """A failing scope keeps the open findings of the workflow's rules, not those of a rule
    taken out of the file: that one is gone whatever the deal says."""
    folder = Path(str(world.config.workflows))
    world.apply()
    removed = WORKFLOW[WORKFLOW.index("  - id: amount-missing") :]
    broken = WORKFLOW.replace(removed, "").replace(
        "rules:\n", "scope:\n  condition: int(name) > 0\nrules:\n", 1
    )
    assert "amount-missing" not in broken and "scope:" in broken
    write_workflow(folder, broken)
    again = world.apply()
    for w in again.workflows:
        assert w.resolved > 0, w.connection  # amount-missing's findings, and only those
    assert all(len(world.open_tasks(c)) > 0 for c in ("sf", "hs"))  # no-next-step's stay
