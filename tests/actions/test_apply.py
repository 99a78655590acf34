"""Write-back end to end against the sandbox: tasks once, flags right, fixes resolved."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa

from crmsync.app.apply import ApplyReport, renewing
from crmsync.store.outbox_counts import outbox_counts
from crmsync.store.schema import episodes, outbox
from tests.actions.world import World, write_workflow
from tests.conftest import NOW

CRMS = ("sf", "hs")


def _outbox(w: World, **where: str) -> list[dict[str, object]]:
    with w.store.reading("test") as conn:
        query = sa.select(outbox)
        for name, value in where.items():
            query = query.where(outbox.c[name] == value)
        return [r._asdict() for r in conn.execute(query)]


def _keys(tasks: list[dict[str, object]], crm: str) -> list[str]:
    return [str(t["CRMSync_Key__c" if crm == "sf" else "crmsync_key"]) for t in tasks]


def test_cycle_twice_creates_each_task_once(world: World) -> None:
    """Two cycles in a row: every planned task exists exactly once, on both CRMs; the second
    cycle plans nothing new and makes no write calls."""
    first = world.cycle()
    assert first.total("created") > 0
    planned = {
        c: {r["key"] for r in _outbox(world, connection=c, kind="task.create")} for c in CRMS
    }
    for crm in CRMS:
        keys = _keys(world.tasks(crm), crm)
        assert len(keys) == len(set(keys))  # no duplicates
        assert set(keys) == planned[crm]  # none missing, none extra
    writes_before = {c: world.calls(c) for c in CRMS}
    second = world.cycle()
    assert second.planned() == 0
    assert second.total("created") == second.total("flagged") == 0
    for crm in CRMS:
        assert sorted(_keys(world.tasks(crm), crm)) == sorted(planned[crm])
        after = world.calls(crm)
        for endpoint in ("collections_create", "collections_update", "tasks.batch.create",
                         "deals.batch.update"):  # fmt: skip
            assert after[endpoint] == writes_before[crm][endpoint]
    assert outbox_counts(world.store)["confirmed"] == len(_outbox(world))


def test_tasks_are_assigned_linked_and_say_why(world: World) -> None:
    """A task goes to the deal's owner, is linked to the deal, and names it and the reason."""
    world.cycle()
    sf_opps = world.sb.salesforce.org.tables["Opportunity"]
    for task in world.tasks("sf"):
        opp = sf_opps[task["WhatId"]]
        assert task["OwnerId"] == opp["OwnerId"]
        assert task["Subject"] == f"{opp['Name']}: add a next step"
        assert task["Description"] == "no next step"
        assert (task["Priority"], task["Status"]) == ("High", "Not Started")
        assert task["ActivityDate"] == "2026-11-24"  # Friday + 2 business days
    deals = world.sb.hubspot.portal.objects["deals"]
    for task in world.tasks("hs"):
        (deal_id,) = task["deals"]
        deal = deals[deal_id].properties
        assert task["hubspot_owner_id"] == deal["hubspot_owner_id"]
        assert task["hs_task_subject"] == f"{deal['dealname']}: add a next step"
        assert task["hs_task_priority"] == "HIGH"


@pytest.mark.parametrize("crm", CRMS)
def test_fixing_a_record_closes_its_task_and_clears_its_flag(world: World, crm: str) -> None:
    """Fill in the next step in the CRM, cycle again: the task is completed with a note and the
    flag is cleared, while flags of other rules and a rep's own flag text stay."""
    world.cycle()
    row = _outbox(world, connection=crm, kind="task.create")[0]
    native = str(row["native_id"])
    side = world.sb.salesforce if crm == "sf" else world.sb.hubspot
    field = "CRMSync_Flags__c" if crm == "sf" else "crmsync_flags"
    step = "NextStep" if crm == "sf" else "hs_next_step"
    flags_before = world.flags(crm)[native]
    assert flags_before is not None and "nonext" in flags_before.split(";")
    world.tick()
    side.admin_update(
        "opportunity" if crm == "sf" else "deals",
        native,
        {step: "Call the CFO on Monday", field: flags_before + ";vip"},
    )
    world.cycle()
    task = next(t for t in world.tasks(crm) if _keys([t], crm)[0] == row["key"])
    if crm == "sf":
        assert task["Status"] == "Completed"
        assert "no longer holds" in task["CRMSync_Note__c"]
    else:
        assert task["hs_task_status"] == "COMPLETED"
        assert "no longer holds" in task["crmsync_note"]
    tokens = (world.flags(crm)[native] or "").split(";")
    assert "nonext" not in tokens and "vip" in tokens  # ours cleared, the rep's kept
    assert ("noamount" in tokens) == ("noamount" in flags_before.split(";"))
    with world.store.reading("test") as conn:
        state = conn.execute(
            sa.select(episodes.c.state).where(
                episodes.c.opp_key == row["opp_key"], episodes.c.rule == "no-next-step"
            )
        ).scalar_one()
    assert state == "resolved"


@pytest.mark.parametrize("crm", CRMS)
def test_an_edit_between_read_and_write_is_kept(world: World, crm: str) -> None:
    """A rep edits the flag field after crmsync read the record: the write is skipped, the edit
    stays, the rest of the batch is written, and the next cycle adds crmsync's flag beside the
    rep's text."""
    target = next(
        o.native_id
        for o in world.store.iter_opportunities(crm)
        if not o.is_closed and not o.next_step and not o.custom.get("flags")
    )
    side = world.sb.salesforce if crm == "sf" else world.sb.hubspot
    field = "CRMSync_Flags__c" if crm == "sf" else "crmsync_flags"
    world.tick()
    side.admin_update("opportunity" if crm == "sf" else "deals", target, {field: "rep wrote this"})
    # HubSpot's check reads search, which lags writes by seconds (the sandbox too, by default):
    # an edit is seen once it is older than the lag. HubSpot has no conditional update, so an
    # edit younger than that is the window the README documents; Salesforce's is closed by
    # If-Unmodified-Since (tests/actions/test_conditional.py).
    world.tick()
    report = world.apply(connections=[crm])
    assert world.flags(crm)[target] == "rep wrote this"
    (row,) = _outbox(world, connection=crm, kind="flag.write", native_id=target)
    assert row["state"] == "skipped"
    assert report.total("flagged") == len(_outbox(world, connection=crm, kind="flag.write")) - 1
    world.cycle(connections=[crm])
    assert world.flags(crm)[target] == "rep wrote this;nonext"


def test_shadow_and_dry_run_write_nothing(world: World) -> None:
    """Shadow mode (in the file or from the config) and the dry-run switch plan but never write
    or record anything."""
    before = {c: world.calls(c) for c in CRMS}

    def planned(report: ApplyReport) -> int:  # what each workflow's line shows it would plan
        return sum(sum(w.planned.values()) for w in report.workflows)

    report = world.apply(dry_run=True)
    assert planned(report) > 0 and report.planned() == 0 and not report.sends  # none recorded
    world.writeback(modes={"wb": "shadow"})
    report = world.apply()
    assert planned(report) > 0 and report.planned() == 0 and not report.sends
    assert {w.mode for w in report.workflows} == {"shadow"}
    assert _outbox(world) == []
    assert {c: world.calls(c) for c in CRMS} == before


def test_cap_per_owner_rolls_the_rest_into_one_digest(world: World) -> None:
    """With at most one new task per owner per day, each owner gets one task and at most one
    digest that lists the others; applying again the same day adds nothing."""
    world.writeback(max_tasks_per_owner_per_day=1)
    report = world.apply()
    digest = re.compile(r"^\d+ more (deal needs|deals need) attention$")
    for crm in CRMS:
        tasks = world.tasks(crm)
        owner_field = "OwnerId" if crm == "sf" else "hubspot_owner_id"
        subject = "Subject" if crm == "sf" else "hs_task_subject"
        digests = Counter(str(t[owner_field]) for t in tasks if digest.match(str(t[subject])))
        kept = Counter(str(t[owner_field]) for t in tasks if not digest.match(str(t[subject])))
        assert digests and max(digests.values()) == 1 and max(kept.values()) == 1
    assert sum(w.digested for w in report.workflows) > 0
    again = world.apply()  # the same day: nothing more
    assert again.planned() == 0


REMIND = """\
name: remind
mode: live
rules:
  - id: no-next-step
    kind: staleness
    check: no_next_step
    actions:
      task: {subject: "{{ name }}: add a next step", due_in_business_days: 1}
      remind: {every_days: 7, mode: MODE}
"""


@pytest.mark.parametrize("mode", ["new_task", "update_due"])
def test_reminders_while_unresolved(world: World, mode: str, tmp_path: object) -> None:
    """A week later, still firing: a new reminder task, or the open task's due date moved."""
    folder = world.config.workflow_dir()
    (folder / "wb.yaml").unlink()
    write_workflow(folder, REMIND.replace("MODE", mode), "remind.yaml")
    world.writeback(max_tasks_per_owner_per_day=1000)
    first = world.apply()
    created = first.total("created")
    assert created > 0
    assert world.apply(now=NOW + timedelta(days=3)).planned() == 0  # not yet
    later = world.apply(now=NOW + timedelta(days=7))
    if mode == "new_task":
        assert later.total("created") == created
        reminders = [t for t in world.tasks("sf") if str(t["Subject"]).startswith("Reminder: ")]
        assert len(reminders) == len([t for t in world.tasks("sf")]) // 2
    else:
        assert later.total("created") == 0 and later.total("updated") == created
        assert {t["ActivityDate"] for t in world.tasks("sf")} == {"2026-11-30"}


def test_a_mode_for_an_unknown_workflow_is_an_error(world: World) -> None:
    """A typo in writeback.modes is reported, not silently ignored."""
    from crmsync.errors import InvalidInput

    world.writeback(modes={"wb-typo": "live"})
    with pytest.raises(InvalidInput, match=r"writeback\.modes: no workflow named .wb-typo."):
        world.apply()


def test_the_lock_is_renewed_once_a_tenth_of_its_hold_has_passed() -> None:
    """The executor's check before each batch renews the apply lock on the first batch, then
    only once a tenth of the hold time has passed (not a write transaction per batch), and
    reports a lock lost at that renewal."""
    clock = [1000.0]
    answers = [True, True, False]

    class Lock:
        renewed = 0

        def renew(self) -> bool:
            self.renewed += 1
            return answers[self.renewed - 1]

    lock = Lock()
    keep = renewing(lock, 600.0, lambda: clock[0])  # type: ignore[arg-type]
    assert keep() and lock.renewed == 1  # the first batch: planning took time since it was taken
    clock[0] += 59.0
    assert keep() and keep() and lock.renewed == 1
    clock[0] += 1.0
    assert keep() and lock.renewed == 2
    clock[0] += 60.0
    assert not keep() and lock.renewed == 3  # expired and taken meanwhile: the apply stops
