"""The pipeline snapshot a successful sync takes of its connection (the pipeline review reads it).

After each sync of a connection's deals that ended `ok` (full, incremental or reconcile), the
connection's open deals are written as the snapshot of today, the UTC date at the sync's end: the
day's last sync wins, so a day's row is the deal as it stood at the end of that day. Any day of
the report's window (`report.weeks`, within the retention) that has no snapshot yet is then
rebuilt from the stored history: all of them at a connection's first snapshot, the missed ones
after the service was down for a while. Days older than `report.snapshot_retention_days` go.
A sync that stored no change leaves today's snapshot as it is while it still holds.

A snapshot that fails is logged (`snapshot.failed`) and named in the sync's messages, and the
sync stays `ok`: its records and cursor are committed, and failing it would make the service
retry a CRM pull that worked. The next sync writes the day again and fills what was missed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import structlog

from crmsync.config.report import ReportSettings
from crmsync.errors import describe
from crmsync.store import Store
from crmsync.store.snapshots import backfill, missing_days, prune, still_current, write_day

log = structlog.get_logger("crmsync.app.snapshots")

# what each step does, in the words of the sync's closing lines
DOING = {
    "check": "checking today's pipeline snapshot",
    "write": "saving today's pipeline snapshot",
    "backfill": "rebuilding past days of the pipeline from history",
    "prune": "removing pipeline snapshots past the retention",
}


def take_snapshot(
    store: Store,
    connection: str,
    settings: ReportSettings,
    *,
    stages: Mapping[str, str] | None,
    now: datetime,
    messages: list[str],
    changed: bool = True,
) -> bool:
    """Write today's snapshot of the connection, fill the window's missing days, prune; True
    when all of it was done. Failures are logged and added to `messages`, never raised.

    A sync that stored no change (`changed` False) writes nothing while today's snapshot
    still holds (`store.snapshots.still_current`): most of a day's syncs, at almost no cost."""
    today = now.date()  # `now` is UTC: the day is the UTC date at the sync's end
    window = max(0, min(settings.weeks * 7, settings.snapshot_retention_days - 1))
    step = "check"
    try:
        if not changed and still_current(store, connection, today):
            log.debug("snapshot.current", connection=connection, day=today.isoformat())
            return True
        step = "write"
        missing = missing_days(store, connection, days=window, today=today)
        deals = write_day(store, connection, today)
        step = "backfill"
        filled = 0
        if missing:
            filled = backfill(store, connection, days=window, today=today, stages=stages)
        step = "prune"
        pruned = prune(
            store, keep_days=settings.snapshot_retention_days, today=today, connection=connection
        )
    except Exception as e:
        log.error("snapshot.failed", connection=connection, step=step, error=describe(e))
        messages.append(
            f"pipeline report: {DOING[step]} failed ({e}); the sync itself is saved and the "
            "next one tries again"
        )
        return False
    log.info(
        "snapshot.written",
        connection=connection,
        day=today.isoformat(),
        deals=deals,
        backfilled_days=missing,
        backfilled_rows=filled,
        pruned=pruned,
    )
    return True
