"""The tick of a scaled-out service: queue every unit of work whose time has come.

One tick runs a period, on whichever worker Procrastinate hands the periodic job to. For each
unit (crmsync.service.units) it compares the schedule with the unit's mark, the last time it
was queued; a due unit's mark moves to now by compare-and-set (so of two ticks, one queues it)
and the job is deferred with the unit's key as its lock and queueing lock: a unit already
waiting in the queue is not queued twice (coalesced), and one that runs holds its key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from crmsync.service.units import Unit, due_time
from crmsync.store import Store, marks, quota

__all__ = ["Defer", "TickResult", "tick"]

log = structlog.get_logger("crmsync.service")

# Queue the job of `unit`, late for `due`; False when its key already waits in the queue.
Defer = Callable[[Unit, datetime], bool]


@dataclass
class TickResult:
    """What one tick did, by unit key."""

    deferred: list[str] = field(default_factory=list)
    coalesced: list[str] = field(default_factory=list)  # already waiting in the queue
    held: list[str] = field(default_factory=list)  # their org or portal waits after a quota stop


def tick(store: Store, units: Sequence[Unit], defer: Defer, now: datetime) -> TickResult:
    """Queue the units that are due at `now`."""
    result = TickResult()
    seen = marks.read_all(store)
    budgets = quota.read_all(store)
    for unit in units:
        mark = seen.get(unit.key)
        if mark is None and unit.kind == "workflow":
            # a workflow the single-process scheduler ran before: its catch-up counts from there
            mark = store.last_job_run(f"workflow:{unit.args['workflow']}")
            if mark is None:
                marks.advance(store, unit.key, None, now)  # its first run is its first time
                continue
            if not marks.advance(store, unit.key, None, mark):
                continue  # another tick set it up just now
        due = due_time(unit, mark, now)
        if due is None:
            continue
        budget = budgets.get(unit.org) if unit.org is not None else None
        if budget is not None and budget.blocked(now):
            result.held.append(unit.key)  # its mark stays: it runs once the org is free again
            continue
        if not marks.advance(store, unit.key, mark, now):
            continue  # another worker's tick queued it
        if defer(unit, due):
            result.deferred.append(unit.key)
            log.info("job.queued", key=unit.key, due=due.isoformat())
        else:
            result.coalesced.append(unit.key)
            log.info("job.coalesced", key=unit.key, due=due.isoformat())
    return result
