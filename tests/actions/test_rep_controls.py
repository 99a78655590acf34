"""Rep controls (issue 15): a rep dismisses a finding by setting crmsync's task to the status the
mapping names (`tasks.dismiss_status`; Salesforce 'Deferred', HubSpot 'DEFERRED' by default):
no reminder, no new task for that finding until the deal changes, counted in the audit. On
both CRMs and stores, from the sandbox's tasks."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crmsync.actions.intents import DISMISSAL_OVER
from crmsync.store.outbox import audit_trail, load_episodes
from tests.actions.test_rep_edits import REMIND, _remind, _rows, _said
from tests.actions.world import World, write_workflow
from tests.conftest import NOW

CRMS = ("sf", "hs")
WEEK = timedelta(days=7)


def _status(w: World, crm: str, crm_id: str, status: str) -> None:
    if crm == "sf":
        w.sb.salesforce.admin_update("task", crm_id, {"Status": status})
    else:
        w.sb.hubspot.admin_update("tasks", crm_id, {"hs_task_status": status})


def _deal_tasks(w: World, crm: str, native_id: str) -> list[dict[str, object]]:
    if crm == "sf":
        return [t for t in w.tasks(crm) if t.get("WhatId") == native_id]
    return [t for t in w.tasks(crm) if int(native_id) in t["deals"]]


@pytest.mark.parametrize("crm", CRMS)
def test_a_dismissed_finding_waits_until_the_deal_changes(world: World, crm: str) -> None:
    create = next(r for r in _remind(world) if r["connection"] == crm)
    _status(world, crm, create["crm_id"], "Deferred" if crm == "sf" else "DEFERRED")
    world.apply(connections=[crm], now=NOW + WEEK)  # the reminder is read back first
    (due,) = _rows(world, crm, "task.due", create["key"])
    assert due["state"] == "skipped"
    said = ("skipped", "the rep dismissed the task; no reminder moved")
    assert _said(world, due["key"])[-1] == said
    dismissed = [e for e in audit_trail(world.store) if e["state"] == "dismissed"]
    assert [e["key"] for e in dismissed] == [create["key"]]  # counted once in the audit
    assert "until the deal changes" in str(dismissed[0]["detail"])

    world.cycle(connections=[crm], now=NOW + 2 * WEEK)  # unchanged deal: nothing for it
    assert len(_rows(world, crm, "task.due", create["key"])) == 1
    assert len(_deal_tasks(world, crm, create["native_id"])) == 1

    side = world.sb.salesforce if crm == "sf" else world.sb.hubspot
    world.tick()
    side.admin_update("opportunity" if crm == "sf" else "deals", create["native_id"],
                      {"Amount" if crm == "sf" else "amount": 12345})  # fmt: skip
    world.cycle(connections=[crm], now=NOW + 2 * WEEK + timedelta(hours=1))
    tasks = _deal_tasks(world, crm, create["native_id"])
    assert len(tasks) == 2  # the deal changed: the finding starts again, with a new task


@pytest.mark.parametrize("crm", CRMS)
def test_a_dismissal_ending_on_a_failing_text_waits(world: World, crm: str) -> None:
    """The deal changed after the rep dismissed its finding, but the new task's text cannot be
    rendered: no new finding opens (set aside, as a plan sets it aside), no task is created,
    and the dismissed finding stays as it is, flag included, until the text renders."""
    create = next(r for r in _remind(world) if r["connection"] == crm)
    _status(world, crm, create["crm_id"], "Deferred" if crm == "sf" else "DEFERRED")
    world.apply(connections=[crm], now=NOW + WEEK)  # the dismissal is read back
    world.cycle(connections=[crm], now=NOW + 2 * WEEK)  # and noted against the deal as it is
    side = world.sb.salesforce if crm == "sf" else world.sb.hubspot
    world.tick()
    side.admin_update("opportunity" if crm == "sf" else "deals", create["native_id"],
                      {"Amount" if crm == "sf" else "amount": 12345})  # fmt: skip
    broken = REMIND.replace('"{{ name }}: add a next step"', '"{{ (1 * 10**40)|money }}"')
    assert broken != REMIND
    write_workflow(world.config.workflow_dir(), broken, "remind.yaml")
    world.cycle(connections=[crm], now=NOW + 2 * WEEK + timedelta(hours=1))
    assert len(_deal_tasks(world, crm, create["native_id"])) == 1
    ep = load_episodes(world.store, "remind", crm)[("no-next-step", create["opp_key"])]
    assert (ep.state, ep.occurrence, ep.left_to_rep) == ("open", 1, "dismissed")
    assert _rows(world, crm, "task.complete", create["key"]) == []  # the rep's task left alone
    # the text fixed: the dismissal is over, and the finding starts again with a new task
    write_workflow(world.config.workflow_dir(), REMIND, "remind.yaml")
    world.cycle(connections=[crm], now=NOW + 2 * WEEK + timedelta(hours=2))
    assert len(_deal_tasks(world, crm, create["native_id"])) == 2
    resolved = [e for e in audit_trail(world.store)
                if e["key"] == "episode:remind:no-next-step:1" and e["opp_key"] == create["opp_key"]
                and e["state"] == "resolved"]  # fmt: skip
    assert [e["detail"] for e in resolved] == [DISMISSAL_OVER]
