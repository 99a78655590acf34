"""Go-live without a flood (issue 15): the findings already there when a workflow goes live
get tasks as its `enroll` says: none, all, or ramp (at most N a day per owner, by priority),
while findings new since then get theirs at once. Counted from the sandbox CRMs' tasks."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import sqlalchemy as sa

from crmsync.store.schema import go_live
from tests.actions.world import World, write_workflow
from tests.conftest import NOW

CRMS = ("sf", "hs")
OWNER = {"sf": "OwnerId", "hs": "hubspot_owner_id"}
WORKFLOW = """\
name: golive
mode: {mode}
enroll: {enroll}
{extra}rules:
  - id: no-next-step
    kind: staleness
    check: no_next_step
    actions:
      flag: {{field: flags, value: nonext}}
      task: {{subject: "{{{{ name }}}}: add a next step", due_in_business_days: 2}}
"""


def _go(w: World, enroll: str, extra: str = "", mode: str = "live") -> None:
    folder = w.config.workflow_dir()
    (folder / "wb.yaml").unlink(missing_ok=True)
    text = WORKFLOW.format(mode=mode, enroll=enroll, extra=extra)
    write_workflow(folder, text, "golive.yaml")
    w.writeback(max_tasks_per_owner_per_day=1000)


def _per_owner(w: World, crm: str) -> Counter[str]:
    return Counter(str(t[OWNER[crm]]) for t in w.tasks(crm))


def _flagged(w: World, crm: str) -> int:
    return sum(1 for v in w.flags(crm).values() if v and "nonext" in v)


def _new_finding(w: World, crm: str) -> None:
    """A deal with a next step loses it: a finding new since the go-live."""
    if crm == "sf":
        deal = next(r for r in w.sb.salesforce.org.tables["Opportunity"].values()
                    if r.get("NextStep") and not r["IsClosed"] and not r["IsDeleted"])  # fmt: skip
        w.sb.salesforce.admin_update("opportunity", deal["Id"], {"NextStep": None})
    else:
        closed = ("closedwon", "closedlost")
        rec = next(r for r in w.sb.hubspot.portal.objects["deals"].values()
                   if r.properties.get("hs_next_step") and not r.archived
                   and r.properties.get("dealstage") not in closed)  # fmt: skip
        w.sb.hubspot.admin_update("deals", str(rec.id), {"hs_next_step": ""})


def test_enroll_all_gives_every_finding_a_task(world: World) -> None:
    _go(world, "all")
    world.apply()
    for crm in CRMS:
        assert sum(_per_owner(world, crm).values()) == _flagged(world, crm) > 5
        assert max(_per_owner(world, crm).values()) > 1


def test_enroll_none_flags_but_tasks_only_new_findings(world: World) -> None:
    _go(world, "none", mode="shadow")
    world.apply()  # in shadow: nothing recorded, so the go-live is still to come
    with world.store.reading("test") as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(go_live)).scalar() == 0
    _go(world, "none")
    world.apply()
    for crm in CRMS:
        assert world.tasks(crm) == []  # the findings found at the go-live get no task
        assert _flagged(world, crm) > 5  # but their deals are flagged
        _new_finding(world, crm)
    world.cycle(now=NOW + timedelta(hours=1))
    world.apply(now=NOW + timedelta(days=3))  # the held ones never get a task
    for crm in CRMS:
        assert len(world.tasks(crm)) == 1, crm


def test_enroll_ramp_gives_n_a_day_per_owner(world: World) -> None:
    _go(world, "ramp", extra="ramp_per_owner_per_day: 1\n")
    report = world.apply()
    day1 = {crm: _per_owner(world, crm) for crm in CRMS}
    # apply's line says how many wait for their ramp slot: each finding has a task or waits
    for w in report.workflows:
        tasks = sum(day1["sf" if w.connection == "sf" else "hs"].values())
        assert w.waiting > 0 and w.opened == tasks + w.waiting, w
    for crm in CRMS:
        assert len(day1[crm]) > 3 and max(day1[crm].values()) == 1, crm
        assert _flagged(world, crm) > sum(day1[crm].values())
    world.apply(now=NOW + timedelta(hours=2))  # later the same day: nothing more
    assert {crm: _per_owner(world, crm) for crm in CRMS} == day1
    for crm in CRMS:
        _new_finding(world, crm)  # a new finding is not held back by the ramp
    world.cycle(now=NOW + timedelta(hours=3))
    mid = {crm: _per_owner(world, crm) for crm in CRMS}
    for crm in CRMS:
        assert sum(mid[crm].values()) == sum(day1[crm].values()) + 1, crm
    world.apply(now=NOW + timedelta(days=1))  # the next day: one more per owner
    for crm in CRMS:
        more = _per_owner(world, crm) - mid[crm]
        assert more and max(more.values()) == 1, crm


def test_plan_says_why_a_finding_of_the_go_live_still_has_no_task(world: World) -> None:
    """`plan`'s `now:` line names the ramp (it said only "still waiting for a task")."""
    from crmsync.app.outcomes import plan_outcomes

    _go(world, "ramp", extra="ramp_per_owner_per_day: 1\n")
    world.apply()
    outcomes = plan_outcomes(world.config, world.store, NOW + timedelta(hours=2))
    waiting = [o.text for o in outcomes.values() if o.kind == "waiting"]
    assert len(waiting) > 3
    assert all(
        t.endswith("; still waiting for a task: its ramp slot (enroll: ramp)") for t in waiting
    )
