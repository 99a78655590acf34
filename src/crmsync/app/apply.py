"""`crmsync apply`: evaluate each workflow, record what it asks for, and carry it out.

Per connection: every applicable workflow is evaluated over the store and turned into intended
writes (crmsync.actions.intents); the new tasks of all of them then share each owner's daily
budget (crmsync.actions.budget), the owner's day being that of the service time zone
(`service.timezone`, UTC by default). The live workflows' intentions are recorded in the outbox
in one transaction; then the connection's outbox is sent (crmsync.actions.executor). Shadow
workflows, or any workflow under the global dry-run switch, are planned (sharing a budget of
their own) and reported, but nothing is recorded or written.
"""

from __future__ import annotations

import functools
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from datetime import time as dt_time
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from crmsync.actions.budget import Budget, Draft, settle
from crmsync.actions.executor import ExecSummary, Executor
from crmsync.actions.intents import Context, draft_writes
from crmsync.actions.routing import route_audit, route_firings
from crmsync.actions.undecided import Undecided
from crmsync.app.apply_lock import LOCK_HOLD_SECONDS, LOCK_WAIT_SECONDS, ApplyLock
from crmsync.app.factory import build_connector
from crmsync.app.modes import Mode, check_modes, effective_mode
from crmsync.app.plan import mappings, workflows_for
from crmsync.config import Config
from crmsync.connectors.base import Writer
from crmsync.model.mapping import Mapping as CrmMapping
from crmsync.model.opportunity import Opportunity
from crmsync.store import Store, fewer_collections
from crmsync.store.golive import enrolled_since, live_since, mark_live
from crmsync.store.outbox import (
    OutboxRow,
    PlanRecord,
    flag_states,
    load_episodes,
    open_flags,
    open_task_keys,
    record_plan,
    rows_by_key,
    tasks_created_since,
)
from crmsync.store.owners import load_owners
from crmsync.workflows.load import LoadedWorkflow
from crmsync.workflows.plan import Firing, evaluate

log = structlog.get_logger("crmsync.actions")


@dataclass
class WorkflowApply:
    """One (workflow, connection) evaluation and what it planned."""

    workflow: str
    connection: str
    mode: str  # live | shadow | dry-run (crmsync.app.modes)
    mode_source: str = "file"  # where the mode was decided: file, config writeback.modes, ...
    evaluated: int = 0
    firings: int = 0
    opened: int = 0
    reminded: int = 0
    resolved: int = 0
    digested: int = 0
    waiting: int = 0  # findings with no task yet: their go-live ramp slot, or the owner's budget
    undecided: int = 0  # open findings kept open: a condition or text failed on the deal
    set_aside: int = 0  # firings whose task text failed where it was needed
    planned: Counter[str] = field(default_factory=Counter)  # new outbox rows by kind
    by_owner: Counter[str] = field(default_factory=Counter)
    duration_seconds: float = 0.0


@dataclass
class ApplyReport:
    workflows: list[WorkflowApply] = field(default_factory=list)
    sends: list[ExecSummary] = field(default_factory=list)
    locked: dict[str, str] = field(default_factory=dict)  # connection -> the lock's holder

    def total(self, name: str) -> int:
        return sum(int(getattr(s, name)) for s in self.sends)

    def planned(self) -> int:
        """The writes recorded for sending (a shadow or dry-run plan records none)."""
        return sum(sum(w.planned.values()) for w in self.workflows if w.mode == "live")

    def as_json(self) -> dict[str, Any]:
        return {
            "workflows": [
                {**vars(w), "planned": dict(w.planned), "by_owner": dict(w.by_owner)}
                for w in self.workflows
            ],
            "sends": [vars(s) for s in self.sends],
            "locked": dict(self.locked),
        }


WriterFactory = Callable[[Any], Writer]


def apply(
    config: Config,
    store: Store,
    *,
    workflows: Sequence[str] = (),
    connections: Sequence[str] = (),
    now: datetime | None = None,
    dry_run: bool = False,
    writer_for: WriterFactory | None = None,
    retry_pause: float = 1.0,
    loaded: list[LoadedWorkflow] | None = None,
    lock_wait: float = LOCK_WAIT_SECONDS,
    lock_seconds: float = LOCK_HOLD_SECONDS,
) -> ApplyReport:
    """Plan every (workflow, connection) pair and send the live ones' writes.

    A connection with a live workflow is planned and sent under its apply lock (see
    ApplyLock); one another apply holds for longer than `lock_wait` seconds is skipped and
    named in `report.locked`."""
    if loaded is None:
        loaded, maps = workflows_for(config, (), workflows)
        if not workflows:
            check_modes(config, {wf.name for wf in loaded})
    else:
        maps = mappings(config)
    now = now or datetime.now(UTC)
    chosen = [config.connection(n) for n in connections] if connections else config.connections
    report = ApplyReport()
    with fewer_collections():
        _apply_each(config, store, loaded, maps, chosen, report, workflows=workflows, now=now,
                    dry_run=dry_run, writer_for=writer_for, retry_pause=retry_pause,
                    lock_wait=lock_wait, lock_seconds=lock_seconds)  # fmt: skip
    return report


def _apply_each(
    config: Config,
    store: Store,
    loaded: list[LoadedWorkflow],
    maps: dict[str, CrmMapping],
    chosen: Sequence[Any],
    report: ApplyReport,
    *,
    workflows: Sequence[str],
    now: datetime,
    dry_run: bool,
    writer_for: WriterFactory | None,
    retry_pause: float,
    lock_wait: float,
    lock_seconds: float,
) -> None:
    """`apply` for each chosen connection in turn, into `report`."""
    tokens = {r.actions.flag.value for wf in loaded for r in wf.workflow.rules if r.actions.flag}
    for conn_cfg in chosen:
        applicable = [
            wf
            for wf in loaded
            if wf.workflow.scope.connections is None
            or conn_cfg.name in wf.workflow.scope.connections
        ]
        modes = {
            wf.name: effective_mode(config, wf, conn_cfg.name, dry_run=dry_run) for wf in applicable
        }
        lock = None
        # records and sends: one apply per connection at a time
        if any(m.mode == "live" for m in modes.values()):
            lock = ApplyLock(store, conn_cfg.name, hold_seconds=lock_seconds)
            if not lock.acquire(wait_seconds=lock_wait):
                report.locked[conn_cfg.name] = lock.held_by or "unknown"
                continue
        try:
            planned: list[tuple[WorkflowApply, Draft]] = []
            read = Remembered(store.get_many)  # the workflows plan flags on the same records
            for wf in applicable:
                planned.append(
                    plan_one(config, store, wf, conn_cfg.name, maps[conn_cfg.name], now,
                             modes[wf.name], tokens, [d for _, d in planned], records=read)
                )  # fmt: skip
            live, recorded = record_connection(config, store, conn_cfg.name, planned, now)
            report.workflows.extend(result for result, _ in planned)
            if not live:
                continue
            make: WriterFactory = writer_for or build_connector
            writer = make(conn_cfg)
            try:
                obj = writer_object(writer)
                executor = Executor(
                    store,
                    writer,
                    conn_cfg.name,
                    cursor=functools.partial(store.get_cursor, conn_cfg.name, obj),
                    max_attempts=config.writeback.max_attempts,
                    batch_size=config.writeback.batch_size,
                    retry_pause=retry_pause,
                    keep_lock=renewing(lock, lock_seconds) if lock is not None else (lambda: True),
                    recorded=recorded,
                )
                sent = executor.run(live if workflows else None)
            finally:
                close = getattr(writer, "close", None)
                if close is not None:
                    close()
            report.sends.append(sent)
            log.info("apply.sent", **{k: v for k, v in vars(sent).items() if v is not None})
        finally:
            if lock is not None:
                lock.release()


def plan_one(
    config: Config,
    store: Store,
    wf: LoadedWorkflow,
    connection: str,
    mapping: CrmMapping,
    now: datetime,
    mode: Mode,
    tokens: set[str],
    earlier: Sequence[Draft] = (),
    *,
    records: Remembered | None = None,
) -> tuple[WorkflowApply, Draft]:
    """Evaluate one workflow on one connection: its draft, before the owners' budget. The
    flags it wants join those of the `earlier` drafts of this apply, as if they were recorded."""
    started = time.monotonic()
    firings: list[Firing] = []
    undecided = Undecided()  # findings a failing condition or text left undecided: kept open
    # texts built only for the findings that open, remind or take their task now (draft_writes)
    summary = evaluate(
        wf,
        store,
        connection,
        now,
        mapping=mapping,
        on_firing=firings.append,
        actions_on_read=True,
        on_undecided=undecided,
    )
    records = records or Remembered(store.get_many)
    records.keep(f.opportunity for f in firings)  # read whole by the evaluation: not again
    routing = config.connection(connection).routing
    firings = list(route_firings(firings, load_owners(store, connection), routing))
    calendar = wf.calendar
    today = calendar.today(now) if calendar is not None else now.date()

    ctx = Context(
        connection=connection,
        now=now,
        today=today,
        max_tasks_per_owner_per_day=config.writeback.max_tasks_per_owner_per_day,
        episodes=load_episodes(store, wf.name, connection),
        tasks_today=Counter(),  # the budget is settled for the connection (record_connection)
        other_flags=open_flags(
            store, connection, except_workflows=[wf.name, *(d.workflow for d in earlier)]
        ),
        flag_state=flag_states(store, connection),
        flag_tokens=tokens,
        records=records,
        row_states=functools.partial(_states, store),
        going_live=None if wf.name in live_since(store, connection) else wf.workflow.enroll,
        undecided=undecided,
    )
    for d in earlier:
        for ep in d.record.episodes:
            if ep.state == "open" and ep.flag_field and ep.flag_value:
                ctx.other_flags.setdefault((ep.opp_key, ep.flag_field), set()).add(ep.flag_value)
        ctx.flag_state.update({(k, f): v for _, k, f, v in d.record.flags})
    draft = draft_writes(wf, firings, ctx)
    draft.going_live = ctx.going_live
    draft.ramp = wf.workflow.ramp_per_owner_per_day or ctx.max_tasks_per_owner_per_day
    draft.record.audit.extend(route_audit(draft.record.audit, firings))
    result = WorkflowApply(
        wf.name, connection, mode.mode, mode.source, summary.evaluated, summary.firings
    )
    result.duration_seconds = time.monotonic() - started
    return result, draft


def record_connection(
    config: Config,
    store: Store,
    connection: str,
    planned: list[tuple[WorkflowApply, Draft]],
    now: datetime,
) -> tuple[list[str], list[OutboxRow]]:
    """Settle the owners' budget over the connection's drafts (the live ones together, the
    others together), record the live ones' plans in one transaction, and fill in the
    results; returns the names of the live workflows and the outbox rows recorded (as
    stored: the executor need not read them back)."""
    zone = ZoneInfo(config.service.timezone)
    today = now.astimezone(zone).date()
    start_of_day = datetime.combine(today, dt_time(0), zone)
    used = tasks_created_since(store, connection, start_of_day)
    held = open_task_keys(store, connection)
    ramped = enrolled_since(store, connection, start_of_day)
    limit = config.writeback.max_tasks_per_owner_per_day
    live = [(r, d) for r, d in planned if r.mode == "live"]
    others = [(r, d) for r, d in planned if r.mode != "live"]
    fresh: set[str] = set()
    recorded: dict[str, OutboxRow] = {}
    for group in (live, others):
        if group:
            budget = Budget(connection, today, limit, Counter(used), held,
                            functools.partial(_states, store), Counter(ramped))  # fmt: skip
            settle([d for _, d in group], budget)
    if live:
        whole = PlanRecord()
        for _, d in live:
            for part in ("episodes", "rows", "cancel", "flags", "audit"):
                getattr(whole, part).extend(getattr(d.record, part))
        started = time.monotonic()
        fresh = record_plan(store, whole, now)
        for row in whole.rows:
            if row.key in fresh:
                recorded.setdefault(row.key, row)  # the first of twins is the one stored
        # after the plan: a crash between the two plans the go-live again, never a flood
        mark_live(store, connection, [(d.workflow, d.going_live) for _, d in live
                                      if d.going_live], now)  # fmt: skip
        share = (time.monotonic() - started) / len(live)
        for result, _ in live:
            result.duration_seconds += share
    for result, d in planned:
        counts = d.counts
        result.opened, result.reminded = counts.opened, counts.reminded
        result.resolved, result.digested = counts.resolved, counts.digested
        result.waiting = counts.waiting
        result.undecided, result.set_aside = counts.undecided, counts.set_aside
        result.by_owner = counts.by_owner
        rows = d.record.rows
        if result.mode == "live":  # each row stored once (twins share a key), counted once
            rows = [r for r in rows if recorded.get(r.key) is r]
        result.planned = Counter(r.kind for r in rows)
        result.duration_seconds = round(result.duration_seconds, 3)
        log.info(
            "apply.planned",
            workflow=result.workflow,
            connection=connection,
            mode=result.mode,
            mode_source=result.mode_source,
            evaluated=result.evaluated,
            firings=result.firings,
            opened=result.opened,
            resolved=result.resolved,
            waiting=result.waiting,
            undecided=result.undecided,
            set_aside=result.set_aside,
            planned=sum(result.planned.values()),
            duration_seconds=result.duration_seconds,
        )
    return [r.workflow for r, _ in live], list(recorded.values())


class Remembered:
    """`read`, each key read once for one apply's planning (the records of a flag change);
    records already in hand (the evaluation's firings read them whole) are kept, not read."""

    def __init__(self, read: Callable[[list[str]], dict[str, Opportunity]]) -> None:
        self._read = read
        self._seen: dict[str, Opportunity | None] = {}

    def keep(self, opps: Iterable[Opportunity]) -> None:
        """Records read whole just now: the answer for their keys from here on."""
        self._seen.update((opp.key, opp) for opp in opps)

    def __call__(self, keys: list[str]) -> dict[str, Opportunity]:
        seen = self._seen
        missing = [k for k in keys if k not in seen]
        if missing:
            found = self._read(missing)
            seen.update((k, found.get(k)) for k in missing)
        return {k: opp for k in keys if (opp := seen[k]) is not None}


def renewing(
    lock: ApplyLock, hold_seconds: float, clock: Callable[[], float] = time.monotonic
) -> Callable[[], bool]:
    """The executor's check before each batch: the lock renewed once a tenth of its hold time
    has passed since the last renewal (a write transaction per batch otherwise). Until then
    it cannot have expired, so no other apply can hold it; after a long call the check renews,
    and finds it lost if it expired meanwhile."""
    every = hold_seconds / 10
    last = -math.inf  # the first batch renews (planning took time since the lock was taken)

    def keep() -> bool:
        nonlocal last
        now = clock()
        if now - last < every:
            return True
        held = lock.renew()
        if held:
            last = now
        return held

    return keep


def _states(store: Store, keys: list[str]) -> dict[str, str]:
    return {k: r.state for k, r in rows_by_key(store, keys).items()}


def writer_object(writer: Writer) -> str:
    """The object name whose sync cursor tells which records changed since they were read."""
    return str(getattr(writer, "object_name", "Opportunity"))
