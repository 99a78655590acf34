"""`crmsync plan` shows what each firing would really do, given the outbox: a new task, already
open since a day, a reminder due, over the owner's budget into the digest."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import yaml
from click.testing import CliRunner

from crmsync.app.explain import explain_opportunity
from crmsync.app.outcomes import plan_outcomes
from crmsync.cli import main
from crmsync.store.outbox import load_episodes
from crmsync.workflows.explain import RuleExplanation
from tests.actions.world import WORKFLOW, World, config_dict, write_workflow
from tests.conftest import NOW


def test_outcomes_foretell_the_apply_and_then_say_already_open(world: World) -> None:
    """Before the first apply, each finding's outcome (new task, digest, flag only) is what the
    apply then does; after it, every finding is already open since that day, nothing new."""
    world.writeback(max_tasks_per_owner_per_day=1)
    before = plan_outcomes(world.config, world.store, NOW)
    kinds = {o.kind for o in before.values()}
    assert {"new", "digest", "flag"} <= kinds, kinds
    digest = next(o for o in before.values() if o.kind == "digest")
    assert digest.text == "new finding: over the owner's 1 new tasks a day, into today's digest"
    world.apply()
    for (wf, conn, rule, key), outcome in before.items():
        ep = load_episodes(world.store, wf, conn)[rule, key]
        assert ep.state == "open"
        expected = {"new": "task-", "digest": "digest-", "flag": None}[outcome.kind]
        assert (ep.task_key[: len(expected)] if ep.task_key and expected else ep.task_key) == (
            expected
        ), (rule, key, outcome)
    after = plan_outcomes(world.config, world.store, NOW + timedelta(hours=1))
    assert set(after) == set(before)
    for key, outcome in after.items():
        assert outcome.kind == "open", (key, outcome)
        tail = "no task" if before[key].kind == "flag" else "its task exists"
        assert outcome.text == f"already open since {NOW.date()}; {tail}, nothing new to write"


REMINDING = WORKFLOW.replace(
    "        priority: high\n",
    "        priority: high\n      remind: {every_days: 2}\n",
)


def test_a_reminder_due_is_shown(world: World) -> None:
    """Days after the first apply, a finding whose rule reminds says its reminder is due."""
    write_workflow(Path(world.config.workflows), REMINDING)
    world.writeback(max_tasks_per_owner_per_day=100_000)
    world.apply()
    same_day = plan_outcomes(world.config, world.store, NOW + timedelta(hours=1))
    assert "reminder" not in {o.kind for o in same_day.values()}
    later = plan_outcomes(world.config, world.store, NOW + timedelta(days=3))
    reminders = [o for (_, _, rule, _), o in later.items() if rule == "no-next-step"]
    assert reminders and all(
        o.text == f"already open since {NOW.date()}; reminder 1 due now" for o in reminders
    )


def test_the_plan_table_and_json_show_the_outcome(world: World, tmp_path: Path) -> None:
    """`crmsync plan` prints a `now:` line under each firing and a `now` object in JSON."""
    world.apply()
    data = config_dict(world.sb, world.store.url, Path(world.config.workflows))
    path = tmp_path / "crmsync.yaml"
    path.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(main, ["plan", "-c", str(path), "--limit", "0"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    firing_lines = [i for i, line in enumerate(lines) if line.startswith("  [wb] ")]
    assert firing_lines
    for i in firing_lines:
        now_line = next(line for line in lines[i + 1 :] if line.startswith("      now: "))
        assert now_line.startswith(f"      now: already open since {NOW.date()}; ")
    n = len(firing_lines)
    assert lines[-1] == f"write-back now: {n} already open (nothing new)"
    result = CliRunner().invoke(main, ["plan", "-c", str(path), "--format", "json"])
    firings = [yaml.safe_load(line) for line in result.stdout.splitlines() if '"rule"' in line]
    assert firings and all(f["now"]["kind"] == "open" for f in firings)
    deals = len({f["opportunity"] for f in firings})
    result = CliRunner().invoke(main, ["plan", "-c", str(path), "--limit", str(deals - 1)])
    assert "... and 1 more opportunity (--limit 0 shows all" in result.stdout


def test_explaining_a_deal_says_what_the_write_back_holds(world: World) -> None:
    """`plan --opportunity` on a live workflow: a firing is a new finding before the first
    apply, open with its task after it; once the deal is fixed in the CRM and synced, the rule
    no longer fires and its open finding resolves on the next apply."""
    config = Path("unused")  # the config object is passed; the path only names it

    def rule(key: str) -> RuleExplanation:
        _, (e,) = explain_opportunity(config, key, now=NOW, config=world.config)
        assert e.mode == "live, from file"
        return next(r for r in e.rules if r.rule == "no-next-step")

    ep_key = next(
        key
        for (wf, conn, r, key) in plan_outcomes(world.config, world.store, NOW)
        if conn == "sf" and r == "no-next-step"
    )
    first = rule(ep_key)
    assert first.fired and first.finding == "new finding on the next apply"
    world.apply()
    assert rule(ep_key).finding == f"open since {NOW.date()}, its task written"
    world.tick()
    native = ep_key.split(":", 1)[1]
    world.sb.salesforce.admin_update("opportunity", native, {"NextStep": "Call the CFO"})
    world.sync("sf")
    fixed = rule(ep_key)
    assert not fixed.fired and fixed.why == "false: the next step is filled in"
    assert fixed.finding == (
        f"open since {NOW.date()}, its task written: it resolves on the next apply "
        "(no longer fires)"
    )


def test_explaining_an_undecided_finding_says_it_stays_open(world: World) -> None:
    """When the scope condition fails on the deal, `plan --opportunity` says the open finding
    stays open on the next apply (as apply keeps it), not that it resolves."""
    config = Path("unused")
    ep_key = next(
        key
        for (wf, conn, r, key) in plan_outcomes(world.config, world.store, NOW)
        if conn == "sf" and r == "no-next-step"
    )
    world.apply()
    broken = WORKFLOW.replace("rules:\n", "scope:\n  condition: int(name) > 0\nrules:\n", 1)
    write_workflow(Path(str(world.config.workflows)), broken)
    _, (e,) = explain_opportunity(config, ep_key, now=NOW, config=world.config)
    r = next(r for r in e.rules if r.rule == "no-next-step")
    assert not r.fired and r.undecided
    assert r.finding == (
        f"open since {NOW.date()}, its task written: it stays open on the next apply "
        "(undecided, see why)"
    )
    world.apply()
    assert load_episodes(world.store, "wb", "sf")[("no-next-step", ep_key)].state == "open"
