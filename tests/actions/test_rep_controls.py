"""Rep controls (issue 15): a rep dismisses a finding by setting crmsync's task to the status the
mapping names (`tasks.dismiss_status`; Salesforce 'Deferred', HubSpot 'DEFERRED' by default):
no reminder, no new task for that finding until the deal changes, counted in the audit. On
both CRMs and stores, from the sandbox's tasks."""

from __future__ import annotations

from datetime import timedelta

import pytest

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
def test_a_dismissal_that_ends_on_a_text_that_fails_opens_nothing(world: World, crm: str) -> None:
    """The deal changed after the rep dismissed its finding, but the new task's text cannot be
    rendered: the dismissed finding is resolved all the same, no new one opens (set aside, as a
    plan sets it aside), and no task is created."""
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
    assert ep.state == "resolved" and ep.occurrence == 1
