"""What each firing of a plan would really do, given the outbox: `crmsync plan`'s ``now:`` line.

A plan says which rules fire; the write-back decides what follows from the findings it already
holds. This module runs apply's own planner (`app.apply.plan_one`, then the owners' budget,
`actions.budget.settle`, the live workflows together and the others together, as `apply` does)
and records nothing. Each firing then reads: a new task; already open since a day (its task
exists); a reminder due; over the owner's daily budget, into today's digest; waiting for a later
day or a go-live ramp slot; or, in shadow mode, what would happen once live.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import time as dt_time
from pathlib import Path
from zoneinfo import ZoneInfo

from crmsync.actions.budget import Budget, Draft, settle
from crmsync.app.apply import plan_one
from crmsync.app.modes import effective_mode
from crmsync.app.plan import workflows_for
from crmsync.config import Config, load_config
from crmsync.store import Store
from crmsync.store.golive import enrolled_since
from crmsync.store.outbox import (
    Episode,
    load_episodes,
    open_task_keys,
    rows_by_key,
    tasks_created_since,
)
from crmsync.workflows.plan import Firing

__all__ = ["Outcome", "OutcomeKey", "outcome_key", "outcomes_for", "plan_outcomes"]

OutcomeKey = tuple[str, str, str, str]  # workflow, connection, rule, opportunity key


@dataclass(frozen=True)
class Outcome:
    """What one firing would do now: `kind` for scripts, `text` for people."""

    kind: str  # new | open | reminder | digest | waiting | held | flag
    text: str


def plan_outcomes(
    config: Config,
    store: Store,
    now: datetime,
    *,
    workflows: Sequence[str] = (),
    connections: Sequence[str] = (),
) -> dict[OutcomeKey, Outcome]:
    """Each firing's outcome, by (workflow, connection, rule, opportunity key); nothing is
    recorded or sent."""
    loaded, maps = workflows_for(config, (), workflows)
    tokens = {r.actions.flag.value for wf in loaded for r in wf.workflow.rules if r.actions.flag}
    chosen = [config.connection(n) for n in connections] if connections else config.connections
    zone = ZoneInfo(config.service.timezone)
    today = now.astimezone(zone).date()
    start_of_day = datetime.combine(today, dt_time(0), zone)
    limit = config.writeback.max_tasks_per_owner_per_day
    out: dict[OutcomeKey, Outcome] = {}
    for conn_cfg in chosen:
        name = conn_cfg.name
        modes = {wf.name: effective_mode(config, wf, name) for wf in loaded}
        applicable = [wf for wf in loaded if modes[wf.name].mode != "off"]
        drafts: list[Draft] = []
        for wf in applicable:
            _, draft = plan_one(config, store, wf, name, maps[name], now, modes[wf.name],
                                tokens, drafts)  # fmt: skip
            drafts.append(draft)
        used = tasks_created_since(store, name, start_of_day)
        held = open_task_keys(store, name)
        ramped = enrolled_since(store, name, start_of_day)
        states = functools.partial(_states, store)
        for live in (True, False):
            group = [d for d in drafts if (modes[d.workflow].mode == "live") is live]
            if group:
                settle(group, Budget(name, today, limit, Counter(used), held, states,
                                     Counter(ramped)))  # fmt: skip
        for d in drafts:
            before = load_episodes(store, d.workflow, name)
            mode = modes[d.workflow].mode
            wanted = {id(c.episode) for c in d.candidates}  # findings that asked for a task
            stranded = {(e.rule, e.opp_key) for e in d.record.audit if e.state == "unrouted"}
            for ep in d.record.episodes:
                if ep.state != "open":
                    continue
                outcome = _outcome(
                    ep, before.get((ep.rule, ep.opp_key)), limit, id(ep) in wanted,
                    ramp=ep.enroll == "waiting" and id(ep) not in d.over_budget,
                    unrouted=(ep.rule, ep.opp_key) in stranded,
                )  # fmt: skip
                if mode != "live":
                    text = f"{mode}: nothing is written; once live, {outcome.text}"
                    outcome = Outcome(outcome.kind, text)
                out[d.workflow, name, ep.rule, ep.opp_key] = outcome
    return out


def outcomes_for(
    config_path: Path,
    now: datetime,
    *,
    workflows: Sequence[str] = (),
    connections: Sequence[str] = (),
) -> dict[OutcomeKey, Outcome]:
    """`plan_outcomes` for a config file (the store opened and closed here)."""
    config = load_config(config_path)
    store = Store.open(config.store.url, create=False)
    try:
        return plan_outcomes(config, store, now, workflows=workflows, connections=connections)
    finally:
        store.close()


def outcome_key(firing: Firing) -> OutcomeKey:
    """Where a plan's firing finds its outcome."""
    opp = firing.opportunity
    return (firing.workflow, opp.connection, firing.rule_id, opp.key)


def _outcome(
    ep: Episode,
    before: Episode | None,
    limit: int,
    wanted: bool,
    *,
    ramp: bool = False,
    unrouted: bool = False,
) -> Outcome:
    """One open finding after the planner and the budget, against how it stood before; `ramp`:
    its go-live ramp, not the owner's budget, held its task back; `unrouted`: its task has no
    one to go to (routing)."""
    task = ep.task_key or ""
    if before is not None and before.state == "open" and before.occurrence == ep.occurrence:
        since = f"already open since {before.opened_at.date().isoformat()}"
        if before.left_to_rep:
            what = before.left_to_rep.partition(":")[0]
            return Outcome("open", f"{since}; the rep {what} its task: no reminder")
        if ep.reminders > before.reminders:
            return Outcome("reminder", f"{since}; reminder {ep.reminders} due now")
        if before.task_key:
            return Outcome("open", f"{since}; its task exists, nothing new to write")
        if not wanted:
            return Outcome("open", f"{since}; no task, nothing new to write")
        if not task:  # found at the go-live under `enroll: ramp`, or over the owner's budget
            why = "its ramp slot (enroll: ramp)" if ramp else "the owner's budget"
            return Outcome("waiting", f"{since}; still waiting for a task: {why}")
        return _new(task, limit, prefix=f"{since}; its task goes out now")
    if ep.enroll == "held":
        return Outcome("held", "found at the go-live (enroll: none): no task")
    if not task:
        if not wanted:  # no task to wait for: a flag-only rule, or no one to route it to
            what = "flag only" if ep.flag_field else "no action"
            if unrouted:
                what = ("flag only, " if ep.flag_field else "") + "no task: no one to route it to"
            return Outcome("flag", f"new finding: {what}")
        if ramp:
            return Outcome("waiting", "found at the go-live: waits for its ramp slot")
        return Outcome(
            "waiting", "new finding over the owner's budget; today's digest went out: waits"
        )
    return _new(task, limit, prefix="new finding")


def _new(task: str, limit: int, *, prefix: str) -> Outcome:
    if task.startswith("digest-"):
        return Outcome(
            "digest",
            f"{prefix}: over the owner's {limit} new tasks a day, into today's digest",
        )
    return Outcome("new", f"{prefix}: a new task")


def _states(store: Store, keys: list[str]) -> dict[str, str]:
    return {k: r.state for k, r in rows_by_key(store, keys).items()}
