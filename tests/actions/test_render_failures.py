"""Write-back with a task text that fails for some deals: those firings are set aside, the
rest of the workflow is planned, recorded and sent (issue 14)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from structlog.testing import capture_logs

from crmsync.store.schema import outbox
from tests.actions.world import WORKFLOW, World, write_workflow

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
