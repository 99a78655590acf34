"""Task routing (issue 15): no task goes to an inactive or missing owner. An inactive owner's
task goes to their manager (Salesforce `User.ManagerId`; HubSpot: the manager `team_managers`
names for the owner's team), else to the connection's fallback owner; with neither, no task is
created and the audit says why. Counted from the sandbox's own tasks, on both CRMs and stores."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from crmsync.config.schema import Routing
from crmsync.connectors.cache import CACHE_OBJECT
from crmsync.store.schema import audit
from tests.actions.world import World, builds_counted, write_workflow

EVERY = """\
name: every
mode: live
rules:
  - id: every-deal
    kind: custom
    condition: "is_closed || !is_closed"
    actions:
      task: {subject: "{{ name }}: look at it", due_in_business_days: 1}
"""


def _route(w: World, sf: dict[str, Any], hs: dict[str, Any]) -> None:
    """Give each connection its routing block, the workflow that tasks every deal, no cap."""
    conns = [
        c.model_copy(update={"routing": Routing(**(sf if c.name == "sf" else hs))})
        for c in w.config.connections
    ]
    w.config = w.config.model_copy(update={"connections": conns})
    folder = w.config.workflow_dir()
    (folder / "wb.yaml").unlink()
    write_workflow(folder, EVERY, "every.yaml")
    w.writeback(max_tasks_per_owner_per_day=100_000)


def _sf_people(w: World) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Salesforce users by id, and each live opportunity's owner id."""
    org = w.sb.salesforce.org
    opps = {i: o["OwnerId"] for i, o in org.tables["Opportunity"].items() if not o["IsDeleted"]}
    return dict(org.tables["User"]), opps


def _hs_people(w: World) -> tuple[dict[str, Any], dict[str, str]]:
    """HubSpot owners by id, and each live deal's owner id ('' for none)."""
    portal = w.sb.hubspot.portal
    deals = {
        str(i): str(r.properties.get("hubspot_owner_id") or "")
        for i, r in portal.objects["deals"].items()
        if not r.archived
    }
    return dict(portal.owners), deals


def test_salesforce_manager_then_fallback(world: World) -> None:
    """An inactive user's tasks go to their active manager; another inactive user without a
    manager has theirs sent to the fallback (named by email); no task to an inactive user."""
    w = world
    users, opps = _sf_people(w)
    owning_inactive = sorted({o for o in opps.values() if not users[o]["IsActive"]})
    owning_active = sorted({o for o in opps.values() if users[o]["IsActive"]})
    assert owning_inactive and len(owning_active) >= 3
    managed, manager, fallback = owning_active[0], owning_active[1], owning_active[2]
    w.sb.salesforce.org.tables["User"][managed].update(IsActive=False, ManagerId=manager)
    users, opps = _sf_people(w)
    _route(w, {"fallback_owner": users[fallback]["Email"].upper()}, {})
    w.sync("sf")
    w.apply(connections=["sf"])

    tasks = w.tasks("sf")
    assert len(tasks) == len(opps)
    by_deal = {t["WhatId"]: t["OwnerId"] for t in tasks}
    assert all(users[t["OwnerId"]]["IsActive"] for t in tasks)
    for deal, owner in opps.items():
        if owner == managed:
            assert by_deal[deal] == manager
        elif not users[owner]["IsActive"]:
            assert by_deal[deal] == fallback
        else:
            assert by_deal[deal] == owner
    assert _audit(w, "sf", "routed") == sum(not users[o]["IsActive"] for o in opps.values())


def test_salesforce_no_route_no_task(world: World) -> None:
    """With no manager and no fallback, an inactive user's deals get no task, and the audit
    records each as unrouted with the reason."""
    w = world
    users, opps = _sf_people(w)
    _route(w, {"use_manager": True}, {})
    w.sync("sf")
    w.apply(connections=["sf"])
    stranded = sum(not users[o]["IsActive"] for o in opps.values())
    assert stranded > 0
    tasks = w.tasks("sf")
    assert len(tasks) == len(opps) - stranded
    assert all(users[t["OwnerId"]]["IsActive"] for t in tasks)
    assert _audit(w, "sf", "unrouted") == stranded
    assert "is inactive; no active manager or fallback owner" in _details(w, "sf")[0]


def test_hubspot_team_manager_fallback_and_no_owner(world: World) -> None:
    """An archived owner in a team with a named manager: tasks to that manager; other archived
    owners and deals without an owner: to the fallback; no task to an archived owner or none."""
    w = world
    portal = w.sb.hubspot.portal
    owners, deals = _hs_people(w)
    archived = sorted({o for o in deals.values() if o and owners[o].archived})
    live = sorted(o for o, rec in owners.items() if not rec.archived)
    assert archived
    teamed, manager, fallback = archived[0], live[0], live[1]
    owners[teamed].teams = [{"id": "801", "name": "East", "primary": True}]
    ownerless = next(d for d, o in deals.items() if o == live[2])
    portal.update("deals", int(ownerless), {"hubspot_owner_id": ""})
    deals[ownerless] = ""
    _route(w, {}, {"fallback_owner": fallback, "team_managers": {"801": manager}})
    # the team changed behind crmsync's back: forget the owners the last sync cached (else
    # they are read again only after sync.reference_refresh_seconds)
    w.store.reset_cursor("hs", CACHE_OBJECT)
    w.sync("hs")
    w.apply(connections=["hs"])

    tasks = w.tasks("hs")
    assert len(tasks) == len(deals)
    by_deal = {str(d): t["hubspot_owner_id"] for t in tasks for d in t["deals"]}
    assert all(t["hubspot_owner_id"] and not owners[t["hubspot_owner_id"]].archived for t in tasks)
    assert by_deal[ownerless] == fallback
    for deal, owner in deals.items():
        if owner == teamed:
            assert by_deal[deal] == manager
        elif not owner or owners[owner].archived:
            assert by_deal[deal] == fallback
        else:
            assert by_deal[deal] == owner


def test_hubspot_no_route_no_task(world: World) -> None:
    """Without a fallback, archived owners' deals and the ownerless deal get no task."""
    w = world
    owners, deals = _hs_people(w)
    ownerless = next(iter(deals))
    w.sb.hubspot.portal.update("deals", int(ownerless), {"hubspot_owner_id": ""})
    deals[ownerless] = ""
    _route(w, {}, {})
    w.sync("hs")
    w.apply(connections=["hs"])
    stranded = sum(not o or owners[o].archived for o in deals.values())
    tasks = w.tasks("hs")
    assert len(tasks) == len(deals) - stranded
    assert _audit(w, "hs", "unrouted") == stranded
    assert any(d.startswith("none: the deal has no owner") for d in _details(w, "hs"))


def _audit(w: World, crm: str, state: str) -> int:
    with w.store.reading("test") as conn:
        q = sa.select(sa.func.count()).where(audit.c.connection == crm, audit.c.state == state)
        return int(conn.execute(q).scalar_one())


def _details(w: World, crm: str) -> list[str]:
    with w.store.reading("test") as conn:
        q = sa.select(audit.c.detail).where(audit.c.connection == crm, audit.c.kind == "episode")
        return [d for (d,) in conn.execute(q.where(audit.c.state == "unrouted"))]


def test_a_second_apply_routes_without_rendering_a_text(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Routed findings already open (their tasks with the manager) need no text on the next
    apply: routing decides from the rule, not by building the firing's actions."""
    w = world
    users, opps = _sf_people(w)
    owning_active = sorted({o for o in opps.values() if users[o]["IsActive"]})
    managed, manager = owning_active[0], owning_active[1]
    w.sb.salesforce.org.tables["User"][managed].update(IsActive=False, ManagerId=manager)
    _route(w, {"fallback_owner": users[owning_active[2]]["Email"]}, {})
    w.sync("sf")
    w.apply(connections=["sf"])
    assert _audit(w, "sf", "routed") > 0
    tasks = len(w.tasks("sf"))
    built = builds_counted(monkeypatch)
    w.apply(connections=["sf"])
    assert built == []
    assert len(w.tasks("sf")) == tasks


def test_plan_promises_no_task_where_none_can_go(world: World) -> None:
    """A go-live finding whose task has no one to go to (an inactive owner, no manager, no
    fallback) has no task to wait for: plan said "found at the go-live: waits for its ramp
    slot" for it (the README's walk-through showed 8 such)."""
    from crmsync.app.outcomes import plan_outcomes
    from tests.conftest import NOW

    w = world
    users, opps = _sf_people(w)
    _route(w, {"use_manager": True}, {})
    ramp = EVERY.replace("mode: live\n", "mode: live\nenroll: ramp\nramp_per_owner_per_day: 1\n")
    write_workflow(w.config.workflow_dir(), ramp, "every.yaml")
    w.sync("sf")
    outcomes = plan_outcomes(w.config, w.store, NOW, connections=["sf"])
    by_deal = {key: o for (_, _, _, key), o in outcomes.items()}
    stranded = [f"sf:{i}" for i, owner in opps.items() if not users[owner]["IsActive"]]
    assert stranded and all(key in by_deal for key in stranded)
    assert {by_deal[key].text for key in stranded} == {
        "new finding: no task: no one to route it to"
    }
    assert any(o.kind == "waiting" for o in outcomes.values())  # the others do wait their turn
