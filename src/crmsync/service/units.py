"""The units of work of a scaled-out service and when each is due: one sync per (connection,
object), one evaluation and write-back per (workflow, connection), the report's rebuild.

Pure: the schedules are today's (a connection's `sync.schedule` in the service's time zone, a
workflow's own `schedule:`, the report's cron, or the testing intervals), read by the same
triggers the single-process scheduler uses (crmsync.service.registry).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from crmsync.config import Config
from crmsync.schedule import cron_trigger
from crmsync.service.catalog import WorkflowVersion
from crmsync.service.registry import sync_trigger, workflow_trigger
from crmsync.workflows.schema import Schedule

__all__ = ["OBJECT", "Unit", "due_time", "units"]

OBJECT = "opportunity"  # the one object each connection syncs today


@dataclass(frozen=True)
class Unit:
    """One unit of work: its key (the queue's lock), its task and arguments, its schedule."""

    key: str
    kind: str  # sync | workflow | report
    args: dict[str, str]
    trigger: BaseTrigger = field(compare=False)
    org: str | None = None  # whose API allowance it spends (None: the report)
    at_once: bool = False  # first ever run: now (a sync), rather than at its first time


@functools.lru_cache(maxsize=4096)
def _cron(cron: str, timezone: str) -> BaseTrigger:
    """A cron's trigger, read once a process: the tick lists every unit each period, and
    10,000 connections share a handful of schedules."""
    return cron_trigger(cron, timezone)


def _sync_trigger(config: Config, cron: str) -> BaseTrigger:
    if config.service.sync_interval_seconds is not None:
        return sync_trigger(config, cron)
    return _cron(cron, config.service.timezone)


def _workflow_trigger(config: Config, schedule: Schedule) -> BaseTrigger:
    if config.service.workflow_interval_seconds is not None:
        return workflow_trigger(config, schedule)
    return _cron(schedule.cron, str(schedule.timezone))


def units(config: Config, workflows: dict[str, WorkflowVersion]) -> list[Unit]:
    """Every scheduled unit of work, for the config and the workflows' last good versions."""
    out: list[Unit] = []
    for conn in config.connections:
        if conn.sync.schedule is not None:
            out.append(
                Unit(
                    f"sync:{conn.name}:{OBJECT}",
                    "sync",
                    {"connection": conn.name},
                    _sync_trigger(config, conn.sync.schedule),
                    conn.quota_org,
                    at_once=True,  # data fresh at once, as the single scheduler does
                )
            )
    names = [c.name for c in config.connections]
    orgs = {c.name: c.quota_org for c in config.connections}
    for name, version in sorted(workflows.items()):
        if version.schedule is None:
            continue
        trigger = _workflow_trigger(config, version.schedule)
        for conn_name in version.scope or names:
            if conn_name in orgs:
                out.append(
                    Unit(
                        f"workflow:{name}:{conn_name}",
                        "workflow",
                        {"workflow": name, "connection": conn_name},
                        trigger,
                        orgs[conn_name],
                    )
                )
    report = _cron(config.report.schedule, config.service.timezone)
    out.append(Unit("report", "report", {}, report))
    return out


def due_time(unit: Unit, mark: datetime | None, now: datetime) -> datetime | None:
    """The scheduled time the unit is late for, or None when it is not due.

    The first fire time after its mark (when it was last queued) that has passed. However many
    have passed (a night with no worker up), one run covers them: the tick then moves the mark
    to now. A unit with no mark yet is due now when it runs `at_once` (a sync), else it counts
    from now (a new workflow waits for its first scheduled time)."""
    if mark is None:
        return now if unit.at_once else None
    trigger = unit.trigger
    if isinstance(trigger, IntervalTrigger):  # counts from the mark, not from its own creation
        fire: datetime | None = mark + trigger.interval
    else:
        fire = trigger.get_next_fire_time(None, mark + timedelta(microseconds=1))
    return fire if fire is not None and fire <= now else None
