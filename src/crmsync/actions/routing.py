"""Who gets a task: never an inactive user and never nobody (issue 15, routing).

Pure: the connection's owner directory (as its last sync read it) and its `routing:` settings
decide. A deal's own active owner keeps the task. An inactive, unknown or missing owner's task
goes to their manager (Salesforce `User.ManagerId`; HubSpot: the manager `team_managers` names
for the owner's team, the primary one first), else to the connection's fallback owner (an id or
an email address). With neither, no task is created and the finding says why.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from crmsync.model import Opportunity
from crmsync.model.owners import OwnerEntry
from crmsync.store.outbox import AuditEntry
from crmsync.workflows.plan import Firing
from crmsync.workflows.render import PlannedAction
from crmsync.workflows.templates import TemplateError

MAX_MANAGER_STEPS = 5  # an inactive manager's own manager, and so on up: at most this far


class Routing(Protocol):
    """A connection's `routing:` settings (crmsync.config.schema.Routing)."""

    @property
    def use_manager(self) -> bool: ...
    @property
    def fallback_owner(self) -> str | None: ...
    @property
    def team_managers(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class Route:
    """Where one deal's tasks go: `route` is owner | manager | fallback | none."""

    owner_id: str | None
    owner_name: str | None
    route: str
    reason: str | None = None


def route_owner(
    opp: Opportunity, directory: Mapping[str, OwnerEntry], routing: Routing | None
) -> Route:
    """The owner a task on `opp` goes to, how it was chosen and why."""
    owner = directory.get(opp.owner_id) if opp.owner_id else None
    label = _name(owner) if owner is not None else (opp.owner_name or opp.owner_id)
    problem: str | None
    if not opp.owner_id:
        problem = "the deal has no owner"
    elif owner is not None:
        problem = None if owner.active else f"owner {label} is inactive"
    elif directory:
        problem = f"owner {label} is not a user of the CRM"
    else:  # no directory (the connection does not route): the record's own word
        problem = f"owner {label} is inactive" if opp.owner_active is False else None
    if problem is None:
        return Route(opp.owner_id, opp.owner_name if owner is None else owner.name, "owner")
    if routing is not None and routing.use_manager and owner is not None:
        manager = _manager(owner, directory, routing)
        if manager is not None:
            reason = f"{problem}; sent to their manager {_name(manager)}"
            return Route(manager.id, manager.name, "manager", reason)
    fallback = _fallback(directory, routing)
    if fallback is not None:
        reason = f"{problem}; sent to the fallback owner {fallback.name or fallback.id}"
        return Route(fallback.id, fallback.name, "fallback", reason)
    return Route(None, None, "none", f"{problem}; no active manager or fallback owner, no task")


def route_firings(
    firings: Iterable[Firing], directory: Mapping[str, OwnerEntry], routing: Routing | None
) -> Iterator[Firing]:
    """Each firing whose task would go to an inactive or missing owner, sent elsewhere: its
    deal's owner replaced by the route's and `route` saying why; with no route, the task taken
    out of its actions (flags stay). Firings without a task, or with an active owner, pass as
    they are. A firing's actions may be built on first read (apply): routing builds none, it
    hands the rerouted firing the same actions, to be built when read (less the task where
    there is no route; a text that fails then is the planner's to set aside)."""
    for f in firings:
        r = route_owner(f.opportunity, directory, routing)
        if r.route == "owner" or not _has_task(f):
            yield f
            continue
        own = f.deferred_actions()
        make: Callable[[], list[PlannedAction]]
        if r.route == "none":
            make = functools.partial(_without_task, own)
            opp = f.opportunity
        else:
            make = own
            opp = dataclasses.replace(
                f.opportunity, owner_id=r.owner_id, owner_name=r.owner_name, owner_active=True
            )
        yield dataclasses.replace(f, opportunity=opp, route=f"{r.route}: {r.reason}",
                                  make_actions=make)  # fmt: skip


def _has_task(f: Firing) -> bool:
    if f.has_task is not None:
        return f.has_task
    try:
        return any(a.kind == "task" for a in f.actions)
    except TemplateError:
        return True  # only a task has a text: routed, and set aside by the planner


def _without_task(make: Callable[[], list[PlannedAction]]) -> list[PlannedAction]:
    return [a for a in make() if a.kind != "task"]


def route_audit(audit: Iterable[AuditEntry], firings: Iterable[Firing]) -> list[AuditEntry]:
    """For each episode the plan opened on a routed firing, an entry beside its `opened` one:
    state `routed` (to a manager or the fallback) or `unrouted` (no task), with the reason."""
    routes = {(f.rule_id, f.opportunity.key): f.route for f in firings if f.route}
    out = []
    for e in audit:
        route = routes.get((e.rule or "", e.opp_key))
        if e.kind == "episode" and e.state == "opened" and route:
            state = "unrouted" if route.startswith("none:") else "routed"
            out.append(dataclasses.replace(e, state=state, detail=route))
    return out


def _name(owner: OwnerEntry) -> str:
    return owner.name or owner.email or owner.id


def _manager(
    owner: OwnerEntry, directory: Mapping[str, OwnerEntry], routing: Routing
) -> OwnerEntry | None:
    """The nearest active manager above `owner` (skipping inactive ones), if any."""
    seen = {owner.id}
    current = owner
    for _ in range(MAX_MANAGER_STEPS):
        boss_id = current.manager_id or next(
            (routing.team_managers[t] for t in current.teams if t in routing.team_managers), None
        )
        boss = directory.get(boss_id) if boss_id else None
        if boss is None or boss.id in seen:
            return None
        if boss.active:
            return boss
        seen.add(boss.id)
        current = boss
    return None


def _fallback(directory: Mapping[str, OwnerEntry], routing: Routing | None) -> OwnerEntry | None:
    """The connection's fallback owner by id or email, when it is an active user."""
    wanted = routing.fallback_owner if routing is not None else None
    if not wanted:
        return None
    found = directory.get(wanted) or next(
        (e for e in directory.values() if e.email and e.email.lower() == wanted.lower()), None
    )
    if found is None:
        return None if directory or "@" in wanted else OwnerEntry(wanted, None, None, True)
    return found if found.active else None
