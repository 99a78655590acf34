"""How old each connection's last good sync may be before it is stale: the same window /readyz
uses, exported as a metric so an alert rule compares against it instead of a guessed number."""

from __future__ import annotations

from datetime import datetime

from crmsync.config import Config
from crmsync.service.registry import sync_trigger, trigger_period


def stale_after(config: Config, now: datetime) -> dict[str, float]:
    """For each scheduled connection, `stale_after_intervals` of its schedule's longest gap,
    in seconds (unscheduled connections have no window)."""
    factor = config.service.stale_after_intervals
    return {
        conn.name: factor * trigger_period(sync_trigger(config, conn.sync.schedule), now)
        for conn in config.connections
        if conn.sync.schedule is not None
    }
