"""The tick of a scaled-out service: queue every unit of work whose time has come.

One tick runs a period, on whichever worker Procrastinate hands the periodic job to. For each
unit (crmsync.service.units) it compares the schedule with the unit's mark, the last time it
was queued; a due unit's mark moves to now by compare-and-set (so of two ticks, one queues it)
and the job is deferred with the unit's key as its lock and queueing lock: a unit already
waiting in the queue is not queued twice (coalesced), and one that runs holds its key.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from crmsync.service.units import Unit, due_time
from crmsync.store import Store, marks, quota

__all__ = ["Defer", "TickResult", "tick"]

log = structlog.get_logger("crmsync.service")

# Queue the jobs of these units, each late for its time; the keys that were queued (a key
# that already waits in the queue is not queued again: coalesced).
Defer = Callable[[list[tuple[Unit, datetime]]], set[str]]


@dataclass
class TickResult:
    """What one tick did, by unit key."""

    deferred: list[str] = field(default_factory=list)
    coalesced: list[str] = field(default_factory=list)  # already waiting in the queue
    held: list[str] = field(default_factory=list)  # their org or portal waits after a quota stop


def tick(store: Store, units: Sequence[Unit], defer: Defer, now: datetime) -> TickResult:
    """Queue the units that are due at `now`: their marks move in one transaction, and they
    are deferred in one batch (10,000 keys due at once are queued in a second or two, not
    one round trip each)."""
    began = time.monotonic()
    result = TickResult()
    seen = marks.read_all(store)
    budgets = quota.read_all(store)
    due: list[tuple[Unit, datetime | None, datetime]] = []
    firsts: list[tuple[str, datetime | None, datetime]] = []
    for unit in units:
        mark = seen.get(unit.key)
        if mark is None and unit.kind == "workflow":
            # a workflow the single-process scheduler ran before: its catch-up counts from there
            legacy = store.last_job_run(f"workflow:{unit.args['workflow']}")
            if legacy is None:
                firsts.append((unit.key, None, now))  # its first run is its first time
                continue
            if not marks.advance(store, unit.key, None, legacy):
                continue  # another tick set it up just now
            mark = legacy
        when = due_time(unit, mark, now)
        if when is None:
            continue
        budget = budgets.get(unit.org) if unit.org is not None else None
        if budget is not None and budget.blocked(now):
            result.held.append(unit.key)  # its mark stays: it runs once the org is free again
            continue
        due.append((unit, mark, when))
    marks.advance_many(store, firsts)
    mine = marks.advance_many(store, [(u.key, mark, now) for u, mark, _ in due])
    ours = [(u, when) for u, _, when in due if u.key in mine]  # others: another tick has them
    queued = defer(ours) if ours else set()
    for unit, when in ours:
        if unit.key in queued:
            result.deferred.append(unit.key)
            log.debug("job.queued", key=unit.key, due=when.isoformat())
        else:
            result.coalesced.append(unit.key)
            log.debug("job.coalesced", key=unit.key, due=when.isoformat())
    if result.deferred or result.coalesced or result.held:
        log.info(
            "tick.finished",
            queued=len(result.deferred),
            coalesced=len(result.coalesced),
            held=len(result.held),
            seconds=round(time.monotonic() - began, 3),
        )
    return result
